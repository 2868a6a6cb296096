"""Training throughput: the project's pipeline against its alternatives, the frozen-feature cache,
precision x XLA on accelerators, and the paper profile's cost per FER2013 run.

Each experiment returns a JSON-ready section with ``figures`` (``stats.summarize``) and
``ratios`` (``stats.paired_ratio``) from interleaved windows.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from core.bench import runner, stats
from core.bench.runner import epoch_window
from core.configs import presets, profiles
from core.data.dataset import Dataset
from core.data.pipeline import fixed_parallelism, make_pipeline
from core.train import device, models, training, tta
from core.train.models import forward_flops

# FER2013's published split sizes (Training / PublicTest / PrivateTest): what one paper-profile run trains,
# validates every epoch and tests once.
FER2013_IMAGES = {"train": 28709, "val": 3589, "test": 3589}


def bench_training(arch: str, size: int, x: np.ndarray, y: np.ndarray, batch_size: int, windows: int,
                   num_classes: int, progress: Callable[[str], None] = print) -> dict:
    """images/s of the project pipeline vs a bare in-memory fit vs ImageDataGenerator over PNGs, interleaved.

    One model serves every variant (they differ only in how images reach it), so the
    comparison is of input pipelines, and the train step is traced once; that first
    step's time is reported as ``first_window_s``.
    """
    import keras
    from tensorflow.keras.preprocessing.image import ImageDataGenerator

    cfg = runner.bench_config(arch, size, batch_size)
    n = len(y)
    keras.backend.clear_session()
    t0 = time.perf_counter()
    model = runner.compiled(cfg, num_classes)
    build_s = time.perf_counter() - t0
    pipeline = runner.train_pipeline(x, y, arch, size, batch_size, num_classes)
    first = {}

    def first_window():
        t = time.perf_counter()
        epoch_window(model, pipeline, n)()
        first["s"] = time.perf_counter() - t

    with tempfile.TemporaryDirectory() as tmp:
        import cv2

        for i, (img, label) in enumerate(zip(x, y)):
            d = Path(tmp) / f"class{label}"
            d.mkdir(exist_ok=True)
            cv2.imwrite(str(d / f"{i}.png"), img)
        # No augmentation, like the "pipeline" variant, so the two differ only in how images are fed.
        gen = ImageDataGenerator(preprocessing_function=models.get_spec(arch).preprocess_fn())
        flow = gen.flow_from_directory(tmp, target_size=(size, size), color_mode="rgb", batch_size=batch_size,
                                       class_mode="categorical", seed=0)
        variants = [
            stats.Variant("pipeline", epoch_window(model, pipeline, n), warm_up=first_window),
            stats.Variant("bare_fit", epoch_window(
                model, runner.in_memory(arch, size, x, y, batch_size, num_classes), n)),
            stats.Variant("notebook_flow_from_directory", epoch_window(model, flow, n)),
            stats.Variant("pipeline_augmented", epoch_window(
                model, runner.train_pipeline(x, y, arch, size, batch_size, num_classes, augment=True), n)),
        ]
        rates = stats.interleave(variants, windows, progress=progress)
    flops = forward_flops(model)
    out: dict = {"arch": arch, "size": size, "images": n, "batch_size": batch_size, "build_s": build_s,
                 "first_window_s": first["s"], "train_gflop_per_image": 3 * flops / 1e9,  # backward ~2x forward
                 "figures": {name: stats.summarize(r) for name, r in rates.items()}}
    out["ratios"] = {
        "pipeline_vs_bare": stats.paired_ratio(rates["pipeline"], rates["bare_fit"]),
        "pipeline_vs_notebook": stats.paired_ratio(rates["pipeline"], rates["notebook_flow_from_directory"]),
        "augmented_vs_pipeline": stats.paired_ratio(rates["pipeline_augmented"], rates["pipeline"]),
    }
    out["achieved_gflops"] = out["train_gflop_per_image"] * out["figures"]["pipeline"]["median"]
    return out


def bench_frozen_features(arch: str, size: int, x: np.ndarray, y: np.ndarray, batch_size: int, windows: int,
                          num_classes: int, progress: Callable[[str], None] = print) -> dict:
    """The frozen configuration without augmentation: full forward each step vs cached frozen features.

    Both paths are built the way ``core.train.training`` builds them and timed in interleaved
    epochs of the training split; the one-off feature extraction is timed on its own.
    The FLOP-based expectation: the full path runs the whole forward pass plus the
    trainable part's backward (~2x its forward), the cached path only the trainable part's
    forward and backward.
    """
    import keras

    base = presets.base_config(arch, "bench", batch_size=batch_size)
    cfg = presets.preset("imagenet-frozen-adam", base)
    cfg = replace(cfg, model=replace(cfg.model, weights="none", input_size=size),
                  data=replace(cfg.data, augment=False))
    ds = Dataset("bench", "bench", tuple(str(i) for i in range(num_classes)),
                 {"train": (x, y), "val": (x[:batch_size], y[:batch_size]),
                  "test": (x[:batch_size], y[:batch_size])})
    n = len(y)
    keras.backend.clear_session()
    common = dict(arch=arch, input_size=size, num_classes=num_classes, batch_size=batch_size, seed=0)
    full = models.build_model(cfg.model, num_classes, seed=0)
    full.compile(optimizer=models.make_optimizer(cfg.optimizer), loss="categorical_crossentropy",
                 metrics=["accuracy"], steps_per_execution=1)
    models.build_train_state(full)
    t0 = time.perf_counter()
    top, cached_train, _ = training.frozen_feature_setup(full, cfg, ds, common, False, device.accelerator())
    setup_s = time.perf_counter() - t0
    prefix, batched_top = training.split_frozen(full, cfg)
    # The same top (shared layers) with Keras running 16 steps per call: how much of a cached
    # step is per-step dispatch rather than arithmetic.
    batched_top.compile(optimizer=models.make_optimizer(cfg.optimizer), loss="categorical_crossentropy",
                        metrics=["accuracy"], steps_per_execution=16)
    models.build_train_state(batched_top)
    train = runner.train_pipeline(x, y, arch, size, batch_size, num_classes)
    rates = stats.interleave([
        stats.Variant("full_forward", epoch_window(full, train, n)),
        stats.Variant("cached_features", epoch_window(top, cached_train, n)),
        stats.Variant("cached_features_16_steps_per_call", epoch_window(batched_top, cached_train, n)),
    ], windows, progress=progress)
    f_prefix, f_top = forward_flops(prefix), forward_flops(top)
    expected = (f_prefix + 3 * f_top) / (3 * f_top)
    speedup = stats.paired_ratio(rates["cached_features"], rates["full_forward"])
    full_epoch = n / np.median(rates["full_forward"])
    cached_epoch = n / np.median(rates["cached_features"])
    return {"arch": arch, "size": size, "frozen_blocks": cfg.model.frozen_blocks,
            "figures": {k: stats.summarize(v) for k, v in rates.items()},
            "ratios": {"cached_vs_full": speedup,
                       "dispatch_16_vs_1_steps_per_call": stats.paired_ratio(
                           rates["cached_features_16_steps_per_call"], rates["cached_features"])},
            "trainable_flop_share": f_top / (f_prefix + f_top), "expected_speedup_flops": expected,
            # FLOP/s each path achieves: where they differ, the FLOP-based expectation cannot hold.
            "achieved_gflops": {"full_forward": (f_prefix + 3 * f_top) / 1e9 * float(np.median(rates["full_forward"])),
                                "cached_features": 3 * f_top / 1e9 * float(np.median(rates["cached_features"]))},
            "feature_extraction_s": setup_s,
            # Computed from the measured parts, not timed as one run: the extraction is paid once per run.
            "speedup_over_10_epochs": 10 * full_epoch / (setup_s + 10 * cached_epoch)}


def bench_precision_xla(arch: str, size: int, x: np.ndarray, y: np.ndarray, batch_size: int, windows: int,
                        num_classes: int, steps: int = 32, progress: Callable[[str], None] = print) -> dict:
    """Float32 vs mixed precision, XLA off vs on, interleaved, on preprocessed images held in device memory.

    In-memory input isolates the model's speed (NVIDIA's published figures use synthetic
    data the same way). A window is ``steps`` batches of ``model.fit`` on a repeated dataset.
    """
    import keras
    import tensorflow as tf

    acc = device.accelerator()
    cfg = runner.bench_config(arch, size, batch_size)
    keras.backend.clear_session()
    images = tf.constant(models.preprocess(arch, x, size))
    data = fixed_parallelism(tf.data.Dataset.from_tensor_slices((images, tf.one_hot(y, num_classes)))
                             .repeat().batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
    mixed_policy = device.mixed_policy(acc)
    variants = []
    for precision in ("float32", mixed_policy):
        for xla in (False, True):
            keras.mixed_precision.set_global_policy(precision)
            try:
                model = runner.compiled(cfg, num_classes, jit_compile=xla,
                                        steps_per_execution=device.steps_per_execution(acc))
            finally:
                keras.mixed_precision.set_global_policy("float32")
            name = f"{'amp' if precision != 'float32' else 'fp32'}{'_xla' if xla else ''}"
            variants.append(stats.Variant(name, (lambda m: lambda: (
                m.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False), steps * batch_size)[1])(model)))
    rates = stats.interleave(variants, windows, progress=progress)
    return {"arch": arch, "size": size, "batch_size": batch_size, "images_per_window": steps * batch_size,
            "mixed_policy": mixed_policy, "figures": {k: stats.summarize(v) for k, v in rates.items()},
            "ratios": {name: stats.paired_ratio(rates[name], rates["fp32"]) for name in ("fp32_xla", "amp", "amp_xla")}}


def bench_paper_profile(arch: str, size: int, x: np.ndarray, y: np.ndarray, epochs: int, num_classes: int,
                        pretrained: bool) -> dict:
    """Training and evaluation images/s with the paper profile's settings at ``size`` (its batch size,
    augmentation, weight decay; mixed precision and XLA as training resolves them on this device), and
    the time one FER2013 run would take at that throughput, at the profile's maximum epochs."""
    import keras

    p = profiles.get("paper")
    config_id = "imagenet-adam" if pretrained else "scratch-adam"
    cfg = profiles.apply(presets.preset(config_id, presets.base_config(arch, "bench", batch_size=p.batch_size)),
                         "paper")
    # Random weights cost the same as ImageNet ones (and need no download).
    cfg = replace(cfg, model=replace(cfg.model, weights="none", input_size=size))
    acc = device.accelerator()
    mixed, xla = device.resolve_toggle("auto", acc["gpu"]), device.resolve_toggle("auto", acc["gpu"])
    keras.backend.clear_session()
    if mixed:
        keras.mixed_precision.set_global_policy(device.mixed_policy(acc))
    try:
        model = runner.compiled(cfg, num_classes, jit_compile=xla)
        train = runner.train_pipeline(x, y, arch, size, p.batch_size, num_classes, augment=True,
                                      augment_strength=p.augment_strength, augment_set=p.augment_set)
        window, times = epoch_window(model, train, len(y)), []
        for _ in range(epochs):  # the first epoch is the warm-up (tracing), left out of the median below
            t0 = time.perf_counter()
            window()
            times.append(time.perf_counter() - t0)
        train_ips = len(y) / (float(np.median(times[1:])) if len(times) > 1 else times[0])
        evaluation_data = make_pipeline(x, y, arch=arch, input_size=size, num_classes=num_classes,
                                        batch_size=p.batch_size, seed=0, training=False)
        model.predict(evaluation_data, verbose=0)  # warm-up: tracing and the evaluation cache
        t0 = time.perf_counter()
        model.predict(evaluation_data, verbose=0)
        eval_ips = len(y) / (time.perf_counter() - t0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    n = FER2013_IMAGES
    epoch_s = n["train"] / train_ips + n["val"] / eval_ips
    run_s = p.epochs * epoch_s + (1 + tta.extra_passes(p.tta)) * n["test"] / eval_ips  # plain pass + TTA views
    return {"arch": arch, "size": size, "weights": "pretrained" if pretrained else "scratch",
            "batch_size": p.batch_size, "mixed_precision": mixed, "xla": xla, "images": len(y),
            "train_images_per_sec": train_ips, "eval_images_per_sec": eval_ips,
            "train_gflop_per_image": 3 * forward_flops(model) / 1e9,
            "fer2013_epoch_s": epoch_s, "fer2013_run_s_at_max_epochs": run_s, "max_epochs": p.epochs}
