"""A real one-epoch run through train(), the run store, resume after a crash, and re-evaluation."""
from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np
import pytest
from conftest import tiny_config

from core.store import RunStore
from core.train import runs, training


@pytest.fixture(scope="module")
def finished_run():
    cfg = tiny_config("vgg16", "scratch-adam")
    result = training.train(cfg)
    return cfg, result


@pytest.mark.slow
def test_train_records_everything_in_the_store(finished_run):
    cfg, result = finished_run
    store = RunStore()
    assert result.status == "FINISHED"
    runs = store.list_runs().set_index("run_id")
    row = runs.loc[result.run_id]
    assert (row.status, row.variant, row.arch, row.dataset) == ("FINISHED", "scratch-adam", "vgg16", "synthetic-tiny")
    assert 0.0 <= row.test_accuracy <= 1.0 and row.params_total > 1e6
    hist = store.history(result.run_id)
    assert hist.epoch.tolist() == [1]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "images_per_sec", "epoch_time"} <= set(hist.columns)
    assert hist.images_per_sec.iloc[0] > 0
    report = store.report(result.run_id)
    cm = np.array(report["confusion_matrix"])
    assert cm.shape == (7, 7) and cm.sum() == 21  # 3 test faces per class
    assert report["class_names"][3] == "happy"
    preds = store.predictions(result.run_id)
    assert preds["probs"].shape == (21, 7)
    np.testing.assert_allclose(preds["probs"].sum(axis=1), 1.0, atol=1e-4)
    assert store.config(result.run_id) == cfg
    model = store.load_model(result.run_id)
    assert model.input_shape == (None, 32, 32, 3)


def test_evaluate_stored_model_on_another_dataset(finished_run):
    _, result = finished_run
    new_id, report = runs.evaluate_stored(result.run_id, "synthetic-small")
    store = RunStore()
    assert store.list_runs().set_index("run_id").loc[new_id, "dataset"] == "synthetic-small"
    assert sum(map(sum, report["confusion_matrix"])) == 7 * 30


class CrashAtEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise RuntimeError("simulated power loss")


@pytest.mark.slow
def test_interrupted_run_resumes_without_duplicated_epochs():
    cfg = tiny_config("vgg16", "scratch-rmsprop", epochs=3)  # VGG16 traces in a quarter of ResNet50's time
    cfg = replace(cfg, data=replace(cfg.data, max_train=14, max_eval=7))
    store = RunStore()
    with pytest.raises(RuntimeError, match="simulated power loss"):
        training.train(cfg, callbacks=[CrashAtEpoch(3)])
    crashed = store.list_runs().iloc[0]
    assert crashed.status == "FAILED" and "simulated power loss" in crashed.error
    assert runs.checkpoint_dir(crashed.run_id).joinpath("state.json").is_file()

    # Resumed as a GA individual would be: every number recorded, the model file not kept.
    result = training.train(cfg, run_id=crashed.run_id, keep_model=False)
    assert result.status == "FINISHED"
    assert store.model_path(result.run_id) is None and store.report(result.run_id)["n"] == 7
    from core import inference
    assert result.run_id not in [p["id"] for p in inference.list_predictors(store)]
    assert store.history(result.run_id).epoch.tolist() == [1, 2, 3]
    raw = store.client.get_metric_history(result.run_id, "loss")
    assert sorted(m.step for m in raw) == [1, 2, 3]
    assert not runs.checkpoint_dir(result.run_id).exists()


def test_cancel_stops_within_a_batch_and_is_recorded():
    cfg = tiny_config("vgg16", "scratch-adam", epochs=2)
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) >= 2

    result = training.train(cfg, should_stop=should_stop)
    assert result.status == "KILLED"
    assert len(calls) == 2  # stopped after the second batch
    row = RunStore().list_runs().set_index("run_id").loc[result.run_id]
    assert row.status == "KILLED" and row.epochs_done == 0


@pytest.mark.slow
def test_frozen_feature_cache_trains_the_full_model():
    from core.train import models

    cfg = tiny_config("resnet50", "imagenet-frozen-adam")
    cfg = replace(cfg, model=replace(cfg.model, weights="none"), data=replace(cfg.data, augment=False))
    assert training.can_cache_features(cfg)
    result = training.train(cfg)
    store = RunStore()
    assert store.client.get_run(result.run_id).data.tags["frozen_feature_cache"] == "True"
    trained = store.load_model(result.run_id).get_layer("resnet50")
    fresh = models.build_model(cfg.model, 7, seed=cfg.train.seed).get_layer("resnet50")
    # Frozen stem untouched, last block and head trained: the cache trained the real model.
    np.testing.assert_array_equal(trained.get_layer("conv1_conv").get_weights()[0],
                                  fresh.get_layer("conv1_conv").get_weights()[0])
    assert not np.allclose(trained.get_layer("conv5_block3_3_conv").get_weights()[0],
                           fresh.get_layer("conv5_block3_3_conv").get_weights()[0])
    assert store.report(result.run_id)["n"] == 21


def test_evaluate_stored_names_classes_the_model_does_not_know(finished_run, tmp_path):
    import cv2

    from core.data.dataset import DatasetError

    for split in ("train", "test"):
        for cls in ("happy", "contempt"):
            (tmp_path / "ckplus" / split / cls).mkdir(parents=True)
            for i in range(3):
                cv2.imwrite(str(tmp_path / "ckplus" / split / cls / f"{i}.png"), np.full((48, 48), 40 * i, np.uint8))
    _, result = finished_run
    with pytest.raises(DatasetError, match=r"classes \['contempt'\] are unknown to run"):
        runs.evaluate_stored(result.run_id, str(tmp_path / "ckplus"))
