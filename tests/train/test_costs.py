"""Cost fields: every finished run records what it cost to train and to use."""
from __future__ import annotations

import math

import pytest
from conftest import tiny_config


@pytest.mark.slow
def test_a_tiny_run_records_plausible_costs(fresh_artifacts):
    import keras

    from core.data import datasets
    from core.store import RunStore
    from core.train import costs, models, training

    cfg = tiny_config("vgg16", "scratch-adam", epochs=2)
    store = RunStore()
    result = training.train(cfg, store=store, keep_model=False)
    metrics = store.get(result.run_id).data.metrics
    assert set(costs.COST_METRICS) <= set(metrics)

    ds = datasets.load_for_run(cfg.data)
    n_train = len(ds.splits["train"][1])
    assert metrics["images_seen"] == n_train * 2
    # The per-image FLOPs are the model's own: rebuild it and count again.
    forward = models.forward_flops(models.build_model(cfg.model, len(ds.class_names), seed=cfg.train.seed))
    keras.backend.clear_session()
    assert metrics["forward_flops_per_image"] == pytest.approx(forward)
    # VGG16 at 32x32: about 0.63 GFLOP of convolutions per image (2 x 313M multiply-adds).
    assert 0.5e9 < forward < 0.8e9
    assert metrics["train_flops"] == pytest.approx(3 * forward * n_train * 2, rel=1e-6)

    history = result.history
    assert metrics["train_time_s"] == pytest.approx(history["epoch_time"].sum())
    assert metrics["train_time_per_epoch_s"] == pytest.approx(metrics["train_time_s"] / 2)
    assert metrics["params_trainable"] == metrics["params_total"] > 14e6  # VGG16's conv stack, nothing frozen
    assert 0 < metrics["latency_ms_per_face"] < 60_000 and math.isfinite(metrics["latency_ms_per_face"])

    row = store.list_runs().set_index("run_id").loc[result.run_id]
    assert row.device and row.train_flops == pytest.approx(metrics["train_flops"])
    assert row.latency_ms_per_face == pytest.approx(metrics["latency_ms_per_face"])
