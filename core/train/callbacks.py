"""The training protocol's Keras callbacks: learning-rate schedule and early stopping, resumable.

A resumed run continues a ``fit`` that was killed, but Keras' ReduceLROnPlateau and
EarlyStopping start every ``fit`` from scratch. Here they are brought back to where the
killed ``fit`` left them by replaying the run's logged epochs through their own
``on_epoch_end`` against a stand-in model (so the counting is Keras', not a copy of it), and
the best epoch's weights are kept in the run's checkpoint folder.
"""
from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

import keras
import numpy as np

from core.configs import RunConfig

log = logging.getLogger(__name__)

BEST_WEIGHTS_FILE = "best-weights.npz"


def _mode(monitor: str) -> str:
    return "max" if monitor.endswith("accuracy") else "min"


class _StandIn:
    """What the replayed callbacks touch of a model: its learning rate, stop flag and weights."""

    def __init__(self, learning_rate: float):
        self.optimizer = SimpleNamespace(learning_rate=learning_rate)
        self.stop_training = False

    def get_weights(self):
        # Not None: EarlyStopping reads None as "no best weights yet" and would move its best epoch.
        return []


def _replay(callback: keras.callbacks.Callback, history: Sequence[dict], learning_rate: float) -> _StandIn:
    """Run ``callback.on_epoch_end`` over logged epochs against a stand-in; returns the stand-in."""
    real = callback.model
    stand_in = _StandIn(learning_rate)
    # Keras' own on_epoch_end, not a subclass's additions (which act on the real model).
    step = super(type(callback), callback).on_epoch_end
    callback.set_model(stand_in)
    try:
        for record in history:
            step(int(record["epoch"]) - 1, dict(record))
    finally:
        callback.set_model(real)
    return stand_in


class ResumableReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau that, on resume, continues with the rate and counters the killed run had."""

    def __init__(self, cfg: RunConfig, history: Sequence[dict]):
        monitor = cfg.train.early_stopping_monitor
        super().__init__(monitor=monitor, mode=_mode(monitor), factor=cfg.train.plateau_factor,
                         patience=cfg.train.plateau_patience)
        self.history = list(history)
        self.initial_rate = cfg.optimizer.learning_rate

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.history:
            stand_in = _replay(self, self.history, self.initial_rate)
            # The optimizer may be fresh (frozen-feature runs recompile their top): set the rate outright.
            self.model.optimizer.learning_rate = float(stand_in.optimizer.learning_rate)


def cosine_rate(cfg: RunConfig):
    """Epoch -> learning rate: linear warm-up over ``warmup_epochs``, then cosine decay towards 0.

    Keras' CosineDecay evaluated per epoch (its steps are epochs here); warm-up starts at
    1/(warmup+1) of the rate so the first epoch is not wasted at zero.
    """
    t = cfg.train
    lr = cfg.optimizer.learning_rate
    warm = t.warmup_epochs
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=lr / (warm + 1) if warm else lr, decay_steps=max(t.epochs - warm, 1),
        warmup_target=lr if warm else None, warmup_steps=warm)
    return lambda epoch, _lr=None: float(schedule(epoch))


def lr_schedule(cfg: RunConfig, history: Sequence[dict]) -> keras.callbacks.Callback | None:
    """The callback that applies ``cfg.train.lr_schedule`` (None for a constant rate)."""
    if cfg.train.lr_schedule == "plateau":
        return ResumableReduceLROnPlateau(cfg, history)
    if cfg.train.lr_schedule == "cosine":
        return keras.callbacks.LearningRateScheduler(cosine_rate(cfg))
    return None


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping with best-weights restore whose state survives a resume.

    The best epoch's weights are also written to ``ckpt/best-weights.npz``; put this callback
    before the one that checkpoints the epoch, so a checkpoint never names a best epoch whose
    weights are not on disk.
    """

    def __init__(self, cfg: RunConfig, ckpt: Path, history: Sequence[dict]):
        monitor = cfg.train.early_stopping_monitor
        super().__init__(monitor=monitor, mode=_mode(monitor), patience=cfg.train.early_stopping_patience,
                         restore_best_weights=True)
        self.ckpt = Path(ckpt)
        self.history = list(history)
        self.initial_rate = cfg.optimizer.learning_rate
        self.stopped_before = False
        self._resume()

    def _resume(self) -> None:
        super().on_train_begin()
        if not self.history:
            return
        self.stopped_before = _replay(self, self.history, self.initial_rate).stop_training
        self.best_weights = self._load_best()

    def _load_best(self):
        path = self.ckpt / BEST_WEIGHTS_FILE
        if path.is_file():
            with np.load(path) as z:
                if int(z["epoch"]) == self.best_epoch + 1:
                    return [z[f"w{i}"] for i in range(int(z["count"]))]
        # Killed between saving the best weights and checkpointing the epoch: that epoch is retrained,
        # and the best weights so far are whatever comes next.
        log.warning("best weights of epoch %d not in %s; early stopping restarts its best from here",
                    self.best_epoch + 1, self.ckpt)
        self.best, self.best_epoch = None, 0
        return None

    @property
    def best_epoch_number(self) -> int:
        """1-based epoch whose weights the model ends with."""
        return int(self.best_epoch) + 1

    def on_train_begin(self, logs=None):
        self._resume()

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.best_epoch == epoch and self.best_weights is not None:
            self.ckpt.mkdir(parents=True, exist_ok=True)
            tmp = self.ckpt / "best-weights.tmp.npz"
            np.savez(tmp, epoch=epoch + 1, count=len(self.best_weights),
                     **{f"w{i}": w for i, w in enumerate(self.best_weights)})
            tmp.replace(self.ckpt / BEST_WEIGHTS_FILE)

    def restore(self, model) -> None:
        """Give ``model`` the best epoch's weights when ``fit`` will not run again (a resumed run that had
        already stopped, or had done all its epochs)."""
        if self.best_weights is not None:
            model.set_weights(self.best_weights)
