"""Seeds as a dimension: the same seed reproduces a run, another seed changes only the training,
never the data split; grids and the command line repeat configurations over seeds."""
from __future__ import annotations

from dataclasses import replace

import pytest
from conftest import tiny_config
from scipy import stats as sps

from core.configs import ConfigError, presets

TINY = ["--dataset", "synthetic-tiny", "--arch", "vgg16", "--epochs", "1", "--input-size", "32", "--batch-size", "8",
        "--max-train", "16", "--max-eval", "7"]


@pytest.mark.slow
def test_seeded_grid_end_to_end_from_the_cli_reproducible_by_seed(fresh_artifacts, capsys):
    """2 configurations x 3 seeds from `compare --seeds 3`, then `summary`; one run repeated with `train`."""
    from core.analysis import comparison
    from core.cli import main
    from core.store import RunStore

    assert main(["compare", *TINY, "--configs", "scratch-adam", "scratch-rmsprop", "--seeds", "3",
                 "--group", "g-tiny", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Group g-tiny: 6 of 6 runs finished." in out and "python -m core summary g-tiny" in out
    store = RunStore()
    table = store.list_runs()
    assert sorted(zip(table.variant, table.seed)) == [(v, s) for v in ("scratch-adam", "scratch-rmsprop")
                                                      for s in (42, 43, 44)]
    assert table.groupby("variant").repeat_key.nunique().tolist() == [1, 1]
    assert set(table.group) == {"g-tiny"}
    # Seeds change the training only: every run saw the same split.
    assert len({store.get(r).data.tags["dataset.fingerprint"] for r in table.run_id}) == 1
    first_loss = {(v, s): float(store.history(r).loss.iloc[0]) for r, v, s in zip(table.run_id, table.variant, table.seed)}
    assert len({first_loss["scratch-adam", s] for s in (42, 43, 44)}) == 3  # different seeds, different losses

    # The same seed again reproduces the first-epoch loss exactly (op determinism on CPU).
    assert main(["train", *TINY, "--config", "scratch-adam", "--seed", "43"]) == 0
    again = store.list_runs().iloc[0]
    assert (again.seed, again.group) == (43, "")
    assert float(store.history(again.run_id).loss.iloc[0]) == first_loss["scratch-adam", 43]
    capsys.readouterr()

    assert main(["summary", "g-tiny"]) == 0
    out = capsys.readouterr().out
    summary = comparison.group_summary("g-tiny")
    acc = summary["per_seed"].pivot(index="seed", columns="configuration", values="test accuracy")
    adam, rms = acc["vgg16/scratch-adam · synthetic-tiny"], acc["vgg16/scratch-rmsprop · synthetic-tiny"]
    half = sps.t.ppf(0.975, 2) * sps.sem(adam)  # t.interval itself gives NaN when every seed scored the same
    mean, low, high = adam.mean(), adam.mean() - half, adam.mean() + half
    assert f"{mean * 100:.3g} [{low * 100:.3g}, {high * 100:.3g}]" in out
    assert "Group g-tiny: 6 finished runs of 2 configuration(s)" in out and "42, 43, 44" in out
    p = sps.ttest_rel(adam, rms).pvalue if (adam - rms).std() > 0 else None
    if p is not None:
        assert summary["pairs"]["p (paired t)"][0] == pytest.approx(p)
    assert summary["verdicts"][0] in out


def test_grid_repeats_every_configuration_per_seed():
    configs = presets.grid("synthetic-tiny", ["resnet50"], ["scratch-adam", "scratch-rmsprop"], seeds=[1, 2, 3],
                           epochs=1, batch_size=8, input_size=32)
    assert [(c.train.seed, c.variant) for c in configs] == [
        (s, v) for s in (1, 2, 3) for v in ("scratch-adam", "scratch-rmsprop")]
    assert {c.data.split_seed for c in configs} == {42}
    assert [c.train.seed for c in presets.grid("synthetic", ["vgg16"], ["scratch-adam"], epochs=1, batch_size=8,
                                                             input_size=32, seed=5)] == [5]
    with pytest.raises(ConfigError, match="distinct"):
        presets.grid("synthetic", ["vgg16"], ["scratch-adam"], seeds=[1, 1], epochs=1, batch_size=8, input_size=32)


def test_seeds_option_counts_or_lists():
    assert presets.seed_list([3], start=42) == [42, 43, 44]
    assert presets.seed_list([1, 5, 9]) == [1, 5, 9]
    with pytest.raises(ConfigError, match="how many seeds"):
        presets.seed_list([0])
    with pytest.raises(ConfigError, match="distinct"):
        presets.seed_list([4, 4])


def test_submit_queues_one_job_per_configuration_and_seed(fresh_artifacts, capsys):
    from core import jobs
    from core.cli import main

    assert main(["submit", "--dataset", "synthetic-tiny", "--configs", "scratch-adam", "scratch-rmsprop",
                 "--epochs", "1", "--input-size", "32", "--seeds", "2", "--seed", "10", "--group", "g-seeds",
                 "--no-worker"]) == 0
    table = jobs.list_jobs(group="g-seeds")
    payloads = [jobs.get_job(int(i))["payload"]["config"] for i in table.id]
    assert sorted((p["train"]["seed"], p["variant"]) for p in payloads) == [
        (10, "scratch-adam"), (10, "scratch-rmsprop"), (11, "scratch-adam"), (11, "scratch-rmsprop")]
    assert {p["group"] for p in payloads} == {"g-seeds"}


def test_old_configs_keep_their_split():
    cfg = tiny_config().to_dict()
    del cfg["data"]["split_seed"]  # a config saved before the split had its own seed
    from core.configs import RunConfig

    assert RunConfig.from_dict(cfg).data.split_seed == 42
    assert replace(tiny_config(), train=replace(tiny_config().train, seed=3)).data.split_seed == 42


@pytest.mark.slow
def test_train_page_queues_seeds_of_each_configuration(no_worker):
    from pathlib import Path

    from conftest import texts
    from streamlit.testing.v1 import AppTest

    from core import jobs

    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py"), default_timeout=60)
    at.query_params.update(dataset="synthetic-tiny", archs="vgg16", configs="scratch-adam", epochs="1", size="32")
    at.run()
    at = at.switch_page("views/train.py").run()
    at.number_input(key="seeds").set_value(3)
    at.number_input(key="seed").set_value(5)
    at.button[0].click().run()  # "Estimate"
    assert "3 run(s) (3 seeds of each configuration)" in texts(at)
    at.button[1].click().run()  # "Start training"
    assert "Queued 3 job(s)" in texts(at)
    payloads = [jobs.get_job(int(i))["payload"]["config"] for i in jobs.list_jobs().id]
    assert sorted(p["train"]["seed"] for p in payloads) == [5, 6, 7]
    assert len({p["group"] for p in payloads}) == 1


@pytest.mark.slow
def test_overview_quick_comparison_with_seeds(no_worker):
    from pathlib import Path

    from conftest import texts
    from streamlit.testing.v1 import AppTest

    from core import jobs

    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py"), default_timeout=60)
    at.run()
    one = texts(at).split("Estimated time on this machine: **")[1].split("**")[0]
    at.number_input(key="quick_seeds").set_value(3).run()
    page = texts(at)
    assert "scratch-adam, scratch-rmsprop**, each with 3 seeds (6 runs)" in page
    three = page.split("Estimated time on this machine: **")[1].split("**")[0]
    assert three != one  # the estimate covers every seed's runs
    at.button(key="quick_start").click().run()
    payloads = [jobs.get_job(int(i))["payload"]["config"] for i in jobs.list_jobs().id]
    assert sorted((p["variant"], p["train"]["seed"]) for p in payloads) == [
        (v, s) for v in ("scratch-adam", "scratch-rmsprop") for s in (42, 43, 44)]
