"""Training one run: models from the architecture registry, callbacks, the loop, evaluation, costs,
and the run lifecycle (``runs``: the only module that creates runs in the store)."""
