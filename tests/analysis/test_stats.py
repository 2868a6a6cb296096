"""Across-seed statistics against scipy computed here and against published values."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from core.analysis import stats

ADAM = {1: 0.60, 2: 0.62, 3: 0.58, 4: 0.65, 5: 0.61}
RMSPROP = {1: 0.57, 2: 0.60, 3: 0.55, 4: 0.60, 5: 0.60}


def test_mean_ci_is_the_t_interval():
    x = np.array([0.61, 0.58, 0.66, 0.63])
    low, high = sps.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
    ci = stats.mean_ci(x)
    assert (ci["mean"], ci["low"], ci["high"], ci["n"]) == pytest.approx((x.mean(), low, high, 4))
    one = stats.mean_ci([0.7])
    assert one["mean"] == 0.7 and np.isnan(one["low"]) and np.isnan(one["high"])  # one seed: no spread
    per_class = stats.mean_ci(np.array([[0.2, 0.9], [0.4, 0.7], [0.3, 0.8]]))
    assert per_class["mean"] == pytest.approx([0.3, 0.8])
    assert per_class["high"] - per_class["mean"] == pytest.approx([sps.t.ppf(0.975, 2) * 0.1 / np.sqrt(3)] * 2)


def test_paired_comparison_matches_scipy():
    r = stats.paired(ADAM, RMSPROP)
    a, b = np.array(list(ADAM.values())), np.array(list(RMSPROP.values()))
    d = a - b
    assert r["n"] == 5 and r["wins_a"] == 5 and r["wins_b"] == 0
    assert r["t_p"] == pytest.approx(sps.ttest_rel(a, b).pvalue)
    assert r["t_statistic"] == pytest.approx(sps.ttest_rel(a, b).statistic)
    assert r["wilcoxon_p"] == pytest.approx(sps.wilcoxon(a, b).pvalue) == pytest.approx(0.0625)
    assert (r["low"], r["high"]) == pytest.approx(sps.t.interval(0.95, 4, loc=d.mean(), scale=sps.sem(d)))
    assert r["d_z"] == pytest.approx(d.mean() / d.std(ddof=1))
    # Five seeds that all agree still cannot reach p < 0.05 with Wilcoxon: the page must say so.
    assert "cannot reach p < 0.05" in r["wilcoxon_note"] and "6 or more" in r["wilcoxon_note"]


def test_pairing_uses_shared_seeds_only():
    r = stats.paired({1: 0.5, 2: 0.6, 3: 0.7}, {2: 0.55, 3: 0.6, 4: 0.9})
    assert r["seeds"] == [2, 3] and r["diffs"] == pytest.approx([0.05, 0.1])


def test_smallest_wilcoxon_p_by_seed_count():
    assert stats.min_wilcoxon_p(5) == pytest.approx(sps.wilcoxon([1, 2, 3, 4, 5]).pvalue) == 0.0625
    assert stats.min_wilcoxon_p(6) == pytest.approx(sps.wilcoxon([1, 2, 3, 4, 5, 6]).pvalue)
    assert stats.min_wilcoxon_p(6) < 0.05


def test_holm_known_values():
    # R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") -> 0.03 0.06 0.06 0.02
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    adjusted = stats.holm([0.02, np.nan, 0.01])
    assert np.isnan(adjusted[1]) and adjusted[[0, 2]] == pytest.approx([0.02, 0.02])


def test_seeds_needed_matches_published_power_tables():
    # G*Power, paired t-test, two-sided, alpha 0.05, power 0.8: dz 0.5 -> 34, 0.8 -> 15, 1.0 -> 10.
    assert [stats.seeds_needed(d) for d in (0.5, 0.8, 1.0)] == [34, 15, 10]
    assert stats.seeds_needed(0.0) is None and stats.seeds_needed(0.01) is None


def test_all_pairs_table_holm_corrects_the_family():
    other = {s: v + 0.005 * (-1) ** s for s, v in RMSPROP.items()}
    table = stats.all_pairs({"adam": ADAM, "rmsprop": RMSPROP, "other": other})
    assert list(zip(table.A, table.B)) == [("adam", "rmsprop"), ("adam", "other"), ("rmsprop", "other")]
    assert table["p (Holm)"].to_numpy() == pytest.approx(stats.holm(table["p (paired t)"].to_numpy()))
    assert table["p (paired t)"][0] == pytest.approx(sps.ttest_rel(list(ADAM.values()), list(RMSPROP.values())).pvalue)


def test_verdicts_in_plain_words():
    text = stats.verdict("Adam", "RMSprop", stats.paired(ADAM, RMSPROP))
    assert text.startswith("Adam beat RMSprop in 5 of 5 seeds by 2.8 points [1.0, 4.6] of test accuracy")
    assert "real" in text
    flipped = stats.verdict("RMSprop", "Adam", stats.paired(RMSPROP, ADAM))
    assert flipped.startswith("Adam beat RMSprop in 5 of 5 seeds by 2.8 points [1.0, 4.6]")
    close = {1: 0.61, 2: 0.60, 3: 0.59, 4: 0.62, 5: 0.62}
    text = stats.verdict("Adam", "RMSprop", stats.paired(ADAM, close))
    assert "inconclusive" in text and "seeds would be needed" in text and "an estimate from 5 seeds" in text
    assert "by exactly 10.0 points of test accuracy with every one of 3 seeds" in stats.verdict(
        "A", "B", stats.paired({1: 0.5, 2: 0.6, 3: 0.7}, {1: 0.4, 2: 0.5, 3: 0.6}))
    assert "single seed cannot separate" in stats.verdict("A", "B", stats.paired({1: 0.5}, {1: 0.4}))


def test_curve_band_across_seeds():
    def hist(acc, times):
        return pd.DataFrame({"epoch": [1, 2, 3], "accuracy": acc, "epoch_time": times})

    curves = [hist([0.2, 0.4, 0.6], [10, 10, 10]), hist([0.3, 0.5, 0.7], [12, 12, 12]),
              hist([0.1, 0.3, 0.5], [14, 14, 14])]
    band = stats.curve_band(curves, "accuracy")
    assert band.x.tolist() == [1, 2, 3] and band["mean"].tolist() == pytest.approx([0.2, 0.4, 0.6])
    assert band.high[0] - band["mean"][0] == pytest.approx(sps.t.ppf(0.975, 2) * 0.1 / np.sqrt(3))
    assert stats.curve_band(curves, "accuracy", x="time").x.tolist() == pytest.approx([12, 24, 36])
    smooth = stats.curve_band(curves, "accuracy", smoothing=0.5)
    ema = pd.Series([0.2, 0.4, 0.6]).ewm(alpha=0.5).mean()
    assert smooth["mean"].tolist() == pytest.approx(ema.tolist())
    short = stats.curve_band([*curves, hist([0.9, np.nan, np.nan], [1, 1, 1]).dropna()], "accuracy")
    assert short.n.tolist() == [4, 3, 3]  # a seed that stopped early counts where it has values


def test_a_statistic_that_cannot_be_computed_says_why():
    # Two seeds, the same difference with both: no spread, so the t-test and d_z divide by zero.
    r = stats.paired({1: 0.5, 2: 0.6}, {1: 0.4, 2: 0.5})
    assert np.isnan(r["t_p"]) and np.isnan(r["d_z"]) and "no spread" in r["t_note"]
    table = stats.all_pairs({"a": {1: 0.5, 2: 0.6}, "b": {1: 0.4, 2: 0.5}})
    assert "no spread" in table.note[0] and list(table.columns)[-1] == "note"
    assert stats.paired({1: 0.5}, {1: 0.4})["t_note"] == "needs at least two seeds"
    assert stats.paired({1: 0.5, 2: 0.6}, {1: 0.4, 2: 0.4})["t_note"] == ""


def test_a_configurations_interval_never_leaves_the_metrics_range():
    # Two seeds at 54% and 100% accuracy: the t-interval runs far past 100%, accuracy cannot.
    import pandas as pd

    from core.analysis import comparison

    per_seed = pd.DataFrame({"configuration": ["a", "a"], "seed": [1, 2], "test accuracy": [0.54, 1.0],
                             "macro-F1": [0.02, 0.04]})
    row = comparison.aggregate(per_seed).iloc[0]
    assert row["test accuracy"] == pytest.approx(0.77)
    assert row["test accuracy CI high"] == 1.0 and 0.0 <= row["test accuracy CI low"] < 0.77
    assert row["macro-F1 CI low"] == 0.0 and row["macro-F1 CI high"] > 0.04
