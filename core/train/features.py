"""Frozen-backbone features: one pass of a backbone over a dataset, cached, for heads trained on top.

The genetic head search (``core.evolution.head``) and the classroom experiment
(``core.classroom``) both train only a classifier head; computing the backbone's pooled
features once makes each of their epochs a matter of milliseconds.
"""
from __future__ import annotations

import logging

import numpy as np

from core.configs import ModelConfig, artifacts_dir

log = logging.getLogger(__name__)


def backbone_features(ds, arch: str, weights: str, input_size: int, seed: int) -> dict[str, np.ndarray]:
    """Pooled backbone features of ``ds``'s train and val splits (``x_train``, ``y_train``, ``x_val``,
    ``y_val``), computed once per backbone, weights, input size, seed and data, then read from the cache."""
    from core.data.pipeline import make_pipeline
    from core.train import models

    cache = (artifacts_dir() / "cache" / "features" /
             f"{arch}-{weights}-{input_size}-seed{seed}-{ds.fingerprint()}.npz")
    if cache.is_file():
        with np.load(cache) as z:
            return {k: z[k] for k in z.files}
    import keras

    cfg = ModelConfig(arch=arch, weights=weights, input_size=input_size, frozen_blocks=5, dropout=0.0)
    model = models.build_model(cfg, len(ds.class_names), seed=seed)
    extractor = keras.Model(model.input, model.get_layer("head_pool").output)
    out = {}
    for split in ("train", "val"):
        x, y = ds.splits[split]
        pipe = make_pipeline(x, y, arch=arch, input_size=input_size, num_classes=len(ds.class_names),
                             batch_size=64, training=False)
        out[f"x_{split}"] = np.concatenate([np.asarray(extractor.predict_on_batch(b)) for b, _ in pipe])
        out[f"y_{split}"] = y
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + ".tmp.npz")
    np.savez_compressed(tmp, **out)
    tmp.replace(cache)
    return out


def available_weights(arch: str, weights: str, seed: int) -> tuple[str, str | None]:
    """The weights features can come from on this machine, and a note when that is not ``weights``:
    ImageNet weights that are not cached fall back to a randomly initialised backbone."""
    from core.configs.paths import imagenet_weights_cached

    if weights == "imagenet" and not imagenet_weights_cached(arch):
        note = (f"ImageNet weights for {arch} are not cached: features come from a randomly "
                f"initialised backbone (seed {seed}).")
        log.warning(note)
        return "none", note
    return weights, None


def standardise(f: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Train and val features scaled by the training split's mean and standard deviation."""
    mu, sd = f["x_train"].mean(axis=0), f["x_train"].std(axis=0) + 1e-6
    return {"x_train": (f["x_train"] - mu) / sd, "x_val": (f["x_val"] - mu) / sd,
            "y_train": f["y_train"], "y_val": f["y_val"]}
