"""train(config) -> result: the training loop only. It knows nothing of the UI, the job queue or the GA.

Runs are opened, closed and scored through ``core.runs``; the device settings come from
``core.device``.

Users hook in through Keras callbacks and a ``should_stop`` predicate. Every epoch is
checkpointed before it is logged, so a killed run resumes with each epoch logged once.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import keras
import numpy as np
import pandas as pd

from core.configs import RunConfig, atomic_write
from core.data import datasets
from core.data.dataset import Dataset, class_weights
from core.data.pipeline import fixed_parallelism, make_pipeline
from core.store import RunStore
from core.train import callbacks as callbacks_mod
from core.train import costs, models, runs
from core.train.device import (
    accelerator,
    distribution_scope,
    mixed_policy,
    resolve_toggle,
    seed_everything,
    steps_per_execution,
)

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a finished (or cancelled) run left behind."""

    run_id: str
    status: str  # FINISHED or KILLED (cancelled)
    history: pd.DataFrame
    report: dict | None


class _EpochRecorder(keras.callbacks.Callback):
    """Checkpoint, then log, each epoch; measure throughput; honour cancel."""

    def __init__(self, store: RunStore, run_id: str, ckpt: Path, n_train: int, history: list[dict],
                 should_stop: Callable[[], bool] | None, full_model):
        super().__init__()
        # The model being fit may be only the trainable top (frozen-feature cache); the
        # checkpoint is always the whole model.
        self.full_model = full_model
        self.store, self.run_id, self.ckpt, self.n_train = store, run_id, ckpt, n_train
        self.records, self.should_stop = history, should_stop
        self.cancelled = False

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()
        self.t_train = None

    def on_train_batch_end(self, batch, logs=None):
        if self.should_stop is not None and self.should_stop():
            self.cancelled = True
            self.model.stop_training = True

    def on_test_begin(self, logs=None):
        if self.t_train is None:
            self.t_train = time.perf_counter() - self.t0

    def on_epoch_end(self, epoch, logs=None):
        if self.cancelled:
            return  # a partial epoch is not an epoch
        elapsed = time.perf_counter() - self.t0
        train_time = self.t_train or elapsed
        lr = self.model.optimizer.learning_rate
        record = {k: float(v) for k, v in (logs or {}).items() if k in
                  ("loss", "accuracy", "val_loss", "val_accuracy")}
        record.update(epoch=epoch + 1, learning_rate=float(np.asarray(lr)), epoch_time=elapsed,
                      images_per_sec=self.n_train / max(train_time, 1e-9))
        self.records.append(record)
        _save_checkpoint(self.full_model, self.ckpt, self.records)
        self.store.log_epoch(self.run_id, epoch + 1, {k: v for k, v in record.items() if k != "epoch"})
        self.store.set_tags(self.run_id, {"epochs_done": epoch + 1})


def _save_checkpoint(model, ckpt: Path, records: list[dict]) -> None:
    ckpt.mkdir(parents=True, exist_ok=True)
    epoch = records[-1]["epoch"]
    model_file = f"model-{epoch:04d}.keras"
    model.save(ckpt / model_file)
    # state.json is replaced atomically and names its model file: a kill at any point
    # leaves a consistent (model, history) pair from this epoch or the previous one.
    atomic_write(ckpt / "state.json", json.dumps({"epoch": epoch, "model_file": model_file, "history": records}))
    for old in ckpt.glob("model-*.keras"):
        if old.name != model_file:
            old.unlink(missing_ok=True)


def _load_checkpoint(ckpt: Path):
    state_file = ckpt / "state.json"
    if not state_file.is_file():
        return None, []
    state = json.loads(state_file.read_text())
    return keras.models.load_model(ckpt / state["model_file"]), state["history"]


def train(cfg: RunConfig, *, run_id: str | None = None, store: RunStore | None = None,
          callbacks: Sequence = (), should_stop: Callable[[], bool] | None = None,
          dataset: Dataset | None = None, verbose: int = 0, keep_model: bool = True) -> TrainResult:
    """Train, evaluate on the test split, and record everything in the run store.

    Pass the ``run_id`` of an interrupted run to resume it from its last checkpoint.
    ``should_stop`` is polled after every batch; when it returns True the run stops and
    is recorded as KILLED (cancelled). ``keep_model=False`` records everything but the
    model file (GA individuals: many runs, judged by their numbers). ``cfg`` is trusted:
    it was validated where it was built (``presets``, ``RunConfig.from_dict``).
    """
    store = store or RunStore()
    models.resolve_weights(cfg.model)  # fail before any work if weights are missing
    ds = dataset or datasets.load_for_run(cfg.data)
    if run_id is None:
        run_id = runs.open_run(cfg, ds, store=store)
    else:
        runs.resume_run(run_id, store)
    ckpt = runs.checkpoint_dir(run_id)
    try:
        return _train(cfg, run_id, store, ds, ckpt, callbacks, should_stop, verbose, keep_model)
    except BaseException as exc:
        # The checkpoint stays: a retry resumes from it.
        runs.close_run(run_id, "FAILED", runs.describe_error(exc), store)
        raise
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _train(cfg, run_id, store, ds, ckpt, callbacks, should_stop, verbose, keep_model) -> TrainResult:
    # EMOTION_LAB_DISTRIBUTE=mirrored: the model and optimizer are created in a
    # MirroredStrategy's scope, so this one run trains on every visible GPU.
    with distribution_scope(store, run_id):
        return _train_in_scope(cfg, run_id, store, ds, ckpt, callbacks, should_stop, verbose, keep_model)


def _train_in_scope(cfg, run_id, store, ds, ckpt, callbacks, should_stop, verbose, keep_model) -> TrainResult:
    acc = accelerator()
    mixed = resolve_toggle(cfg.train.mixed_precision, acc["gpu"])
    xla = resolve_toggle(cfg.train.xla, acc["gpu"])
    if mixed:
        keras.mixed_precision.set_global_policy(mixed_policy(acc))
    deterministic = resolve_toggle(cfg.train.deterministic, not acc["gpu"])
    seed_everything(cfg.train.seed, deterministic)
    k = len(ds.class_names)
    common = dict(arch=cfg.model.arch, input_size=cfg.model.input_size, num_classes=k,
                  batch_size=cfg.train.batch_size, seed=cfg.train.seed)
    model, records = _load_checkpoint(ckpt)
    if model is None:
        model = models.build_model(cfg.model, k, seed=cfg.train.seed)
        model.compile(optimizer=models.make_optimizer(cfg.optimizer), loss=_loss(cfg), metrics=["accuracy"],
                      jit_compile=xla, steps_per_execution=steps_per_execution(acc))
    else:
        log.info("resuming run %s after epoch %d", run_id, records[-1]["epoch"])
        logged = set(store.logged_epochs(run_id))
        for r in records:  # epochs checkpointed but killed before they were logged
            if r["epoch"] not in logged:
                store.log_epoch(run_id, r["epoch"], {k: v for k, v in r.items() if k != "epoch"})
    cached = can_cache_features(cfg)
    if not cached:  # the cached path fits another model; state here would fill checkpoints
        models.build_train_state(model)
    store.set_tags(run_id, {"device": acc["device"], "mixed_precision": mixed, "xla": xla,
                            "epochs_done": len(records), "frozen_feature_cache": cached,
                            "deterministic": deterministic})
    if cached:
        fit_model, train_ds, val_ds = frozen_feature_setup(model, cfg, ds, common, xla, acc)
    else:
        fit_model = model
        train_ds = make_pipeline(*ds.splits["train"], training=True, augment=cfg.data.augment,
                                 augment_strength=cfg.data.augment_strength,
                                 augment_set=cfg.data.augment_set, **common)
        val_ds = make_pipeline(*ds.splits["val"], training=False, **common)

    recorder = _EpochRecorder(store, run_id, ckpt, len(ds.splits["train"][1]), records, should_stop, model)
    early, schedule = protocol_callbacks(cfg, ckpt, records)
    # Early stopping saves its best weights before the recorder checkpoints the epoch; the schedule
    # changes the rate after the recorder has logged the rate the epoch was trained with.
    cbs = [c for c in (early, recorder, *callbacks, schedule) if c is not None]
    class_weight = class_weights(ds.splits["train"][1], k) if cfg.data.class_weights else None
    t0 = time.perf_counter()
    if len(records) < cfg.train.epochs and not (early is not None and early.stopped_before):
        fit_model.fit(train_ds, validation_data=val_ds, epochs=cfg.train.epochs, initial_epoch=len(records),
                  callbacks=cbs, class_weight=class_weight, verbose=verbose,
                  shuffle=False)  # the pipeline shuffles; Keras only warns that it cannot
    elif early is not None:
        early.restore(fit_model)
    history = pd.DataFrame(records)
    if recorder.cancelled:
        runs.close_run(run_id, "KILLED", "cancelled by user", store)
        return TrainResult(run_id, "KILLED", history, None)

    report = runs.evaluate_and_log(model, cfg, ds, run_id, store, keep_model=keep_model)
    epoch_times = list(history["epoch_time"]) if len(history) else [time.perf_counter() - t0]
    store.log_summary(run_id, {
        "best_val_accuracy": float(history["val_accuracy"].max()) if len(history) else float("nan"),
        "mean_images_per_sec": float(history["images_per_sec"].mean()) if len(history) else float("nan"),
        **_costs(model, epoch_times, ds, common),
        **({"best_epoch": early.best_epoch_number} if early is not None else {}),
    })
    runs.close_run(run_id, "FINISHED", store=store)
    return TrainResult(run_id, "FINISHED", history, report)


def _costs(model, epoch_times: list[float], ds: Dataset, common: dict) -> dict[str, float]:
    x, y = ds.splits["test"]
    face = next(iter(make_pipeline(x[:1], y[:1], training=False, **{**common, "batch_size": 1})))[0]
    return costs.run_costs(model, epoch_times, len(ds.splits["train"][1]), face)


def protocol_callbacks(cfg: RunConfig, ckpt: Path, records: list[dict]):
    """``(early_stopping, lr_schedule)`` callbacks for ``cfg`` (None where off), resumed from ``records``."""
    early = (callbacks_mod.ResumableEarlyStopping(cfg, ckpt, records)
             if cfg.train.early_stopping_patience else None)
    return early, callbacks_mod.lr_schedule(cfg, records)


def _loss(cfg: RunConfig):
    return keras.losses.CategoricalCrossentropy(label_smoothing=cfg.train.label_smoothing)


def can_cache_features(cfg: RunConfig) -> bool:
    """True when the frozen part of the backbone sees the same input every epoch."""
    augmented = cfg.data.augment and cfg.data.augment_strength > 0
    return cfg.train.cache_frozen_features and cfg.model.frozen_blocks > 0 and not augmented


def split_frozen(model, cfg: RunConfig):
    """``(frozen_prefix, trainable_top)`` sharing the full model's layers and weights.

    The top maps the frozen part's output to class probabilities, so training it trains
    the full model.
    """
    spec = models.get_spec(cfg.model.arch)
    backbone = model.get_layer(cfg.model.arch)
    if cfg.model.frozen_blocks >= len(spec.blocks):
        cut, suffix = backbone.output, None
    else:
        first = next(layer for layer in backbone.layers if layer.name.startswith(spec.blocks[cfg.model.frozen_blocks]))
        cut = first.input
        suffix = keras.Model(cut, backbone.output, name="trainable_blocks")
    prefix = keras.Model(backbone.input, cut, name="frozen_blocks")
    features = keras.Input(tuple(cut.shape[1:]), name="frozen_features")
    # Same inference-mode BatchNorm as the full model, whose backbone runs with training=False.
    h = suffix(features, training=False) if suffix is not None else features
    for name in ("head_pool", "head_dense", "head_dropout", "head_logits"):
        if any(layer.name == name for layer in model.layers):
            h = model.get_layer(name)(h)
    return prefix, keras.Model(features, h, name="trainable_top")


def frozen_feature_setup(model, cfg: RunConfig, ds: Dataset, common: dict, xla: bool, acc: dict):
    """``(trainable_top, train_features, val_features)``: the frozen part runs once per split, the top trains on its output."""
    import tensorflow as tf

    prefix, top = split_frozen(model, cfg)
    top.compile(optimizer=models.make_optimizer(cfg.optimizer), loss=_loss(cfg), metrics=["accuracy"],
                jit_compile=xla, steps_per_execution=steps_per_execution(acc))
    models.build_train_state(top)
    k = common["num_classes"]

    def features(split: str, training: bool):
        x, y = ds.splits[split]
        f = prefix.predict(make_pipeline(x, y, training=False, **common), verbose=0)
        data = tf.data.Dataset.from_tensor_slices((f, tf.one_hot(y, k)))
        if training:
            data = data.shuffle(len(y), seed=cfg.train.seed, reshuffle_each_iteration=True)
        return fixed_parallelism(data.batch(cfg.train.batch_size).prefetch(tf.data.AUTOTUNE))

    return top, features("train", True), features("val", False)
