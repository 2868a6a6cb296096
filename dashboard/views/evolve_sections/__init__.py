"""The Evolve page's sections (``dashboard/views/evolve.py`` is the page script that lays them out).

- ``form``: the New search form, and prefilling it from a finished search
- ``status``: a search's active job and what went wrong (failed, stopped, orphaned)
- ``hyper``: a settings search: fitness per generation, the population, genes against fitness, fronts
- ``best``: the best genome, against the five configurations and against other strategies at equal cost
- ``head``: a head's weights evolved by the GA beside gradient descent
- ``common``: value formatting, gene tables and the jump to Compare, which several sections share
"""
