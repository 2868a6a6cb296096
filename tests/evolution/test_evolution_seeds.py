"""GA against random search across seeds: best-so-far curves, their bands, and the seeded runner."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import array, figure
from scipy import stats
from test_page_evolve import open_evolve, write_search

from core import evolution


def _seeded_state(sid: str, strategy: str, seed: int, trainings: list[tuple[float, float]]) -> None:
    """A saved search whose evaluations are (fitness, seconds) in training order."""
    state = write_search(sid)
    state.update(strategy=strategy, seed=seed)
    entries = list(state["evaluations"].values())[:len(trainings)]
    assert len(entries) == len(trainings)
    state["evaluations"] = {}
    for i, (entry, (fit, seconds)) in enumerate(zip(entries, trainings)):
        state["evaluations"][f"{i}@short"] = {**entry, "fitness": fit, "seconds": seconds}
    evolution.save_state(state)


@pytest.fixture
def seeded(fresh_artifacts):
    _seeded_state("s-ga-s1", "ga", 1, [(0.2, 10.0), (0.5, 10.0), (0.4, 10.0), (0.6, 10.0)])
    _seeded_state("s-ga-s2", "ga", 2, [(0.3, 5.0), (0.3, 5.0), (0.7, 5.0)])  # converged: one training fewer
    _seeded_state("s-ga-s3", "ga", 3, [(0.1, 20.0), (0.4, 20.0), (0.4, 20.0), (0.5, 20.0)])
    _seeded_state("s-random-s1", "random", 1, [(0.2, 10.0), (0.3, 10.0), (0.3, 10.0), (0.4, 10.0)])
    _seeded_state("s-random-s2", "random", 2, [(0.4, 10.0), (0.4, 10.0), (0.4, 10.0), (0.4, 10.0)])
    return ["s-ga-s1", "s-ga-s2", "s-ga-s3", "s-random-s1", "s-random-s2"]


def test_best_so_far_bands_across_seeds_match_scipy(seeded):
    curve = evolution.best_so_far(evolution.load_state("s-ga-s1"))
    assert list(curve.best) == [0.2, 0.5, 0.5, 0.6] and list(curve.seconds) == [10.0, 20.0, 30.0, 40.0]

    bands = evolution.strategy_bands(seeded, "evaluations").set_index(["strategy", "evaluations"])
    # After 3 trainings the GA searches are at 0.5, 0.7 and 0.4.
    at3 = np.array([0.5, 0.7, 0.4])
    row = bands.loc[("ga", 3.0)]
    low, high = stats.t.interval(0.95, 2, loc=at3.mean(), scale=stats.sem(at3))
    assert (row["mean"], row.low, row.high, row.n) == pytest.approx((at3.mean(), low, high, 3))
    # The converged search keeps its best (0.7) at 4 trainings.
    assert bands.loc[("ga", 4.0), "mean"] == pytest.approx(np.mean([0.6, 0.7, 0.5]))
    at4 = np.array([0.4, 0.4])
    assert bands.loc[("random", 4.0), "mean"] == pytest.approx(at4.mean())

    by_time = evolution.strategy_bands(seeded, "seconds", points=5)  # grid 0, 20, 40, 60, 80 s
    ga = by_time[by_time.strategy == "ga"].set_index("seconds")
    assert 0.0 not in ga.index  # nothing trained yet at 0 s
    assert ga.loc[20.0, "mean"] == pytest.approx(np.mean([0.5, 0.7, 0.1])) and ga.loc[20.0, "n"] == 3
    with pytest.raises(ValueError, match="evaluations' or 'seconds'"):
        evolution.strategy_bands(seeded, "generations")


@pytest.mark.slow
def test_evolve_page_shows_bands_per_strategy(seeded, no_worker):
    at = open_evolve(search="s-ga-s1")
    fig = figure(at, "evolve_seed_bands_evaluations")
    lines = {t["name"]: array(t["y"]) for t in fig["data"] if t.get("mode") == "lines"}
    assert set(lines) == {"Genetic algorithm", "Random search (baseline)"}
    np.testing.assert_allclose(lines["Genetic algorithm"], [0.2, np.mean([0.5, 0.3, 0.4]), np.mean([0.5, 0.7, 0.4]), 0.6])
    assert "Genetic algorithm 95% interval" in {t["name"] for t in fig["data"]}
    assert figure(at, "evolve_seed_bands_seconds")["layout"]["xaxis"]["title"]["text"] == "training time (s)"
    assert any("3 genetic algorithm searches and 2 random search (baseline) searches" in c.value for c in at.caption)


@pytest.mark.slow
def test_seeded_searches_run_each_strategy_per_seed_at_the_same_budget(fresh_artifacts):
    from test_evolution import _base

    from core.configs import ConfigError

    # One genome (every gene pinned): each search trains once, the rest are cache hits.
    fixed = {g.name: g.choices[0] for g in evolution.GENE_SPACE} | {
        "arch": "vgg16", "weights": "none", "input_size": 32, "frozen_blocks": 0, "dense_units": 0}
    settings = dict(name="cmp", first_seed=5, budget=evolution.Budget(epochs=1, max_train=7, max_eval=7),
                    base=_base(), fixed=fixed, retrain_best=False)
    with pytest.raises(ConfigError, match="seeds: expected a positive integer"):
        evolution.run_seeded_searches("synthetic-tiny", 0, 2, 1, **settings)
    ids = evolution.run_seeded_searches("synthetic-tiny", 1, 2, 1, **settings)
    assert ids == ["cmp-ga-s5", "cmp-random-s5"]
    states = [evolution.search_state(s) for s in ids]
    assert [(s["strategy"], s["settings"]["seed"], s["status"]) for s in states] == [
        ("ga", 5, "finished"), ("random", 5, "finished")]
    assert {(s["settings"]["population"], s["settings"]["generations"]) for s in states} == {(2, 1)}
    updated = [s["cost"]["seconds"] for s in states]
    # Run again (as `evolve --seeds 1 --name cmp` would): finished searches are skipped, nothing retrains.
    assert evolution.run_seeded_searches("synthetic-tiny", 1, 2, 1, **settings) == ids
    assert [evolution.search_state(s)["cost"]["seconds"] for s in ids] == updated
    assert [evolution.search_state(s)["cost"]["evaluations"] for s in ids] == [1, 1]
