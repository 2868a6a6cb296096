"""Training profiles and the paper protocol at tiny scale: learning-rate schedule, early stopping with
best-weights restore (across a resume), test-time augmentation, upscaling in the pipeline, the five
configurations under ``paper``, and FER2013's official splits."""
from __future__ import annotations

import os
from dataclasses import replace

import keras
import numpy as np
import pytest
from conftest import tiny_config, write_imagenet_file

from core.configs import presets, profiles
from core.data import datasets
from core.data.dataset import SPLITS
from core.data.loaders import OFFICIAL_FER_SPLIT, load_fer_csv, load_synthetic
from core.data.pipeline import make_pipeline
from core.store import RunStore
from core.train import evaluation, runs, training, tta


def _summary(run_id: str) -> dict:
    return RunStore().client.get_run(run_id).data.metrics


def _test_pipeline(cfg, ds):
    x, y = ds.splits["test"]
    return make_pipeline(x, y, arch=cfg.model.arch, input_size=cfg.model.input_size,
                         num_classes=len(ds.class_names), batch_size=cfg.train.batch_size, training=False)


# ---------------------------------------------------------------- profiles


def test_profiles_change_the_protocol_but_not_what_a_configuration_means():
    standard = profiles.grid("standard", "synthetic", ["resnet50"], presets.CONFIG_IDS)
    # standard is the lab's behaviour before profiles existed
    assert standard == presets.grid("synthetic", ["resnet50"], presets.CONFIG_IDS, epochs=10, batch_size=32,
                                    input_size=48)
    paper = profiles.grid("paper", "synthetic", ["resnet50"], presets.CONFIG_IDS)
    for s, p in zip(standard, paper):
        assert (s.variant, s.model.weights, s.model.frozen_blocks, s.optimizer.name, s.optimizer.learning_rate) == \
               (p.variant, p.model.weights, p.model.frozen_blocks, p.optimizer.name, p.optimizer.learning_rate)
        assert p.model.input_size == (224 if p.model.weights == "imagenet" else 48)
        assert (p.train.profile, p.train.epochs, p.train.batch_size, p.train.lr_schedule, p.train.tta) == \
               ("paper", 50, 48, "plateau", "ten-crop")
        assert (p.train.early_stopping_patience, p.train.early_stopping_monitor) == (8, "val_accuracy")
        assert (p.optimizer.weight_decay, p.data.augment_set) == (1e-4, "paper")
    told = profiles.grid("paper", "synthetic", ["vgg16"], ["imagenet-adam", "scratch-adam"], pretrained_input_size=160)
    assert [c.model.input_size for c in told] == [160, 48]
    told = profiles.grid("paper", "synthetic", ["vgg16"], ["imagenet-adam", "scratch-adam"], input_size=64)
    assert [c.model.input_size for c in told] == [64, 64]


def test_cli_profile_option_builds_the_profiles_configs():
    from core.cli import build_parser
    from core.cli.common import apply_quick, configs_from_args

    args = build_parser().parse_args(["compare", "--profile", "paper", "--arch", "vgg16", "--epochs", "3"])
    apply_quick(args)
    configs = configs_from_args(args, args.arch, args.configs)
    assert [(c.variant, c.model.input_size, c.train.epochs) for c in configs][:3] == \
           [("imagenet-adam", 224, 3), ("imagenet-rmsprop", 224, 3), ("scratch-adam", 48, 3)]
    assert {c.train.profile for c in configs} == {"paper"}
    args = build_parser().parse_args(["train", "--quick"])
    apply_quick(args)
    assert configs_from_args(args, [args.arch], [args.config])[0].data.max_train == presets.QUICK["max_train"]


# ---------------------------------------------------------------- learning-rate schedule


def test_plateau_schedule_resumes_with_the_rate_the_killed_run_had():
    from core.train import callbacks

    cfg = tiny_config("vgg16", "scratch-adam")
    cfg = replace(cfg, train=replace(cfg.train, lr_schedule="plateau", plateau_factor=0.5, plateau_patience=1,
                                     early_stopping_monitor="val_accuracy"))
    history = [{"epoch": 1, "val_accuracy": 0.5}, {"epoch": 2, "val_accuracy": 0.4}, {"epoch": 3, "val_accuracy": 0.3}]
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(cfg.optimizer.learning_rate), loss="mse")
    cb = callbacks.lr_schedule(cfg, history)
    cb.set_model(model)
    cb.on_train_begin()
    # Two flat epochs with patience 1: halved twice, as Keras' ReduceLROnPlateau did before the kill.
    assert float(model.optimizer.learning_rate) == pytest.approx(cfg.optimizer.learning_rate / 4)
    assert cb.wait == 0 and cb.best == 0.5


# ---------------------------------------------------------------- early stopping across a resume


class _CrashAtEpoch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch + 1 == 3:
            raise RuntimeError("simulated power loss")


class _WeightsPerEpoch(keras.callbacks.Callback):
    def __init__(self, store: dict):
        super().__init__()
        self.store = store

    def on_epoch_end(self, epoch, logs=None):
        self.store[epoch + 1] = self.model.get_weights()


class _BlankHead(keras.callbacks.Callback):
    """Later epochs that get worse: the classifier is zeroed, so it predicts class 0 for everything."""

    def on_train_batch_end(self, batch, logs=None):
        layer = self.model.get_layer("head_logits")
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])


@pytest.mark.slow
def test_resumed_run_keeps_its_schedule_restores_its_best_epoch_and_records_tta_beside_plain_accuracy():
    cfg = tiny_config("vgg16", "scratch-adam", epochs=3, early_stopping_patience=5)
    cfg = replace(cfg, train=replace(cfg.train, early_stopping_monitor="val_accuracy", lr_schedule="cosine",
                                     warmup_epochs=1, tta="flip", profile="custom"))
    weights: dict[int, list] = {}
    with pytest.raises(RuntimeError, match="simulated power loss"):
        training.train(cfg, callbacks=[_WeightsPerEpoch(weights), _CrashAtEpoch()])
    store = RunStore()
    run_id = store.list_runs().iloc[0].run_id
    assert runs.checkpoint_dir(run_id).joinpath("best-weights.npz").is_file()
    result = training.train(cfg, run_id=run_id, callbacks=[_WeightsPerEpoch(weights), _BlankHead()])
    assert result.status == "FINISHED"
    assert store.client.get_run(run_id).data.tags["profile"] == "custom"

    # Learning rate 1e-3 with one warm-up epoch: half, full, then half way down the cosine.
    history = store.history(run_id)
    np.testing.assert_allclose(history.learning_rate, [5e-4, 1e-3, 5e-4], rtol=1e-5)

    # Early stopping: the model kept is the best epoch's, and test accuracy is that epoch re-evaluated.
    best = int(np.argmax(history.val_accuracy.to_numpy())) + 1  # the first epoch with the highest value
    assert best <= 2, "the blanked epochs after the resume cannot beat the epochs before it"
    assert _summary(run_id)["best_epoch"] == best
    model = store.load_model(run_id)
    for saved, kept in zip(model.get_weights(), weights[best]):
        np.testing.assert_array_equal(saved, kept)
    ds = datasets.load_for_run(cfg.data)
    probs = evaluation.predict_probs(model, _test_pipeline(cfg, ds))
    assert store.report(run_id)["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == ds.splits["test"][1]))

    # Flip TTA: recorded separately, beside (not instead of) the plain prediction.
    report, preds = store.report(run_id), store.predictions(run_id)
    assert report["tta"]["mode"] == "flip" and report["tta"]["views"] == 2
    np.testing.assert_allclose(preds["probs"], probs, atol=1e-5)
    assert not np.allclose(preds["probs_tta"], preds["probs"])
    np.testing.assert_allclose(preds["probs_tta"], tta.predict(model, _test_pipeline(cfg, ds), "flip"), atol=1e-5)
    assert _summary(run_id)["test_accuracy_tta"] == pytest.approx(report["tta"]["accuracy"])


# ---------------------------------------------------------------- test-time augmentation


def test_tta_none_is_the_plain_prediction_and_flip_averages_mirrored_views():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 5, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(7, activation="softmax")])
    x = np.random.default_rng(0).integers(0, 256, (20, 32, 32), dtype=np.uint8)
    data = make_pipeline(x, np.arange(20) % 7, arch="vgg16", input_size=32, num_classes=7, batch_size=8,
                         training=False)
    plain = evaluation.predict_probs(model, data)
    np.testing.assert_allclose(tta.predict(model, data, "none"), plain, atol=1e-6)
    flipped = evaluation.predict_probs(model, data.map(lambda a, b: (a[:, :, ::-1, :], b)))
    np.testing.assert_allclose(tta.predict(model, data, "flip"), (plain + flipped) / 2, atol=1e-6)
    # The test report's plain prediction stands in for the unaltered view; the mirrored one is still predicted.
    np.testing.assert_allclose(tta.predict(model, data, "flip", plain=np.zeros_like(plain)), flipped / 2, atol=1e-6)
    assert not np.allclose(flipped, plain)
    ten = tta.predict(model, data, "ten-crop")
    assert len(tta.views("ten-crop")) == 10 and not np.allclose(ten, plain)
    assert [tta.extra_passes(m) for m in ("none", "flip", "ten-crop")] == [0, 1, 10]
    np.testing.assert_allclose(ten.sum(axis=1), 1.0, atol=1e-5)


# ---------------------------------------------------------------- upscaling in the pipeline


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_upscaling_happens_batch_by_batch_so_memory_does_not_grow_with_input_size():
    # Evaluation pipelines cache their batches. Cached after upscaling to 160 px they would hold
    # 160 x 160 x 3 float32 = 300 KB per face (1000 more faces: +290 MB); cached as stored, 2.3 KB.
    # Per-batch buffers do not depend on the number of faces, so the growth difference isolates the cache.
    growth = {}
    for n in (200, 1200):
        x = np.random.default_rng(1).integers(0, 256, (n, 48, 48), dtype=np.uint8)
        before = _rss()
        data = make_pipeline(x, np.arange(n) % 7, arch="vgg16", input_size=160, num_classes=7,
                             batch_size=50, training=False)
        for _ in range(2):  # the first pass fills the cache
            shapes = {tuple(a.shape[1:]) for a, _ in data}
        assert shapes == {(160, 160, 3)} and x.shape == (n, 48, 48)
        growth[n] = _rss() - before
        del data
    assert growth[1200] - growth[200] < 100 * 2**20, growth


# ---------------------------------------------------------------- the five configurations under paper


@pytest.mark.slow
def test_paper_profile_trains_each_of_the_five_configurations(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # the fake ImageNet file stays with this test
    write_imagenet_file("vgg16")
    configs = profiles.grid("paper", "synthetic-tiny", ["vgg16"], presets.CONFIG_IDS, epochs=1, batch_size=16,
                            max_train=21, max_eval=14, input_size=32, pretrained_input_size=40)
    store = RunStore()
    for cfg in configs:
        result = training.train(cfg, keep_model=False)
        assert result.status == "FINISHED", cfg.variant
        report = store.report(result.run_id)
        assert report["tta"]["mode"] == "ten-crop" and 0.0 <= report["tta"]["accuracy"] <= 1.0
        assert store.client.get_run(result.run_id).data.tags["profile"] == "paper"
        assert store.config(result.run_id).model.input_size == (40 if cfg.model.weights == "imagenet" else 32)
        assert _summary(result.run_id)["best_epoch"] == 1


# ---------------------------------------------------------------- FER2013 splits


def _fer_csv(path, usage: bool):
    rng = np.random.default_rng(0)
    rows = ["emotion,pixels" + (",Usage" if usage else "")]
    for i, use in enumerate(["Training"] * 28 + ["PublicTest"] * 14 + ["PrivateTest"] * 14):
        pixels = " ".join(map(str, rng.integers(0, 256, 64)))
        rows.append(f"{i % 7},{pixels}" + (f",{use}" if usage else ""))
    path.write_text("\n".join(rows) + "\n")
    return path


def test_fer2013_usage_splits_are_used_as_published_and_recorded_on_runs(tmp_path, st_clean):
    from dashboard import services

    official = load_fer_csv(_fer_csv(tmp_path / "fer.csv", usage=True))
    assert [len(official.splits[s][1]) for s in SPLITS] == [28, 14, 14]
    assert official.split == OFFICIAL_FER_SPLIT
    carved = load_fer_csv(_fer_csv(tmp_path / "fer-nousage.csv", usage=False), seed=3)
    assert "no Usage column" in carved.split and "seed 3" in carved.split

    cfg = tiny_config()
    store = RunStore()
    a = runs.open_run(cfg, official, store=store)
    b = runs.open_run(cfg, official, store=store)
    c = runs.open_run(cfg, carved, store=store)
    assert store.client.get_run(a).data.tags["dataset.split"] == OFFICIAL_FER_SPLIT
    assert services.split_warning([a, b]) is None
    warning = services.split_warning([a, c])
    assert "different train/validation/test splits" in warning and "official FER2013 Usage" in warning


# ---------------------------------------------------------------- bench


@pytest.mark.slow
def test_bench_reports_throughput_at_the_paper_profiles_sizes(monkeypatch):
    from core.bench import report, suites

    # The paper profile's sizes shrunk to CPU scale; the measurement code is the one a GPU runs.
    small = replace(profiles.PROFILES["paper"], input_size=32, pretrained_input_size=40, batch_size=8)
    monkeypatch.setitem(profiles.PROFILES, "paper", small)
    results = suites.run_paper_benchmark(("vgg16",), n_images=16, epochs=1, progress=lambda line: None)
    rows = results["paper"]
    assert [(r["size"], r["weights"]) for r in rows] == [(40, "pretrained"), (32, "scratch")]
    for r in rows:
        assert r["train_images_per_sec"] > 0 and r["eval_images_per_sec"] > 0
        per_epoch = 28709 / r["train_images_per_sec"] + 3589 / r["eval_images_per_sec"]
        assert r["fer2013_epoch_s"] == pytest.approx(per_epoch)
        assert r["fer2013_run_s_at_max_epochs"] == pytest.approx(50 * per_epoch + 11 * 3589 / r["eval_images_per_sec"])
    assert rows[0]["train_gflop_per_image"] > rows[1]["train_gflop_per_image"]  # larger input, more work
    table = report.format_paper_table(results)
    assert "vgg16@40" in table and "vgg16@32" in table and "estimate" in table


def test_compare_lists_each_runs_protocol(st_clean):
    from dashboard import services

    store = RunStore()
    paper = profiles.grid("paper", "synthetic-tiny", ["vgg16"], ["imagenet-adam"])[0]
    ds = load_synthetic("synthetic-tiny")
    a = runs.open_run(paper, ds, store=store)
    b = runs.open_run(tiny_config(), ds, store=store)
    table = services.protocol_table([a, b]).set_index("profile")
    assert table.loc["paper", "input px"] == 224 and table.loc["paper", "TTA"] == "ten-crop"
    assert table.loc["paper", "early stopping"] == "8 epochs on val_accuracy"
    assert table.loc["paper", "LR schedule"] == "x0.75 after 5 flat epochs"
    assert table.loc["standard", "TTA"] == "none" and table.loc["standard", "early stopping"] == "off"
