"""``python -m core bench``: where training time goes, measured in one process so ratios are fair.

Every number comes from timing real work on this machine; nothing is extrapolated
except where a row says so.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from core.bench import stats
from core.configs import RunConfig, presets, profiles
from core.configs.choices import FER_LABELS
from core.data import datasets
from core.data.dataset import Dataset
from core.data.pipeline import fixed_parallelism, make_pipeline
from core.train import device, models, training, tta
from core.train.models import forward_flops


def matmul_windows(n: int = 2048, windows: int = 5, seconds: float = 0.3) -> list[float]:
    """Matmul FLOP/s in ``windows`` short windows (the ceiling's spread says how busy the CPU was)."""
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    tf.linalg.matmul(a, b).numpy()  # warm-up
    rates = []
    for _ in range(windows):
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            tf.linalg.matmul(a, b).numpy()
            reps += 1
        rates.append(2 * n**3 * reps / (time.perf_counter() - t0))
    return rates


def _compiled(cfg: RunConfig, num_classes: int, **compile_kw):
    model = models.build_model(cfg.model, num_classes, seed=cfg.train.seed)
    model.compile(optimizer=models.make_optimizer(cfg.optimizer), loss="categorical_crossentropy",
                  metrics=["accuracy"], **compile_kw)
    models.build_train_state(model)  # as core.train.training does
    return model


def _epoch_window(model, data, n: int) -> Callable[[], float]:
    """One window = one epoch of ``model.fit`` over ``n`` images (a tf.data dataset or a Keras iterator)."""
    return lambda: (model.fit(data, epochs=1, verbose=0, shuffle=False), n)[1]


def _in_memory(arch: str, size: int, x: np.ndarray, y: np.ndarray, batch_size: int, num_classes: int):
    """Preprocessed images held as tensors, batched and nothing else: the model's speed with no input work.

    Not ``model.fit`` on NumPy arrays: Keras' array adapter is a tf.data pipeline with
    autotuning on, whose per-epoch stall (see ``fixed_parallelism``) is not the model's.
    """
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((models.preprocess(arch, x, size),
                                               np.eye(num_classes, dtype="float32")[y]))
    return fixed_parallelism(data.shuffle(len(y), seed=0).batch(batch_size))


def _bench_config(arch: str, size: int, batch_size: int) -> RunConfig:
    cfg = presets.preset("scratch-adam", presets.base_config(arch, "bench", batch_size=batch_size))
    return replace(cfg, model=replace(cfg.model, input_size=size))


def bench_training(arch: str, size: int, x: np.ndarray, y: np.ndarray, batch_size: int, windows: int,
                   num_classes: int, progress: Callable[[str], None] = print) -> dict:
    """images/s of the project pipeline vs a bare in-memory fit vs ImageDataGenerator over PNGs, interleaved.

    One model serves every variant (they differ only in how images reach it), so the
    comparison is of input pipelines, and the train step is traced once; that first
    step's time is reported as ``first_window_s``.
    """
    import keras
    from tensorflow.keras.preprocessing.image import ImageDataGenerator

    cfg = _bench_config(arch, size, batch_size)
    n = len(y)
    keras.backend.clear_session()
    t0 = time.perf_counter()
    model = _compiled(cfg, num_classes)
    build_s = time.perf_counter() - t0
    kw = dict(arch=arch, input_size=size, num_classes=num_classes, batch_size=batch_size, seed=0)
    pipeline = make_pipeline(x, y, training=True, augment=False, **kw)
    first = {}

    def first_window():
        t = time.perf_counter()
        _epoch_window(model, pipeline, n)()
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
            stats.Variant("pipeline", _epoch_window(model, pipeline, n), warm_up=first_window),
            stats.Variant("bare_fit", _epoch_window(model, _in_memory(arch, size, x, y, batch_size, num_classes), n)),
            stats.Variant("notebook_flow_from_directory", _epoch_window(model, flow, n)),
            stats.Variant("pipeline_augmented", _epoch_window(
                model, make_pipeline(x, y, training=True, augment=True, **kw), n)),
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

    Both paths are built the way ``core.training`` builds them and timed in interleaved
    epochs of the training split; the one-off feature extraction is timed on its own.
    The FLOP-based expectation: the full path runs the whole forward pass plus the
    trainable part's backward (~2x its forward), the cached path only the trainable part's
    forward and backward.
    """
    import keras

    from core.train.device import accelerator

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
    top, cached_train, _ = training.frozen_feature_setup(full, cfg, ds, common, False, accelerator())
    setup_s = time.perf_counter() - t0
    prefix, batched_top = training.split_frozen(full, cfg)
    # The same top (shared layers) with Keras running 16 steps per call: how much of a cached
    # step is per-step dispatch rather than arithmetic.
    batched_top.compile(optimizer=models.make_optimizer(cfg.optimizer), loss="categorical_crossentropy",
                        metrics=["accuracy"], steps_per_execution=16)
    models.build_train_state(batched_top)
    train = make_pipeline(x, y, training=True, augment=False, **common)
    rates = stats.interleave([
        stats.Variant("full_forward", _epoch_window(full, train, n)),
        stats.Variant("cached_features", _epoch_window(top, cached_train, n)),
        stats.Variant("cached_features_16_steps_per_call", _epoch_window(batched_top, cached_train, n)),
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


def threaded_window(intra: int, inter: int, arch: str, size: int, x, y, batch_size: int,
                    num_classes: int) -> Callable[[], float]:
    """A training window in a process whose TensorFlow thread pools are ``intra``/``inter`` (0: TF's default).

    Called first thing in a worker process (``stats.WorkerVariant``): the pools are
    fixed when TensorFlow's runtime starts.
    """
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
    model = _compiled(_bench_config(arch, size, batch_size), num_classes)
    kw = dict(arch=arch, input_size=size, num_classes=num_classes, batch_size=batch_size, seed=0)
    return _epoch_window(model, make_pipeline(x, y, training=True, augment=False, **kw), len(y))


def _channels_first_variant(arch: str, size: int, x, y, batch_size: int, num_classes: int, n: int):
    """The same backbone in NCHW layout, or the reason this device cannot train one."""
    import keras
    import tensorflow as tf

    spec = models.get_spec(arch)
    kw = dict(arch=arch, input_size=size, num_classes=num_classes, batch_size=batch_size, seed=0)
    # Built (and its maps traced) before the switch: Keras' preprocess_input reads the global format.
    data = make_pipeline(x, y, training=True, augment=False, **kw).map(
        lambda a, b: (tf.transpose(a, (0, 3, 1, 2)), b))
    old = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        backbone = spec.builder_fn()(include_top=False, weights=None, input_shape=(3, size, size))
        h = keras.layers.GlobalAveragePooling2D()(backbone.output)
        model = keras.Model(backbone.input, keras.layers.Dense(num_classes, activation="softmax")(h))
        model.compile(optimizer=models.make_optimizer(_bench_config(arch, size, batch_size).optimizer),
                      loss="categorical_crossentropy", metrics=["accuracy"])
        models.build_train_state(model)
        window = _epoch_window(model, data, n)
        window()  # fails here where the device has no NCHW kernels
        return stats.Variant("channels_first", window), None
    except Exception as exc:  # the kernel errors differ by TF version; the message is what is reported
        return None, str(exc).strip().splitlines()[0][:200]
    finally:
        keras.config.set_image_data_format(old)


def bench_levers(arch: str, size: int, x: np.ndarray, y: np.ndarray, batch_size: int, windows: int,
                 num_classes: int, progress: Callable[[str], None] = print) -> dict:
    """Each CPU lever against the project's default, interleaved: one line per lever with its measured effect.

    Settings fixed when TensorFlow starts run in worker processes (default pools vs intra-op =
    cores, inter-op = 1; oneDNN off), each compared with a default worker;
    batch size, XLA, tf.data autotuning, bfloat16 mixed precision (where the CPU has it), fused
    preprocessing and NCHW layout are variants in this process.
    """
    import keras
    import tensorflow as tf

    n = len(y)
    cores = os.cpu_count() or 1
    cfg = _bench_config(arch, size, batch_size)
    keras.backend.clear_session()
    model = _compiled(cfg, num_classes)
    kw = dict(arch=arch, input_size=size, num_classes=num_classes, seed=0)
    # One pipeline feeds every variant that differs only in the model (a dataset can be iterated by many).
    plain = make_pipeline(x, y, training=True, augment=False, batch_size=batch_size, **kw)
    variants = [stats.Variant("default", _epoch_window(model, plain, n))]
    for b in (batch_size // 2, batch_size * 2):
        variants.append(stats.Variant(f"batch_{b}", _epoch_window(
            model, make_pipeline(x, y, training=True, augment=False, batch_size=b, **kw), n)))
    variants.append(stats.Variant("xla", _epoch_window(_compiled(cfg, num_classes, jit_compile=True), plain, n)))
    variants.append(stats.Variant("tfdata_autotune", _epoch_window(
        model, make_pipeline(x, y, training=True, augment=False, batch_size=batch_size, autotune=True,
                             **kw), n)))
    bf16 = device.accelerator()["bf16"]
    if bf16:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        try:
            mixed = _compiled(cfg, num_classes)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        variants.append(stats.Variant("mixed_bfloat16", _epoch_window(mixed, plain, n)))
    raw = fixed_parallelism(tf.data.Dataset.from_tensor_slices((x[..., None], tf.one_hot(y, num_classes)))
                            .shuffle(n, seed=0, reshuffle_each_iteration=True).batch(batch_size)
                            .prefetch(tf.data.AUTOTUNE))
    image = keras.Input(x.shape[1:] + (1,), dtype="uint8", name="raw_image")
    prep = keras.layers.Lambda(lambda t: models.to_model_input(t, arch, size), output_shape=(size, size, 3),
                               name="fused_preprocess")(image)
    fused = keras.Model(image, model(prep))
    fused.compile(optimizer=models.make_optimizer(cfg.optimizer), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    models.build_train_state(fused)
    variants.append(stats.Variant("fused_preprocessing", _epoch_window(fused, raw, n)))
    nchw, nchw_error = _channels_first_variant(arch, size, x, y, batch_size, num_classes, n)
    if nchw is not None:
        variants.append(nchw)
    args = (arch, size, x, y, batch_size, num_classes)
    workers = [stats.WorkerVariant("threads_default", "core.bench.experiments:threaded_window", (0, 0, *args)),
               stats.WorkerVariant(f"threads_intra{cores}_inter1", "core.bench.experiments:threaded_window",
                                        (cores, 1, *args)),
               # TensorFlow reads this when it loads: Eigen's kernels instead of oneDNN's.
               stats.WorkerVariant("onednn_off", "core.bench.experiments:threaded_window", (0, 0, *args),
                                        env={"TF_ENABLE_ONEDNN_OPTS": "0"})]
    try:
        rates = stats.interleave(variants + [w.variant for w in workers], windows, progress=progress)
    finally:
        worker_cpu_s = sum(w.stop() for w in workers)
    figures = {k: stats.summarize(v) for k, v in rates.items()}
    ratios = {name: stats.paired_ratio(rates[name], rates["default"]) for name in rates
              if name != "default" and not name.startswith("threads_") and name != "onednn_off"}
    threads = f"threads_intra{cores}_inter1"
    ratios[threads] = stats.paired_ratio(rates[threads], rates["threads_default"])
    ratios["onednn_off"] = stats.paired_ratio(rates["onednn_off"], rates["threads_default"])
    lines = [
        {"lever": "batch size", "setting": f"{batch_size // 2} vs {batch_size}", "ratio": f"batch_{batch_size // 2}"},
        {"lever": "batch size", "setting": f"{batch_size * 2} vs {batch_size}", "ratio": f"batch_{batch_size * 2}"},
        {"lever": "XLA JIT (jit_compile=True)", "setting": "on vs off", "ratio": "xla"},
        {"lever": "tf.data autotuning", "setting": "on (TF's default) vs off (the project's)",
         "ratio": "tfdata_autotune"},
        {"lever": "mixed precision (bfloat16 compute)", "setting": "mixed_bfloat16 vs float32",
         "ratio": "mixed_bfloat16" if bf16 else None,
         "note": None if bf16 else "not measured: this CPU has no native bfloat16 (AVX512-BF16/AMX)"},
        {"lever": "preprocessing fused into the model", "setting": "in the model vs tf.data map",
         "ratio": "fused_preprocessing"},
        {"lever": "thread pools (tf.config.threading)", "setting": f"intra-op {cores}, inter-op 1 vs TF's default",
         "ratio": threads},
        {"lever": "oneDNN kernels (TF_ENABLE_ONEDNN_OPTS)", "setting": "off (Eigen) vs on (TF's default)",
         "ratio": "onednn_off"},
        {"lever": "data layout", "setting": "channels_first vs channels_last",
         "ratio": "channels_first" if nchw is not None else None,
         "note": None if nchw is not None else f"not supported here: {nchw_error}"},
    ]
    return {"arch": arch, "size": size, "batch_size": batch_size, "figures": figures, "ratios": ratios,
            "levers": lines, "worker_cpu_s": worker_cpu_s}


def bench_predict_latency(arch: str, size: int, n: int = 20) -> dict:
    """Per-face milliseconds on scikit-image's astronaut: Haar detection, preprocessing and one model call,
    measured by the Predict path itself (``core.inference.latency_benchmark``). Weights do not change the cost."""
    from core import inference
    from core.configs import ModelConfig

    image, detector = None, "haar"
    try:
        import skimage  # noqa: F401  the default photo; a test dependency, not a runtime one
    except ImportError:  # a drawn face, scored whole: detection is then not measured
        from core.data import synthetic

        image, detector = np.repeat(synthetic.generate(1, size=256)[0][0][..., None], 3, axis=-1), "whole"
    model = models.build_model(ModelConfig(arch=arch, weights="none", input_size=size), 7)
    got = inference.latency_benchmark(inference.wrap_model(model, arch, size), n=n, image=image, detector=detector)
    return {"arch": arch, "size": size, **{k: got[k]["median"] for k in ("detection_ms", "preprocess_ms", "predict_ms")}}


DETECTION_MEGAPIXELS = (0.25, 40.0)  # photo sizes bench_detection measures in run_benchmark


def bench_detection(megapixels: tuple[float, ...] = DETECTION_MEGAPIXELS, repeats: int = 3) -> dict:
    """Haar detection time on photos of the given sizes, searched at full resolution ("before",
    one pass: it takes seconds at 40 MP) and on the ~1 MP working copy (``core.faces`` default,
    median of ``repeats``). The photo is scikit-image's astronaut resized, or a drawn face without it."""
    import cv2

    from core.inference import faces

    try:
        from skimage import data as skdata

        base, source = skdata.astronaut(), "astronaut"
    except ImportError:
        from core.data import synthetic

        base, source = np.repeat(synthetic.generate(1, size=512)[0][0][..., None], 3, axis=-1), "drawn face"
    faces.detect_faces(base)  # loads the cascade, which is not what is measured
    rows = []
    for mp in megapixels:
        side = max(16, round((mp * 1e6) ** 0.5))
        image = cv2.resize(base, (side, side), interpolation=cv2.INTER_AREA if side < base.shape[0] else cv2.INTER_CUBIC)
        t0 = time.perf_counter()
        full = faces.detect_faces(image, work_pixels=None)
        before = time.perf_counter() - t0
        after = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fast = faces.detect_faces(image)
            after.append(time.perf_counter() - t0)
        rows.append({"megapixels": side * side / 1e6, "side": side, "photo": source, "before_ms": before * 1000,
                     "after_ms": float(np.median(after)) * 1000, "faces_before": len(full), "faces_after": len(fast)})
    return {"work_pixels": faces.DETECT_PIXELS, "rows": rows}


def bench_video(arch: str = "vgg16", size: int = 48, sample_fps: float = 4.0) -> dict:
    """Video analysis throughput: a synthesized 3 s 480x272 clip (a face sliding across, 8 fps) sampled at
    ``sample_fps``, every sample detected, tracked and scored by one model built in memory (untrained:
    weights do not change the cost); the first sample, which traces the model, is left out."""
    import cv2

    from core import inference
    from core.configs import ModelConfig
    from core.inference import video

    try:
        from skimage import data as skdata

        face = cv2.resize(skdata.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    except ImportError:
        from core.data import synthetic

        face = np.repeat(synthetic.generate(1, size=256)[0][0][..., None], 3, axis=-1)
    model = inference.wrap_model(models.build_model(ModelConfig(arch=arch, weights="none", input_size=size), 7),
                                 arch, size)
    stamps: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.avi"
        writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 8, (480, 272))
        for i in range(24):
            frame = np.full((272, 480, 3), 90, np.uint8)
            frame[8:264, 8 * i:8 * i + 256] = cv2.cvtColor(face, cv2.COLOR_RGB2BGR)
            writer.write(frame)
        writer.release()
        got = video.analyse_video(clip, [model], sample_fps=sample_fps,
                                  progress=lambda done, total: stamps.append(time.perf_counter()))
    per_frame = float(np.median(np.diff(stamps))) if len(stamps) > 2 else float("nan")
    return {"arch": arch, "size": size, "frame_size": "480x272", "sample_fps": sample_fps,
            "frames": got["info"]["analysed"], "faces": len(got["tracks"]), "ms_per_frame": per_frame * 1000,
            "frames_per_s": 1.0 / per_frame}


def environment_summary() -> dict:
    """Device, versions and the settings the numbers were measured with."""
    import tensorflow as tf

    acc = device.accelerator()
    return {"device": acc["device"], "platform": platform.platform(), "python": platform.python_version(),
            "tensorflow": tf.__version__, "keras": __import__("keras").__version__,
            "mixed_precision": "on" if acc["gpu"] else "off (CPU)", "xla": "on" if acc["gpu"] else "off (CPU)",
            "cpu_threads": tf.config.threading.get_inter_op_parallelism_threads() or "default",
            # Other processes skew CPU timings; the load at the start says how quiet the machine was.
            "load_average_1min": os.getloadavg()[0]}


def bench_startup(arch: str, size: int, batch_size: int = 32, prebuild: bool = True) -> dict:
    """Time to a job's first trained batch, by phase, measured in a fresh interpreter (``core.benchstartup``).

    ``prebuild=False`` measures it without ``models.build_train_state`` (the train step traced twice).
    """
    import subprocess
    import sys

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "core.bench.startup", arch, str(size), str(batch_size)]
    done = subprocess.run(cmd + ([] if prebuild else ["--no-prebuild"]),
                          capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        raise RuntimeError(f"start-up probe failed ({arch}@{size}): {done.stderr.strip()[-500:]}")
    got = json.loads(done.stdout.strip().splitlines()[-1])
    got["process_total_s"] = time.perf_counter() - t0  # with interpreter start and exit
    return got


def run_benchmark(archs=("resnet50", "vgg16"), sizes=(48,), n_images: int = 96, batch_size: int = 32,
                  windows: int = 12, levers: bool = False, frozen: bool = True, startup: bool = True,
                  out: Path | None = None, progress: Callable[[str], None] = print, command: str = "") -> dict:
    """Measure everything with interleaved windows, write JSON (schema ``stats.SCHEMA``); returns the results."""
    x, y = _bench_data(n_images)
    k = _NUM_CLASSES
    results: dict = {"schema": stats.SCHEMA, "command": command, "environment": environment_summary(),
                     "settings": {"images": len(y), "batch_size": batch_size, "windows": windows,
                                  "archs": list(archs), "sizes": list(sizes)},
                     "figures": {}, "ratios": {}}
    figures = results["figures"]
    with stats.MachineLoad() as load:
        progress(f"matmul ceiling on {results['environment']['device']}…")
        figures["matmul/gflops"] = stats.summarize([r / 1e9 for r in matmul_windows(windows=windows)],
                                                        unit="GFLOP/s")
        results["matmul_gflops"] = figures["matmul/gflops"]["median"]
        results["training"] = []
        for arch in archs:
            for size in sizes:
                progress(f"training throughput, interleaved: {arch} at {size}px…")
                row = bench_training(arch, size, x, y, batch_size, windows, k, progress)
                row["fraction_of_matmul_peak"] = row["achieved_gflops"] / results["matmul_gflops"]
                _collect(results, f"train/{arch}@{size}", row)
                results["training"].append(row)
        if levers:
            progress(f"CPU levers, interleaved: {archs[0]} at {sizes[0]}px…")
            results["levers"] = bench_levers(archs[0], sizes[0], x, y, batch_size, windows, k, progress)
            load.extra_own_cpu_s += results["levers"]["worker_cpu_s"]
            _collect(results, f"levers/{archs[0]}@{sizes[0]}", results["levers"])
        if frozen:
            results["frozen_features"] = []
            for arch in archs:
                progress(f"frozen backbone feature caching: {arch} at {sizes[0]}px…")
                row = bench_frozen_features(arch, sizes[0], x, y, batch_size, windows, k, progress)
                _collect(results, f"frozen/{arch}@{sizes[0]}", row)
                results["frozen_features"].append(row)
        if startup:
            results["startup"] = []
            for arch in archs:
                progress(f"start-up in a fresh process: {arch} at {sizes[0]}px…")
                results["startup"].append(bench_startup(arch, sizes[0], batch_size))
            if levers:  # what build_train_state saves: a demonstration, not needed to track speed work
                progress(f"start-up without the train state pre-built (the train step traced twice): {archs[0]}…")
                results["startup"].append(bench_startup(archs[0], sizes[0], batch_size, prebuild=False))
        results["predict_latency"] = []
        for arch in archs:
            progress(f"prediction latency per face: {arch} at 48px…")
            results["predict_latency"].append(bench_predict_latency(arch, 48))
        progress("face detection on large photos, full resolution vs working copy…")
        results["detection"] = bench_detection(DETECTION_MEGAPIXELS)
        progress(f"video analysis per sampled frame: {archs[0]} at 48px…")
        results["video"] = bench_video(archs[0])
        progress("dataset decode, first use vs held in memory…")
        results["dataset_cache"] = bench_dataset_cache()
    results["machine"] = load.summary()
    for warning in results["machine"]["warnings"]:
        progress(f"warning: {warning}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
    return results


# FER2013's published split sizes (Training / PublicTest / PrivateTest): what one paper-profile run trains,
# validates every epoch and tests once.
FER2013_IMAGES = {"train": 28709, "val": 3589, "test": 3589}


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
        model = _compiled(cfg, num_classes, jit_compile=xla)
        kw = dict(arch=arch, input_size=size, num_classes=num_classes, batch_size=p.batch_size, seed=0)
        train = make_pipeline(x, y, training=True, augment=True, augment_strength=p.augment_strength,
                              augment_set=p.augment_set, **kw)
        window, times = _epoch_window(model, train, len(y)), []
        for _ in range(epochs):  # the first epoch is the warm-up (tracing), left out of the median below
            t0 = time.perf_counter()
            window()
            times.append(time.perf_counter() - t0)
        train_ips = len(y) / (float(np.median(times[1:])) if len(times) > 1 else times[0])
        evaluation_data = make_pipeline(x, y, training=False, **kw)
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


def run_paper_benchmark(archs=("resnet50", "vgg16"), n_images: int = 480, epochs: int = 3, out: Path | None = None,
                        progress: Callable[[str], None] = print) -> dict:
    """``bench_paper_profile`` for every architecture at the paper profile's pretrained and scratch sizes."""
    p = profiles.get("paper")
    x, y = _bench_data(n_images)
    results: dict = {"environment": environment_summary(), "settings": {"images": len(y), "epochs": epochs},
                     "paper": []}
    for arch in archs:
        for pretrained, size in ((True, p.pretrained_input_size), (False, p.input_size)):
            progress(f"paper profile throughput: {arch} at {size}px…")
            results["paper"].append(bench_paper_profile(arch, size, x, y, epochs, int(y.max()) + 1, pretrained))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
    return results


def _collect(results: dict, prefix: str, section: dict) -> None:
    """Copy a section's figures and ratios into the run's flat, stably named tables (what ``compare`` reads)."""
    for name, fig in section["figures"].items():
        results["figures"][f"{prefix}/{name}"] = fig
    for name, r in section["ratios"].items():
        results["ratios"][f"{prefix}/{name}"] = r


def bench_precision_xla(arch: str, size: int, x: np.ndarray, y: np.ndarray, batch_size: int, windows: int,
                        num_classes: int, steps: int = 32, progress: Callable[[str], None] = print) -> dict:
    """Float32 vs mixed precision, XLA off vs on, interleaved, on preprocessed images held in device memory.

    In-memory input isolates the model's speed (NVIDIA's published figures use synthetic
    data the same way). A window is ``steps`` batches of ``model.fit`` on a repeated dataset.
    """
    import keras
    import tensorflow as tf

    from core.train.device import accelerator, steps_per_execution

    acc = accelerator()
    cfg = _bench_config(arch, size, batch_size)
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
                model = _compiled(cfg, num_classes, jit_compile=xla, steps_per_execution=steps_per_execution(acc))
            finally:
                keras.mixed_precision.set_global_policy("float32")
            name = f"{'amp' if precision != 'float32' else 'fp32'}{'_xla' if xla else ''}"
            variants.append(stats.Variant(name, (lambda m: lambda: (
                m.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False), steps * batch_size)[1])(model)))
    rates = stats.interleave(variants, windows, progress=progress)
    return {"arch": arch, "size": size, "batch_size": batch_size, "images_per_window": steps * batch_size,
            "mixed_policy": mixed_policy, "figures": {k: stats.summarize(v) for k, v in rates.items()},
            "ratios": {name: stats.paired_ratio(rates[name], rates["fp32"]) for name in ("fp32_xla", "amp", "amp_xla")}}


# NVIDIA DeepLearningExamples, TensorFlow ResNet50 v1.5 training, one A100, AMP + XLA, batch 256:
# the figure a user's ``--gpu`` line is held against.
NVIDIA_A100_RESNET50_IMG_S = 2400


def run_gpu_benchmark(archs=("resnet50", "vgg16"), sizes=(224,), n_images: int = 512, batch_size: int = 256,
                      windows: int = 7, steps: int = 32, out: Path | None = None,
                      progress: Callable[[str], None] = print, command: str = "") -> dict:
    """Paper-scale sizes with mixed precision and XLA on and off (``python -m core bench --gpu``); writes JSON."""
    x, y = _bench_data(n_images)
    k = _NUM_CLASSES
    results: dict = {"schema": stats.SCHEMA, "command": command, "environment": environment_summary(),
                     "settings": {"images": len(y), "batch_size": batch_size, "windows": windows, "steps": steps,
                                  "archs": list(archs), "sizes": list(sizes)},
                     "figures": {}, "ratios": {}, "precision_xla": []}
    with stats.MachineLoad() as load:
        for arch in archs:
            for size in sizes:
                progress(f"mixed precision x XLA, interleaved: {arch} at {size}px, batch {batch_size}…")
                row = bench_precision_xla(arch, size, x, y, batch_size, windows, k, steps, progress)
                _collect(results, f"gpu/{arch}@{size}", row)
                results["precision_xla"].append(row)
    results["machine"] = load.summary()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
    return results


def format_paper_table(results: dict) -> str:
    """The paper profile's throughput and the FER2013 run time it implies, one line per model."""
    env = results["environment"]
    lines = [f"device: {env['device']} | TF {env['tensorflow']} | load {env['load_average_1min']:.1f} | "
             f"{results['settings']['images']} images, {results['settings']['epochs']} epochs (first = warm-up)",
             f"{'model':<16}{'weights':>11}{'batch':>7}{'train img/s':>13}{'eval img/s':>12}{'GFLOP/img':>11}"
             f"{'FER2013 epoch':>15}{'run (max epochs)':>18}"]
    for r in results["paper"]:
        lines.append(f"{r['arch'] + '@' + str(r['size']):<16}{r['weights']:>11}{r['batch_size']:>7}"
                     f"{r['train_images_per_sec']:>13.1f}{r['eval_images_per_sec']:>12.1f}"
                     f"{r['train_gflop_per_image']:>11.2f}{_hours(r['fer2013_epoch_s']):>15}"
                     f"{_hours(r['fer2013_run_s_at_max_epochs']):>18}")
    lines.append("Run time is an estimate: FER2013's 28,709 training and 3,589 validation images per epoch at the "
                 "measured rates, for the profile's maximum epochs (early stopping usually ends sooner), plus the "
                 "test split scored plain and with each TTA view.")
    return "\n".join(lines)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


_NUM_CLASSES = 7  # the synthetic set's classes, like FER2013's


def _bench_data(n_images: int) -> tuple[np.ndarray, np.ndarray]:
    from core.data import synthetic

    k = len(FER_LABELS)
    x, y = synthetic.generate(-(-n_images // k), seed=123)
    keep = np.random.default_rng(0).permutation(len(y))[:n_images]  # exactly n_images, classes mixed
    return x[keep], y[keep]


def bench_dataset_cache() -> dict:
    """Loading the synthetic set: first load in this process vs the per-process memo."""
    from core.configs import DataConfig

    datasets.forget_loaded()
    t0 = time.perf_counter()
    datasets.load_for_run(DataConfig(dataset="synthetic"))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    datasets.load_for_run(DataConfig(dataset="synthetic"))
    return {"first_load_s": first, "cached_load_s": time.perf_counter() - t0}


def _fig(f: dict) -> str:
    """``37.0 (35.1–38.2)``: median and interquartile range of the windows."""
    return f"{f['median']:.1f} ({f['iqr'][0]:.1f}–{f['iqr'][1]:.1f})"


def _header(results: dict) -> list[str]:
    env, s, m = results["environment"], results["settings"], results.get("machine", {})
    lines = [f"device: {env['device']} | TF {env['tensorflow']} / Keras {env['keras']} | "
             f"mixed precision {env['mixed_precision']} | XLA {env['xla']} | batch {s['batch_size']}, "
             + (f"{s['steps']} steps per window over {s['images']} images held in memory" if "steps" in s
                else f"{s['images']} images per window")
             + f", {s['windows']} interleaved windows after a warm-up"]
    if m:
        other = "n/a" if m["other_cpu_share"] is None else f"{100 * m['other_cpu_share']:.0f}%"
        lines.append(f"load average before {m['load_before'][0]:.1f}, after {m['load_after'][0]:.1f} "
                     f"({m['cores']} cores); CPU used by other processes during the bench: {other}")
        lines += [f"WARNING: {w}" for w in m["warnings"]]
    lines.append("figures: median (interquartile range) of the windows; ratios: median of per-round ratios "
                 "[95% interval], 'not resolved' when the interval contains 1")
    return lines


def format_table(results: dict) -> str:
    """The human-readable summary printed by the CLI."""
    if "precision_xla" in results:
        return format_gpu_table(results)
    fmt = stats.format_ratio
    lines = _header(results) + [f"matmul ceiling: {_fig(results['figures']['matmul/gflops'])} GFLOP/s", ""]
    lines.append(f"{'model':<13}{'pipeline img/s':>22}{'bare fit':>22}{'notebook':>22}{'augmented':>22}"
                 f"{'% peak':>8}{'1st epoch s':>13}")
    for r in results["training"]:
        f = r["figures"]
        lines.append(f"{r['arch'] + '@' + str(r['size']):<13}{_fig(f['pipeline']):>22}{_fig(f['bare_fit']):>22}"
                     f"{_fig(f['notebook_flow_from_directory']):>22}{_fig(f['pipeline_augmented']):>22}"
                     f"{100 * r['fraction_of_matmul_peak']:>8.0f}{r['first_window_s']:>13.1f}")
    lines.append("")
    for r in results["training"]:
        q = r["ratios"]
        lines.append(f"{r['arch']}@{r['size']}: pipeline vs bare fit {fmt(q['pipeline_vs_bare'])}; "
                     f"vs notebook {fmt(q['pipeline_vs_notebook'])}; augmented vs plain {fmt(q['augmented_vs_pipeline'])}")
    if "levers" in results:
        lv = results["levers"]
        lines += ["", f"CPU levers on {lv['arch']}@{lv['size']} (img/s ratio against the default; >1 helps):"]
        for line in lv["levers"]:
            effect = fmt(lv["ratios"][line["ratio"]]) if line["ratio"] else line["note"]
            lines.append(f"  {line['lever']:<38}{line['setting']:<42}{effect}")
    for f in results.get("frozen_features", []):
        lines += ["", f"frozen backbone ({f['arch']}@{f['size']}, {f['frozen_blocks']} blocks frozen, no augmentation): "
                      f"full forward {_fig(f['figures']['full_forward'])} img/s, cached features "
                      f"{_fig(f['figures']['cached_features'])} img/s",
                  f"  steady epoch speed-up {fmt(f['ratios']['cached_vs_full'])}; expected from FLOPs "
                  f"x{f['expected_speedup_flops']:.2f} (trainable part {100 * f['trainable_flop_share']:.0f}% of the "
                  f"forward FLOPs); feature extraction {f['feature_extraction_s']:.1f} s once per run; "
                  f"over 10 epochs x{f['speedup_over_10_epochs']:.2f} (computed from these parts)",
                  f"  achieved GFLOP/s: full path {f['achieved_gflops']['full_forward']:.1f}, cached path "
                  f"{f['achieved_gflops']['cached_features']:.1f}",
                  f"  cached path with 16 steps per call vs 1 (per-step dispatch): "
                  f"{fmt(f['ratios']['dispatch_16_vs_1_steps_per_call'])}"]
    for s in results.get("startup", []):
        lines += ["", f"start-up to the first trained batch, {s['arch']}@{s['size']} (fresh process"
                      f"{'' if s['optimizer_prebuilt'] else ', optimizer and metrics NOT pre-built'}): "
                      f"{s['to_first_step_s']:.1f} s = import TensorFlow {s['import_tensorflow_s']:.1f} s + project "
                      f"{s['import_project_s']:.1f} s + build/compile {s['build_compile_s']:.1f} s + first step "
                      f"{s['first_step_s']:.1f} s (of which tracing ~{s['tracing_s']:.1f} s; a steady step "
                      f"{s['steady_step_s']:.2f} s)"]
    d = results["dataset_cache"]
    lines += ["", f"synthetic dataset: first load {d['first_load_s']:.2f} s, held in memory "
                  f"{d['cached_load_s'] * 1000:.1f} ms"]
    for p in results.get("predict_latency", []):
        lines.append(f"prediction per face, {p['arch']}@{p['size']}: detection {p['detection_ms']:.0f} ms, "
                     f"preprocessing {p['preprocess_ms']:.1f} ms, model {p['predict_ms']:.1f} ms")
    for r in results.get("detection", {}).get("rows", []):
        lines.append(f"Haar detection, {r['megapixels']:.2f} MP {r['photo']}: full resolution {r['before_ms']:.0f} ms "
                     f"({r['faces_before']} face(s)), ~1 MP working copy {r['after_ms']:.0f} ms ({r['faces_after']})")
    if v := results.get("video"):
        lines.append(f"video, {v['frame_size']} frames with one face, {v['arch']}@{v['size']}: {v['ms_per_frame']:.0f} ms "
                     f"per sampled frame ({v['frames_per_s']:.1f} frames/s: decode, detect, track, score)")
    return "\n".join(lines)


def format_gpu_table(results: dict) -> str:
    """The ``--gpu`` summary: img/s per precision x XLA, and each against float32 without XLA."""
    fmt = stats.format_ratio
    lines = _header(results) + [""]
    for r in results["precision_xla"]:
        f, q = r["figures"], r["ratios"]
        lines.append(f"{r['arch']}@{r['size']} batch {r['batch_size']} ({r['mixed_policy']}): "
                     + ", ".join(f"{k} {_fig(v)} img/s" for k, v in f.items()))
        lines.append("  vs fp32: " + "; ".join(f"{k} {fmt(v)}" for k, v in q.items()))
        if (r["arch"], r["size"]) == ("resnet50", 224):
            lines.append(f"  amp_xla is {100 * f['amp_xla']['median'] / NVIDIA_A100_RESNET50_IMG_S:.0f}% of NVIDIA's "
                         f"published ~{NVIDIA_A100_RESNET50_IMG_S:,} img/s on one A100 (ResNet50 v1.5, AMP+XLA, 224 px)")
    return "\n".join(lines)


def format_markdown(results: dict) -> str:
    """The README's performance tables, generated from a bench JSON (``python -m core bench --markdown``)."""
    fmt = stats.format_ratio
    env, s, m = results["environment"], results["settings"], results.get("machine", {})
    other = "n/a" if m.get("other_cpu_share") is None else f"{100 * m['other_cpu_share']:.0f}%"
    lines = [f"Measured with `{results.get('command') or 'python -m core bench'}` on {env['device']} "
             f"({m.get('cores', '?')} cores, load average {m.get('load_before', ['?'])[0]} before, "
             f"{m.get('load_after', ['?'])[0]} after; other processes "
             f"{other} of the CPU); "
             f"TF {env['tensorflow']}, Keras {env['keras']}, batch {s['batch_size']}, {s['images']} images per "
             f"window, {s['windows']} windows. Figures: median (interquartile range); ratios: median "
             f"[95% distribution-free interval].", ""]
    if "precision_xla" in results:
        lines += ["| model | variant | img/s | vs fp32 |", "|---|---|---|---|"]
        for r in results["precision_xla"]:
            for k, v in r["figures"].items():
                ratio = fmt(r["ratios"][k]) if k in r["ratios"] else "1"
                lines.append(f"| {r['arch']}@{r['size']} | {k} | {_fig(v)} | {ratio} |")
        return "\n".join(lines)
    lines += [f"Matmul ceiling: {_fig(results['figures']['matmul/gflops'])} GFLOP/s.", "",
              "| model | pipeline img/s | bare fit | notebook | augmented | pipeline vs bare | vs notebook "
              "| % of matmul ceiling | 1st epoch s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results["training"]:
        f, q = r["figures"], r["ratios"]
        lines.append(f"| {r['arch']}@{r['size']} | {_fig(f['pipeline'])} | {_fig(f['bare_fit'])} "
                     f"| {_fig(f['notebook_flow_from_directory'])} | {_fig(f['pipeline_augmented'])} "
                     f"| {fmt(q['pipeline_vs_bare'])} | {fmt(q['pipeline_vs_notebook'])} "
                     f"| {100 * r['fraction_of_matmul_peak']:.0f}% | {r['first_window_s']:.1f} |")
    if "levers" in results:
        lv = results["levers"]
        lines += ["", f"| lever ({lv['arch']}@{lv['size']}) | setting | effect on img/s |", "|---|---|---|"]
        for line in lv["levers"]:
            effect = fmt(lv["ratios"][line["ratio"]]) if line["ratio"] else line["note"]
            lines.append(f"| {line['lever']} | {line['setting']} | {effect} |")
    if results.get("frozen_features"):
        lines += ["", "| frozen backbone | full forward img/s | cached img/s | measured speed-up | expected (FLOPs) "
                      "| GFLOP/s full / cached | extraction s | over 10 epochs | 16 vs 1 steps per call |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for f in results["frozen_features"]:
            lines.append(f"| {f['arch']}@{f['size']} | {_fig(f['figures']['full_forward'])} "
                         f"| {_fig(f['figures']['cached_features'])} | {fmt(f['ratios']['cached_vs_full'])} "
                         f"| x{f['expected_speedup_flops']:.2f} | {f['achieved_gflops']['full_forward']:.1f} / "
                         f"{f['achieved_gflops']['cached_features']:.1f} | {f['feature_extraction_s']:.1f} "
                         f"| x{f['speedup_over_10_epochs']:.2f} | {fmt(f['ratios']['dispatch_16_vs_1_steps_per_call'])} |")
    if results.get("startup"):
        lines += ["", "| start-up (fresh process, one sample) | import TF | import project | build+compile | first step "
                      "(tracing) | to first step |", "|---|---|---|---|---|---|"]
        for st in results["startup"]:
            label = f"{st['arch']}@{st['size']}" + ("" if st["optimizer_prebuilt"] else ", train state not pre-built")
            lines.append(f"| {label} | {st['import_tensorflow_s']:.1f} s "
                         f"| {st['import_project_s']:.1f} s | {st['build_compile_s']:.1f} s "
                         f"| {st['first_step_s']:.1f} s ({st['tracing_s']:.1f} s) | {st['to_first_step_s']:.1f} s |")
    return "\n".join(lines)
