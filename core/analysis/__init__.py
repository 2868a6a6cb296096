"""Across runs and seeds: t-intervals and paired tests (stats), a grid's aggregated table (comparison),
the accuracy/cost front (pareto) and time estimates (estimate). See README.md beside this file."""
