"""The bench's statistics on fabricated window timings: interleaving, intervals, verdicts, compare."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from core.bench import report, stats


def _fake_clock(durations):
    """A clock that advances by the next duration each time a window ends."""
    state = {"t": 0.0, "ticks": 0}
    queue = list(durations)

    def clock():
        state["ticks"] += 1
        if state["ticks"] % 2 == 0:  # the second read of a window: its end
            state["t"] += queue.pop(0)
        return state["t"]

    return clock


def test_interleave_rotates_the_order_drops_warm_up_and_turns_windows_into_rates():
    calls = []

    def variant(name):
        return stats.Variant(name, lambda: (calls.append(name), 10)[1], warm_up=lambda: calls.append(f"warm {name}"))

    durations = [1.0, 2.0, 5.0,  # round 1: A B C
                 2.0, 5.0, 1.0,  # round 2: B C A
                 5.0, 1.0, 2.0]  # round 3: C A B
    rates = stats.interleave([variant("A"), variant("B"), variant("C")], 3, clock=_fake_clock(durations))
    timed = [c for c in calls if not c.startswith("warm")]
    assert calls[:2] == ["warm A", "A"]  # warm-up, then one untimed warm-up window per variant
    assert timed[3:] == ["A", "B", "C", "B", "C", "A", "C", "A", "B"]
    assert rates == {"A": [10.0, 10.0, 10.0], "B": [5.0, 5.0, 5.0], "C": [2.0, 2.0, 2.0]}


def test_interleave_rejects_duplicate_names_and_zero_windows():
    v = stats.Variant("A", lambda: 1)
    with pytest.raises(ValueError, match="unique"):
        stats.interleave([v, v], 2)
    with pytest.raises(ValueError, match="windows=0"):
        stats.interleave([v], 0)


def test_a_real_speed_up_is_resolved_and_noise_is_not():
    rng = np.random.default_rng(0)
    load = rng.uniform(0.6, 1.0, 8)  # shared slow-downs hit both variants of a round
    base = 40 * load * rng.normal(1, 0.02, 8)
    faster = 48 * load * rng.normal(1, 0.02, 8)
    r = stats.paired_ratio(faster, base)
    assert r["verdict"] == "higher" and r["ci"][0] > 1 and 1.1 < r["ratio"] < 1.3
    assert stats.paired_ratio(base, faster)["verdict"] == "lower"
    same = 40 * load * rng.normal(1, 0.05, 8)
    assert stats.paired_ratio(same, base)["verdict"] == stats.NOT_RESOLVED
    assert "not resolved" in stats.format_ratio(stats.paired_ratio(same, base))


def test_pairing_resolves_what_load_swings_would_hide_unpaired():
    load = np.array([1.0, 0.5, 0.9, 0.4, 1.0, 0.6])  # another process comes and goes
    a, b = 110 * load, 100 * load
    assert stats.paired_ratio(a, b)["verdict"] == "higher"
    assert stats.unpaired_ratio(a, b)["verdict"] == stats.NOT_RESOLVED


def test_too_few_windows_are_never_a_verdict():
    r = stats.paired_ratio([50.0, 52.0], [10.0, 11.0])
    assert r["ci"] is None and r["verdict"] == stats.NOT_RESOLVED
    assert "fewer than 6 windows" in stats.format_ratio(r)
    # Five rounds all above 1 could still be chance (1 in 16): no verdict either.
    assert stats.paired_ratio([2.0, 2.1, 2.2, 2.3, 2.4], [1.0] * 5)["verdict"] == stats.NOT_RESOLVED
    with pytest.raises(ValueError, match="same non-zero count"):
        stats.paired_ratio([1.0, 2.0], [1.0])


def test_summarize_gives_median_and_interquartile_range():
    s = stats.summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["median"] == 3.0 and s["iqr"] == [2.0, 4.0] and s["windows"][-1] == 100.0


def _run(figures: dict, ratios: dict | None = None) -> dict:
    return {"schema": stats.SCHEMA, "figures": figures, "ratios": ratios or {}}


def test_compare_reports_each_change_with_its_interval_and_direction():
    rng = np.random.default_rng(1)
    old_fast = list(40 + rng.normal(0, 1, 6))
    old = _run({"train/a/pipeline": stats.summarize(old_fast),
                "train/a/bare_fit": stats.summarize(list(30 + rng.normal(0, 1, 6))),
                "startup/s": stats.summarize([10.0, 10.5, 9.5, 10.2, 9.8, 10.1], unit="s", higher_is_better=False),
                "gone": stats.summarize([1.0, 1.0, 1.0])},
               {"train/a/pipeline_vs_bare": stats.paired_ratio(old_fast, list(30 + rng.normal(0, 1, 6)))})
    new_fast = list(52 + rng.normal(0, 1, 6))
    new = _run({"train/a/pipeline": stats.summarize(new_fast),
                "train/a/bare_fit": stats.summarize(list(30 + rng.normal(0, 1, 6))),
                "startup/s": stats.summarize([14.0, 14.5, 13.5, 14.2, 13.8, 14.1], unit="s", higher_is_better=False)},
               {"train/a/pipeline_vs_bare": stats.paired_ratio(new_fast, new_fast)})  # exactly 1
    diff = stats.compare(old, new)
    by = {f["figure"]: f["change"] for f in diff["figures"]}
    assert by["train/a/pipeline"]["verdict"] == "better" and by["train/a/pipeline"]["ci"][0] > 1.2
    assert by["train/a/bare_fit"]["verdict"] == stats.NOT_RESOLVED
    assert by["startup/s"]["verdict"] == "worse"  # more seconds
    assert diff["only_old"] == ["gone"]
    assert diff["ratios"][0]["verdict_changed"] is True
    text = report.format_compare(diff)
    assert "train/a/pipeline" in text and "better" in text and "verdict changed" in text and "only in OLD: gone" in text


def test_compare_tells_a_verdict_that_flips_near_one_from_a_ratio_that_moved():
    # Per-round ratios around 0.97 with a 2% spread: one run happens to exclude 1, the next does not.
    below = np.array([0.93, 0.94, 0.95, 0.955, 0.96, 0.965, 0.97, 0.975, 0.98, 0.985, 0.99, 0.995])
    straddles = below + 0.02
    moved = below + 0.3
    base = np.full(12, 50.0)

    def run(per_round):
        return _run({}, {"train/a/pipeline_vs_bare": stats.paired_ratio(list(base * per_round), list(base))})

    flip = stats.compare(run(below), run(straddles))["ratios"][0]
    assert flip["verdict_changed"] and flip["change"]["verdict"] == stats.NOT_RESOLVED
    real = stats.compare(run(below), run(moved))["ratios"][0]
    assert real["verdict_changed"] and real["change"]["verdict"] == "higher"
    text = report.format_compare(stats.compare(run(below), run(straddles)))
    assert "verdict changed; the ratio itself: x1.02" in text and text.rstrip().endswith(stats.NOT_RESOLVED)


def test_compare_refuses_files_of_another_schema():
    with pytest.raises(ValueError, match="OLD: expected a bench JSON with schema"):
        stats.compare({"training": []}, _run({}))


def test_bench_compare_command_prints_changes_and_names_a_bad_file(tmp_path, capsys):
    from core.cli import main

    old, new, bad = tmp_path / "old.json", tmp_path / "new.json", tmp_path / "bad.json"
    old.write_text(json.dumps(_run({"matmul/gflops": stats.summarize([100.0, 101.0, 99.0, 100.5, 99.5, 100.2])})))
    new.write_text(json.dumps(_run({"matmul/gflops": stats.summarize([150.0, 151.0, 149.0, 150.5, 149.5, 150.2])})))
    bad.write_text("{not json")
    assert main(["bench", "compare", str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "matmul/gflops" in out and "1.50" in out and "better" in out
    assert main(["bench", "compare", str(old), str(bad)]) == 2
    assert "bad.json: expected a bench JSON" in capsys.readouterr().err


def test_machine_load_warns_when_the_machine_was_busy(monkeypatch):
    monkeypatch.setattr(stats.os, "getloadavg", lambda: (64.0, 64.0, 64.0))
    with stats.MachineLoad() as load:
        pass
    s = load.summary()
    assert s["load_before"][0] == 64.0 and any("other processes were running" in w for w in s["warnings"])


def test_a_worker_variant_times_windows_in_its_own_process_and_reports_its_failure():
    # functools.partial(int, 5)() == 5: a window of five units, built in the worker by name.
    worker = stats.WorkerVariant("w", "functools:partial", (int, 5))
    try:
        rates = stats.interleave([worker.variant], 2)
    finally:
        cpu = worker.stop()
    assert len(rates["w"]) == 2 and all(r > 0 for r in rates["w"]) and cpu >= 0
    broken = stats.WorkerVariant("broken", "core.no_such_module:f", ())
    with pytest.raises(RuntimeError, match="(?s)broken: the worker process failed to start:.*No module named .core.no_such_module"):
        broken.wait_ready()
    broken.stop()


def test_a_worker_variant_starts_with_its_own_environment():
    # TF_ENABLE_ONEDNN_OPTS is read when TensorFlow loads: the worker must see it before any import.
    worker = stats.WorkerVariant("env", "functools:partial", (os.getenv, "BENCH_PROBE"), env={"BENCH_PROBE": "7"})
    try:
        worker.wait_ready()
        assert worker.window() == "7"
    finally:
        worker.stop()
    assert "BENCH_PROBE" not in os.environ
