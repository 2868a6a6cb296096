"""Seeds as a dimension: the same seed reproduces a run, another seed changes only the training,
never the data split; grids and the command line repeat configurations over seeds."""
from __future__ import annotations

from dataclasses import replace

import pytest
from conftest import tiny_config

from core import presets
from core.config import ConfigError


def _first_epoch_loss(seed: int, store) -> tuple[float, str]:
    from core import training

    cfg = tiny_config("vgg16", "scratch-adam", seed=seed)
    cfg = replace(cfg, data=replace(cfg.data, max_train=16, max_eval=7))
    result = training.train(cfg, store=store, keep_model=False)
    return float(result.history["loss"].iloc[0]), store.get(result.run_id).data.tags["dataset.fingerprint"]


def test_same_seed_same_loss_other_seed_other_loss_same_split(fresh_artifacts):
    from core.tracking import RunStore

    store = RunStore()
    first, split_a = _first_epoch_loss(7, store)
    again, split_b = _first_epoch_loss(7, store)
    other, split_c = _first_epoch_loss(8, store)
    assert first == again  # exactly: op determinism on CPU
    assert other != first
    assert split_a == split_b == split_c  # the split follows data.split_seed, not the training seed
    table = store.list_runs()
    assert sorted(table.seed) == [7, 7, 8]
    assert table.repeat_key.nunique() == 1  # three repeats of one configuration


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
    from core.config import RunConfig

    assert RunConfig.from_dict(cfg).data.split_seed == 42
    assert replace(tiny_config(), train=replace(tiny_config().train, seed=3)).data.split_seed == 42


def test_train_page_queues_seeds_of_each_configuration(no_worker):
    from pathlib import Path

    from conftest import texts
    from streamlit.testing.v1 import AppTest

    from core import jobs

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py"), default_timeout=60)
    at.query_params.update(dataset="synthetic-tiny", archs="vgg16", configs="scratch-adam", epochs="1", size="32")
    at.run()
    at = at.switch_page("views/train.py").run()
    at.number_input(key="train_seeds").set_value(3)
    at.number_input(key="train_seed").set_value(5)
    at.button[0].click().run()  # "Estimate"
    assert "3 run(s) (3 seeds of each configuration)" in texts(at)
    at.button[1].click().run()  # "Start training"
    assert "Queued 3 job(s)" in texts(at)
    payloads = [jobs.get_job(int(i))["payload"]["config"] for i in jobs.list_jobs().id]
    assert sorted(p["train"]["seed"] for p in payloads) == [5, 6, 7]
    assert len({p["group"] for p in payloads}) == 1


def test_overview_quick_comparison_with_seeds(no_worker):
    from pathlib import Path

    from conftest import texts
    from streamlit.testing.v1 import AppTest

    from core import jobs

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py"), default_timeout=60)
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
