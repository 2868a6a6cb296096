"""The three benches ``python -m core bench`` runs: the default (CPU) one, ``--gpu`` and ``--paper``.

Each runs its experiments in order, gathers their sections into one JSON-ready result and
writes it. Every number comes from timing real work on this machine; nothing is extrapolated
except where a row says so.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from core.bench import export, inference, runner, stats, system, train
from core.bench.levers import bench_levers
from core.configs import profiles


def run_benchmark(archs=("resnet50", "vgg16"), sizes=(48,), n_images: int = 96, batch_size: int = 32,
                  windows: int = 12, levers: bool = False, frozen: bool = True, startup: bool = True,
                  out: Path | None = None, progress: Callable[[str], None] = print, command: str = "") -> dict:
    """Measure everything with interleaved windows, write JSON (schema ``stats.SCHEMA``); returns the results."""
    x, y = runner.bench_data(n_images)
    k = runner.NUM_CLASSES
    results: dict = {"schema": stats.SCHEMA, "command": command, "environment": runner.environment_summary(),
                     "settings": {"images": len(y), "batch_size": batch_size, "windows": windows,
                                  "archs": list(archs), "sizes": list(sizes)},
                     "figures": {}, "ratios": {}}
    figures = results["figures"]
    with stats.MachineLoad() as load:
        progress(f"matmul ceiling on {results['environment']['device']}…")
        figures["matmul/gflops"] = stats.summarize([r / 1e9 for r in system.matmul_windows(windows=windows)],
                                                   unit="GFLOP/s")
        results["matmul_gflops"] = figures["matmul/gflops"]["median"]
        results["training"] = []
        for arch in archs:
            for size in sizes:
                progress(f"training throughput, interleaved: {arch} at {size}px…")
                row = train.bench_training(arch, size, x, y, batch_size, windows, k, progress)
                row["fraction_of_matmul_peak"] = row["achieved_gflops"] / results["matmul_gflops"]
                runner.collect(results, f"train/{arch}@{size}", row)
                results["training"].append(row)
        if levers:
            progress(f"CPU levers, interleaved: {archs[0]} at {sizes[0]}px…")
            results["levers"] = bench_levers(archs[0], sizes[0], x, y, batch_size, windows, k, progress)
            load.extra_own_cpu_s += results["levers"]["worker_cpu_s"]
            runner.collect(results, f"levers/{archs[0]}@{sizes[0]}", results["levers"])
        if frozen:
            results["frozen_features"] = []
            for arch in archs:
                progress(f"frozen backbone feature caching: {arch} at {sizes[0]}px…")
                row = train.bench_frozen_features(arch, sizes[0], x, y, batch_size, windows, k, progress)
                runner.collect(results, f"frozen/{arch}@{sizes[0]}", row)
                results["frozen_features"].append(row)
        if startup:
            results["startup"] = []
            for arch in archs:
                progress(f"start-up in a fresh process: {arch} at {sizes[0]}px…")
                results["startup"].append(system.bench_startup(arch, sizes[0], batch_size))
            if levers:  # what build_train_state saves: a demonstration, not needed to track speed work
                progress(f"start-up without the train state pre-built (the train step traced twice): {archs[0]}…")
                results["startup"].append(system.bench_startup(archs[0], sizes[0], batch_size, prebuild=False))
        results["predict_latency"] = []
        for arch in archs:
            progress(f"prediction latency per face: {arch} at 48px…")
            results["predict_latency"].append(inference.bench_predict_latency(arch, 48))
        results["export_latency"] = []
        for arch in archs:
            progress(f"per-face latency, Keras vs ONNX Runtime: {arch} at 48px (exporting to ONNX first)…")
            results["export_latency"].append(export.bench_export_latency(arch, 48))
        progress("face detection on large photos, full resolution vs working copy…")
        results["detection"] = inference.bench_detection(inference.DETECTION_MEGAPIXELS)
        progress(f"video analysis per sampled frame: {archs[0]} at 48px…")
        results["video"] = inference.bench_video(archs[0])
        progress("dataset decode, first use vs held in memory…")
        results["dataset_cache"] = system.bench_dataset_cache()
    results["machine"] = load.summary()
    for warning in results["machine"]["warnings"]:
        progress(f"warning: {warning}")
    runner.save(results, out)
    return results


def run_gpu_benchmark(archs=("resnet50", "vgg16"), sizes=(224,), n_images: int = 512, batch_size: int = 256,
                      windows: int = 7, steps: int = 32, out: Path | None = None,
                      progress: Callable[[str], None] = print, command: str = "") -> dict:
    """Paper-scale sizes with mixed precision and XLA on and off (``python -m core bench --gpu``); writes JSON."""
    x, y = runner.bench_data(n_images)
    results: dict = {"schema": stats.SCHEMA, "command": command, "environment": runner.environment_summary(),
                     "settings": {"images": len(y), "batch_size": batch_size, "windows": windows, "steps": steps,
                                  "archs": list(archs), "sizes": list(sizes)},
                     "figures": {}, "ratios": {}, "precision_xla": []}
    with stats.MachineLoad() as load:
        for arch in archs:
            for size in sizes:
                progress(f"mixed precision x XLA, interleaved: {arch} at {size}px, batch {batch_size}…")
                row = train.bench_precision_xla(arch, size, x, y, batch_size, windows, runner.NUM_CLASSES, steps,
                                                progress)
                runner.collect(results, f"gpu/{arch}@{size}", row)
                results["precision_xla"].append(row)
    results["machine"] = load.summary()
    runner.save(results, out)
    return results


def run_paper_benchmark(archs=("resnet50", "vgg16"), n_images: int = 480, epochs: int = 3, out: Path | None = None,
                        progress: Callable[[str], None] = print) -> dict:
    """``train.bench_paper_profile`` for every architecture at the paper profile's pretrained and scratch sizes."""
    p = profiles.get("paper")
    x, y = runner.bench_data(n_images)
    results: dict = {"environment": runner.environment_summary(), "settings": {"images": len(y), "epochs": epochs},
                     "paper": []}
    for arch in archs:
        for pretrained, size in ((True, p.pretrained_input_size), (False, p.input_size)):
            progress(f"paper profile throughput: {arch} at {size}px…")
            results["paper"].append(train.bench_paper_profile(arch, size, x, y, epochs, int(y.max()) + 1, pretrained))
    runner.save(results, out)
    return results
