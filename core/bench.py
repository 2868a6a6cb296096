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
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from core import datasets, device, models, presets, profiles, training, tta
from core.config import RunConfig
from core.models import forward_flops


def _timed_epochs(fit_one_epoch: Callable[[], None], epochs: int) -> list[float]:
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        fit_one_epoch()
        times.append(time.perf_counter() - t0)
    return times


def matmul_flops(n: int = 2048, seconds: float = 1.0) -> float:
    """Sustained float32 matmul FLOP/s: the hardware ceiling training is compared against."""
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    tf.linalg.matmul(a, b).numpy()  # warm-up
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        tf.linalg.matmul(a, b).numpy()
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def _compiled(cfg: RunConfig, num_classes: int, **compile_kw):
    model = models.build_model(cfg.model, num_classes, seed=cfg.train.seed)
    model.compile(optimizer=models.make_optimizer(cfg.optimizer), loss="categorical_crossentropy",
                  metrics=["accuracy"], **compile_kw)
    return model


def bench_training(arch: str, size: int, x: np.ndarray, y: np.ndarray, batch_size: int, epochs: int,
                   num_classes: int) -> dict:
    """images/s of the project pipeline vs a bare in-memory fit vs ImageDataGenerator over PNGs."""
    import keras
    from tensorflow.keras.preprocessing.image import ImageDataGenerator

    cfg = presets.preset("scratch-adam", presets.base_config(arch, "bench", batch_size=batch_size))
    cfg = replace(cfg, model=replace(cfg.model, input_size=size))
    n = len(y)
    out: dict = {"arch": arch, "size": size, "images": n, "batch_size": batch_size}

    def measure(name: str, make_data, **compile_kw):
        keras.backend.clear_session()
        t0 = time.perf_counter()
        model = _compiled(cfg, num_classes, **compile_kw)
        data = make_data()
        fit = (lambda: model.fit(data, epochs=1, verbose=0, shuffle=False)) if not isinstance(data, tuple) else \
            (lambda: model.fit(data[0], data[1], batch_size=batch_size, epochs=1, verbose=0, shuffle=True))
        times = _timed_epochs(fit, epochs)
        # Median of the post-warm-up epochs: one epoch slowed by other processes should not decide.
        steady = float(np.median(times[1:])) if len(times) > 1 else times[0]
        out[name] = {"first_epoch_s": time.perf_counter() - t0 - sum(times[1:]), "epoch_s": steady,
                     "images_per_sec": n / steady}
        return model

    kw = dict(arch=arch, input_size=size, num_classes=num_classes, batch_size=batch_size, seed=0)
    model = measure("pipeline", lambda: datasets.make_pipeline(x, y, training=True, augment=False, **kw))
    measure("pipeline_augmented", lambda: datasets.make_pipeline(x, y, training=True, augment=True, **kw))
    measure("bare_fit", lambda: (models.preprocess(arch, x, size), np.eye(num_classes, dtype="float32")[y]))
    with tempfile.TemporaryDirectory() as tmp:
        import cv2

        for i, (img, label) in enumerate(zip(x, y)):
            d = Path(tmp) / f"class{label}"
            d.mkdir(exist_ok=True)
            cv2.imwrite(str(d / f"{i}.png"), img)
        # No augmentation, like the "pipeline" row, so the two differ only in how images are fed.
        gen = ImageDataGenerator(preprocessing_function=models.get_spec(arch).preprocess_fn())
        measure("notebook_flow_from_directory",
                lambda: gen.flow_from_directory(tmp, target_size=(size, size), color_mode="rgb",
                                                batch_size=batch_size, class_mode="categorical", seed=0))
    flops = forward_flops(model)
    out["train_gflop_per_image"] = 3 * flops / 1e9  # backward pass ~2x forward
    out["ratio_pipeline_vs_bare"] = out["pipeline"]["images_per_sec"] / out["bare_fit"]["images_per_sec"]
    out["ratio_pipeline_vs_notebook"] = (out["pipeline"]["images_per_sec"]
                                         / out["notebook_flow_from_directory"]["images_per_sec"])
    out["achieved_gflops"] = out["train_gflop_per_image"] * out["pipeline"]["images_per_sec"]
    return out


@contextmanager
def _scratch_store():
    """A throwaway run store, so benchmark runs never mix with real results."""
    import os

    from core.tracking import RunStore

    old = os.environ.get("EMOTION_LAB_ARTIFACTS")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["EMOTION_LAB_ARTIFACTS"] = tmp
        try:
            yield RunStore(f"sqlite:///{tmp}/bench.db")
        finally:
            if old is None:
                os.environ.pop("EMOTION_LAB_ARTIFACTS", None)
            else:
                os.environ["EMOTION_LAB_ARTIFACTS"] = old


def bench_frozen_features(arch: str, size: int, x: np.ndarray, y: np.ndarray, batch_size: int, epochs: int,
                          num_classes: int) -> dict:
    """The frozen configuration without augmentation: full forward each step vs cached frozen features."""
    import keras

    base = presets.base_config(arch, "bench", batch_size=batch_size, epochs=epochs)
    cfg = presets.preset("imagenet-frozen-adam", base)
    cfg = replace(cfg, model=replace(cfg.model, weights="none", input_size=size),
                  data=replace(cfg.data, augment=False))
    ds = datasets.Dataset("bench", "bench", tuple(str(i) for i in range(num_classes)),
                          {"train": (x, y), "val": (x[:batch_size], y[:batch_size]),
                           "test": (x[:batch_size], y[:batch_size])})
    result = {}
    with _scratch_store() as store:
        for name, cache in (("full_forward", False), ("cached_features", True)):
            keras.backend.clear_session()
            run_cfg = replace(cfg, train=replace(cfg.train, cache_frozen_features=cache))
            t0 = time.perf_counter()
            hist = training.train(run_cfg, dataset=ds, store=store).history
            result[name] = {"total_s": time.perf_counter() - t0,
                            "epoch_s": float(hist.epoch_time.iloc[1:].mean() if epochs > 1 else hist.epoch_time.iloc[0])}
    result["speedup_total"] = result["full_forward"]["total_s"] / result["cached_features"]["total_s"]
    result["speedup_epoch"] = result["full_forward"]["epoch_s"] / result["cached_features"]["epoch_s"]
    return result


def bench_predict_latency(arch: str, size: int, n: int = 20) -> dict:
    """Per-face milliseconds on scikit-image's astronaut: Haar detection, preprocessing and one model call,
    measured by the Predict path itself (``core.inference.latency_benchmark``). Weights do not change the cost."""
    from core import inference
    from core.config import ModelConfig

    image, detector = None, "haar"
    try:
        import skimage  # noqa: F401  the default photo; a test dependency, not a runtime one
    except ImportError:  # a drawn face, scored whole: detection is then not measured
        from core import synthetic

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

    from core import faces

    try:
        from skimage import data as skdata

        base, source = skdata.astronaut(), "astronaut"
    except ImportError:
        from core import synthetic

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
    from core.config import ModelConfig
    from core.inference import video

    try:
        from skimage import data as skdata

        face = cv2.resize(skdata.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    except ImportError:
        from core import synthetic

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


def run_benchmark(archs=("resnet50", "vgg16"), sizes=(48, 96), n_images: int = 96, batch_size: int = 32,
                  epochs: int = 3, out: Path | None = None, progress: Callable[[str], None] = print) -> dict:
    """Measure everything, print a table, write JSON; returns the results."""
    x, y = _bench_data(n_images)
    k = int(y.max()) + 1
    results: dict = {"environment": environment_summary(), "settings": {
        "images": n_images, "batch_size": batch_size, "epochs": epochs}}
    progress(f"matmul ceiling on {results['environment']['device']}…")
    results["matmul_gflops"] = matmul_flops() / 1e9
    results["training"] = []
    for arch in archs:
        for size in sizes:
            progress(f"training throughput: {arch} at {size}px…")
            row = bench_training(arch, size, x, y, batch_size, epochs, k)
            row["fraction_of_matmul_peak"] = row["achieved_gflops"] / results["matmul_gflops"]
            results["training"].append(row)
    progress(f"frozen backbone feature caching: {archs[0]} at {sizes[0]}px…")
    results["frozen_features"] = bench_frozen_features(archs[0], sizes[0], x, y, batch_size, epochs, k)
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
        keras.mixed_precision.set_global_policy("mixed_bfloat16" if acc["bf16"] else "mixed_float16")
    try:
        model = _compiled(cfg, num_classes, jit_compile=xla)
        kw = dict(arch=arch, input_size=size, num_classes=num_classes, batch_size=p.batch_size, seed=0)
        train = datasets.make_pipeline(x, y, training=True, augment=True, augment_strength=p.augment_strength,
                                       augment_set=p.augment_set, **kw)
        times = _timed_epochs(lambda: model.fit(train, epochs=1, verbose=0, shuffle=False), epochs)
        train_ips = len(y) / (float(np.median(times[1:])) if len(times) > 1 else times[0])
        evaluation_data = datasets.make_pipeline(x, y, training=False, **kw)
        model.predict(evaluation_data, verbose=0)  # warm-up: tracing and the evaluation cache
        t0 = time.perf_counter()
        model.predict(evaluation_data, verbose=0)
        eval_ips = len(y) / (time.perf_counter() - t0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    n = FER2013_IMAGES
    epoch_s = n["train"] / train_ips + n["val"] / eval_ips
    views = len(tta.views(p.tta))
    run_s = p.epochs * epoch_s + (1 + views) * n["test"] / eval_ips  # plain test pass + the TTA views
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


def _bench_data(n_images: int) -> tuple[np.ndarray, np.ndarray]:
    from core import synthetic

    per_class = max(1, n_images // len(synthetic.CLASS_NAMES))
    return synthetic.generate(per_class, seed=123)


def bench_dataset_cache() -> dict:
    """Loading the synthetic set: first load in this process vs the per-process memo."""
    from core.config import DataConfig

    datasets.forget_loaded()
    t0 = time.perf_counter()
    datasets.load_for_run(DataConfig(dataset="synthetic"))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    datasets.load_for_run(DataConfig(dataset="synthetic"))
    return {"first_load_s": first, "cached_load_s": time.perf_counter() - t0}


def format_table(results: dict) -> str:
    """The human-readable summary printed by the CLI."""
    env = results["environment"]
    lines = [f"device: {env['device']} | TF {env['tensorflow']} / Keras {env['keras']} | "
             f"mixed precision {env['mixed_precision']} | XLA {env['xla']} | "
             f"batch {results['settings']['batch_size']}, {results['settings']['images']} images, "
             f"{results['settings']['epochs']} epochs (first = warm-up) | load {env['load_average_1min']:.1f}",
             f"matmul ceiling: {results['matmul_gflops']:.1f} GFLOP/s", "",
             f"{'model':<14}{'pipeline img/s':>15}{'bare fit':>10}{'notebook':>10}{'vs bare':>9}"
             f"{'vs notebook':>13}{'aug img/s':>11}{'1st epoch s':>13}{'epoch s':>9}{'% peak':>8}"]
    for r in results["training"]:
        lines.append(
            f"{r['arch'] + '@' + str(r['size']):<14}{r['pipeline']['images_per_sec']:>15.1f}"
            f"{r['bare_fit']['images_per_sec']:>10.1f}{r['notebook_flow_from_directory']['images_per_sec']:>10.1f}"
            f"{r['ratio_pipeline_vs_bare']:>9.2f}{r['ratio_pipeline_vs_notebook']:>13.2f}"
            f"{r['pipeline_augmented']['images_per_sec']:>11.1f}{r['pipeline']['first_epoch_s']:>13.1f}"
            f"{r['pipeline']['epoch_s']:>9.2f}{100 * r['fraction_of_matmul_peak']:>8.1f}")
    f = results["frozen_features"]
    lines += ["", f"frozen backbone, no augmentation (whole run incl. start-up and test): full forward "
                  f"{f['full_forward']['total_s']:.1f} s, cached features {f['cached_features']['total_s']:.1f} s "
                  f"(x{f['speedup_total']:.2f}); steady epoch x{f['speedup_epoch']:.2f}"]
    d = results["dataset_cache"]
    lines.append(f"synthetic dataset: first load {d['first_load_s']:.2f} s, held in memory {d['cached_load_s'] * 1000:.1f} ms")
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

