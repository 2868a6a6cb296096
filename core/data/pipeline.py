"""The tf.data pipeline every model is fed by: shuffle, batch, augment, resize, gray to 3 channels,
the backbone's own preprocessing, cache and prefetch.
"""
from __future__ import annotations

import numpy as np

from core.configs.choices import MODELS


def augmenter(strength: float, seed: int):
    """Flip, small rotation/shift/zoom as Keras preprocessing layers (training only)."""
    import keras

    s = float(strength)
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomRotation(0.04 * s, fill_mode="nearest", seed=seed + 1),
        keras.layers.RandomTranslation(0.08 * s, 0.08 * s, fill_mode="nearest", seed=seed + 2),
        keras.layers.RandomZoom(0.1 * s, fill_mode="nearest", seed=seed + 3),
    ], name="augment")


def paper_augmenter(strength: float, seed: int):
    """The FER2013 literature's set (Khaireddin & Chen 2021) as batched Keras preprocessing layers:
    random resized crop (zoom in with independent height/width, i.e. scale and aspect jitter),
    shift, flip, rotation and random erasing. Applied at the native size, before upscaling."""
    import keras

    s = float(strength)
    return keras.Sequential([
        # Negative zoom factors zoom in: a crop of 64-100% of each side, resized back.
        keras.layers.RandomZoom((-0.2 * s, 0.0), (-0.2 * s, 0.0), fill_mode="nearest", seed=seed),
        keras.layers.RandomTranslation(0.1 * s, 0.1 * s, fill_mode="nearest", seed=seed + 1),
        keras.layers.RandomFlip("horizontal", seed=seed + 2),
        keras.layers.RandomRotation(10 / 360 * s, fill_mode="nearest", seed=seed + 3),
        keras.layers.RandomErasing(factor=min(0.5 * s, 1.0), scale=(0.02, 0.2), value_range=(0, 255),
                                   seed=seed + 4),
    ], name="augment_paper")


AUGMENTERS = {"basic": augmenter, "paper": paper_augmenter}


def to_model_input(x, arch: str, size: int):
    """Tensor version of ``core.train.models.preprocess``: float or uint8 (N,H,W,1|3) -> model input."""
    import tensorflow as tf

    x = tf.cast(x, tf.float32)
    if x.shape[1] != size or x.shape[2] != size:
        x = tf.image.resize(x, (size, size), method="bilinear", antialias=True)
    if x.shape[-1] == 1:
        # ImageNet backbones need 3 channels; tiling keeps the gray value in each.
        x = tf.repeat(x, 3, axis=-1)
    return MODELS[arch].preprocess_fn()(x)


def make_pipeline(x: np.ndarray, y: np.ndarray, *, arch: str, input_size: int, num_classes: int,
                  batch_size: int, training: bool, augment: bool = True, augment_strength: float = 1.0,
                  seed: int = 0, augment_set: str = "basic", autotune: bool = False):
    """uint8 arrays -> batched, preprocessed tf.data.Dataset of (image, one-hot label).

    Images stay at their stored size in memory and are resized batch by batch as they are fed,
    so a 224 px run holds no more decoded data than a 48 px one. ``autotune=True`` leaves
    tf.data's autotuning on (the bench's comparison; see ``fixed_parallelism``).
    """
    import tensorflow as tf

    images = tf.data.Dataset.from_tensor_slices((x[..., None], tf.one_hot(y, num_classes)))
    if not training:
        # Evaluation batches are identical every pass: cache them at the stored size (an upscaled
        # float cache would grow with the square of the input size) and resize on the way out.
        ds = (images.batch(batch_size).cache()
              .map(lambda a, b: (to_model_input(a, arch, input_size), b), num_parallel_calls=tf.data.AUTOTUNE)
              .prefetch(tf.data.AUTOTUNE))
        return ds if autotune else fixed_parallelism(ds)
    ds = images.shuffle(len(y), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    if augment and augment_strength > 0:
        aug = AUGMENTERS[augment_set](augment_strength, seed)
        ds = ds.map(lambda a, b: (aug(tf.cast(a, tf.float32), training=True), b), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(lambda a, b: (to_model_input(a, arch, input_size), b), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds if autotune else fixed_parallelism(ds)


def fixed_parallelism(ds):
    """``ds`` with tf.data's autotuning off: parallel maps use min(16, cores) workers, prefetch keeps its buffer.

    Keras makes a new iterator every epoch (and every evaluation); with autotuning on,
    discarding one stalls for about a second in many epochs while its tuning thread winds
    down, which on a short epoch is a large share of it (``python -m core bench --levers``
    measures the effect). The fixed settings are what autotuning converges to on a machine
    whose cores are busy training anyway.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)
