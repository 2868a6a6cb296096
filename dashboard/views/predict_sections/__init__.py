"""The Predict page's sections (``dashboard/views/predict.py`` is the page script that lays them out).

- ``photo``: one analysed photo: the numbered photo, the face gallery under it, and per face its
  verdict, every model's probabilities and Grad-CAM heatmaps
"""
