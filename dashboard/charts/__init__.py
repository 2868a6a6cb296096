"""Plotly figure builders for the dashboard's pages, one module per page or concept.

Every builder is a pure function of data: no Streamlit, no TensorFlow, no file access.
Pages fetch data through ``dashboard.services`` and hand it to these builders, which keeps
the figures unit-testable and reusable in the offline HTML report (``report``).

- ``common``: the palette, one colour per run, metric labels, the empty figure
- ``runs``: curves, confusion matrix, per-class metrics and metric bars of runs (Train, Compare)
- ``seeds``: runs repeated over seeds: mean curves with bands, seed strips, per-class bands
- ``pareto``: accuracy against a cost, the non-dominated points highlighted
- ``data``: images per class and split (Overview)
- ``predict``: a face's class probabilities, a video face's emotions over time
- ``evolve``: a search's fitness, its genes against fitness, strategies across seeds
- ``teaching``: the optimizer playground's paths, losses and step sizes
- ``report``: the self-contained HTML report
"""
