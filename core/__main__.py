"""Command-line interface: ``python -m core --help``."""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ start-up chatter buries the useful output


def _base_from_args(args, arch: str):
    from core import presets

    base = presets.base_config(arch, args.dataset, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    data = replace(base.data, max_train=args.max_train, max_eval=args.max_eval, augment=not args.no_augment,
                   class_weights=args.class_weights)
    model = replace(base.model, input_size=args.input_size)
    return replace(base, data=data, model=model, group=getattr(args, "group", "") or "")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    from core import presets

    p.add_argument("--dataset", default="synthetic", help="synthetic | synthetic-small | a CSV or folder under data/")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--input-size", type=int, default=48)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--max-train", type=int, default=None, help="cap on training images (stratified subset)")
    p.add_argument("--max-eval", type=int, default=None, help="cap on validation/test images")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--class-weights", action="store_true", help="balance rare classes (FER2013's disgust)")
    p.add_argument("--quick", action="store_true",
                   help="a few minutes on a laptop CPU: " + ", ".join(f"{k}={v}" for k, v in presets.QUICK.items()))


def _apply_quick(args) -> None:
    from core import presets

    if args.quick:
        for k, v in presets.QUICK.items():
            setattr(args, k, v)


def _verbose() -> int:
    return 1 if sys.stdout.isatty() else 2


def cmd_datasets(args) -> int:
    from core import datasets

    table = datasets.describe(args.names or None)
    if table.empty:
        print("No datasets found.")
        return 1
    print(table.to_string(index=False))
    return 0


def cmd_train(args) -> int:
    from core import presets, training

    _apply_quick(args)
    _apply_distribute(args)
    cfg = presets.preset(args.config, _base_from_args(args, args.arch))
    result = training.train(cfg, verbose=_verbose())
    _print_result(cfg, result)
    return 0


def _print_result(cfg, result) -> None:
    if result.report is None:
        print(f"{cfg.model.arch}/{cfg.variant}: {result.status} (run {result.run_id})")
        return
    r = result.report
    print(f"{cfg.model.arch}/{cfg.variant}: test accuracy {r['accuracy']:.3f} "
          f"[{r['accuracy_ci'][0]:.3f}, {r['accuracy_ci'][1]:.3f}], macro-F1 {r['macro_f1']:.3f} (run {result.run_id})")


def cmd_compare(args) -> int:
    import uuid

    from tqdm import tqdm

    from core import models, presets, training

    _apply_quick(args)
    args.group = args.group or f"compare-{uuid.uuid4().hex[:8]}"
    configs = [presets.preset(cid, _base_from_args(args, arch)) for arch in args.arch for cid in args.configs]
    failures = []
    for cfg in tqdm(configs, desc="comparison", unit="run"):
        if cfg.model.weights == "imagenet" and not models.imagenet_weights_cached(cfg.model.arch):
            failures.append(f"{cfg.model.arch}/{cfg.variant}: skipped, {models._missing_message(cfg.model.arch)}")
            tqdm.write(failures[-1])
            continue
        try:
            _print_result(cfg, training.train(cfg, verbose=0 if args.quiet else _verbose()))
        except Exception as exc:  # one failing configuration must not sink the grid
            failures.append(f"{cfg.model.arch}/{cfg.variant}: failed: {exc}")
            tqdm.write(failures[-1])
    print(f"Group {args.group}: {len(configs) - len(failures)} of {len(configs)} runs finished.")
    for f in failures:
        print("  " + f)
    return 0 if len(failures) < len(configs) else 1


def cmd_evaluate(args) -> int:
    from core import training

    new_id, report = training.evaluate_stored(args.run_id, args.dataset)
    print(f"run {args.run_id} on {args.dataset}: accuracy {report['accuracy']:.3f}, "
          f"macro-F1 {report['macro_f1']:.3f} (recorded as run {new_id})")
    return 0


def cmd_runs(args) -> int:
    from core.tracking import RunStore

    runs = RunStore().list_runs()
    if runs.empty:
        print("No runs yet. Try: python -m core compare --dataset synthetic --arch resnet50 --quick")
        return 0
    cols = ["run_id", "label", "dataset", "status", "epochs_done", "test_accuracy", "test_macro_f1", "group"]
    print(runs[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def cmd_fetch_weights(args) -> int:
    from core import models

    for arch in args.arch:
        print(f"{arch}: {models.fetch_weights(arch)}")
    return 0


def cmd_worker(args) -> int:
    from core import jobs

    _apply_distribute(args)  # job processes inherit it
    if args.ray is not None:
        from core import cluster

        return cluster.run_ray_worker(args.ray, gpus_per_task=args.gpus_per_task, cpus_per_task=args.cpus_per_task,
                                      max_parallel=args.max_parallel, max_jobs=args.max_jobs,
                                      exit_when_idle=args.exit_when_idle, slots=args.slots)
    return jobs.run_worker(max_jobs=args.max_jobs, exit_when_idle=args.exit_when_idle, slots=args.slots)


def _add_distribute_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--distribute", choices=("none", "mirrored"), default=None,
                   help="mirrored: one run on every visible GPU (tf.distribute.MirroredStrategy)")


def _apply_distribute(args) -> None:
    if args.distribute is not None:
        from core.cluster import DISTRIBUTE_ENV

        os.environ[DISTRIBUTE_ENV] = args.distribute


def cmd_submit(args) -> int:
    import uuid

    from core import jobs, presets

    if args.evaluate:
        ids = [jobs.submit_evaluate(args.evaluate, args.dataset)]
    else:
        _apply_quick(args)
        configs = [presets.preset(cid, _base_from_args(args, arch)) for arch in args.arch for cid in args.configs]
        if len(configs) == 1:
            ids = [jobs.submit_train(configs[0])]
        else:
            ids = jobs.submit_grid(configs, args.group or f"grid-{uuid.uuid4().hex[:8]}")
    print(f"Queued job(s) {', '.join(map(str, ids))}.")
    if not args.no_worker:
        pid = jobs.ensure_worker()
        status = jobs.worker_status()
        print(f"Started worker (pid {pid})." if pid else f"Worker already running (pid {status['pid']}).")
    print("Follow with: python -m core jobs")
    return 0


def cmd_jobs(args) -> int:
    from core import jobs

    if args.id is not None:
        job = jobs.get_job(args.id)
        for key in ("id", "kind", "label", "group", "state", "note", "run_id", "attempts", "epoch", "epochs",
                    "batch", "batches", "metrics", "eta_s", "heartbeat_age_s", "error", "result", "log_path"):
            if job.get(key) not in (None, "", {}):
                print(f"{key:>16}: {job[key]}")
        if job["log_tail"]:
            print("\n" + job["log_tail"])
        return 0
    table = jobs.list_jobs(args.limit, group=args.group)
    if table.empty:
        print("No jobs yet. Try: python -m core submit --arch resnet50 --configs scratch-adam --quick")
        return 0

    def progress(j) -> str:
        if j.state != "running" or not j.epochs:
            return ""
        eta = f" eta {j.eta_s:.0f}s" if j.eta_s == j.eta_s and j.eta_s is not None else ""
        return f"epoch {int(j.epoch or 0)}/{int(j.epochs)} batch {int(j.batch or 0)}/{int(j.batches or 0)}{eta}"

    table["progress"] = [progress(j) for j in table.itertuples()]
    table["info"] = [(j.error or j.note)[:70] for j in table.itertuples()]
    print(table[["id", "kind", "state", "label", "group", "progress", "attempts", "info"]].to_string(index=False))
    status = jobs.worker_status()
    print(f"\nWorker: {'running (pid %s)' % status['pid'] if status['alive'] else 'none running'}")
    return 0


def cmd_cancel(args) -> int:
    from core import jobs

    state = jobs.cancel(args.id, grace_s=0.0 if args.force else jobs.CANCEL_GRACE_S)
    if state == "running":
        print(f"Job {args.id}: cancel requested; it stops at its next batch "
              f"(or is killed {'now' if args.force else f'after {jobs.CANCEL_GRACE_S:.0f} s'}).")
    else:
        print(f"Job {args.id}: {state}.")
    return 0


def cmd_predict(args) -> int:
    from pathlib import Path

    import cv2

    from core import inference
    from core.faces import ImageError, load_image
    from core.tracking import RunNotFound

    predictors = inference.list_predictors()
    try:
        ids = inference.match_predictors(args.runs, predictors) if args.runs else [p["id"] for p in predictors]
    except RunNotFound as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    if not ids:
        print("No finished runs or reference models yet. Train one (python -m core train --config scratch-adam "
              "--quick) or register one (python -m core register-model --help).")
        return 1
    labels = {p["id"]: p["label"] for p in predictors}
    status = 0
    for path in args.images:
        try:
            rgb = load_image(path)
            result = inference.predict_faces(rgb, ids, detector=args.detector, margin=args.margin,
                                             gradcam=bool(args.gradcam_dir), yunet_model=args.yunet_model)
        except ImageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
            continue
        except (ValueError, FileNotFoundError) as exc:  # detector problems, e.g. a missing YuNet file
            print(f"error: {exc}", file=sys.stderr)
            return 2
        name = Path(path).name
        faces = result["faces"]
        if not faces:
            print(f"{name}: no face found; if the photo is already a cropped face, try --detector whole")
            continue
        t = result["timings"]
        loading = sum(m["load_ms"] for m in t["models"].values())
        print(f"{name}: {len(faces)} face(s), {args.detector} detector, {t['total_ms'] - loading:.0f} ms"
              + (f" (+{loading:.0f} ms loading models)" if loading else ""))
        width = max(len("model"), *(len(labels[pid]) for pid in ids))
        for face in faces:
            x, y, w, h = face["box"]
            print(f"\n  face {face['index'] + 1} at x={x} y={y} ({w}x{h}): {face['agreement']} of "
                  f"{face['n_models']} model(s) say {face['majority_label']}")
            print(f"    {'model':<{width}}  {'top label':<10}  probability")
            for pid, v in face["predictions"].items():
                print(f"    {labels[pid]:<{width}}  {v['top_label']:<10}  {v['probability']:11.3f}")
            for pid, cam in face["gradcam"].items():
                out = Path(args.gradcam_dir) / f"{Path(path).stem}_face{face['index'] + 1}_{pid.replace(':', '-')}.png"
                out.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(out), cv2.cvtColor(cam["overlay"], cv2.COLOR_RGB2BGR))
                print(f"    Grad-CAM {labels[pid]}: {out}")
        print()
    return status


def cmd_register_model(args) -> int:
    from core import inference

    entry = inference.register_reference(args.name, args.path, args.labels, args.input_size, args.channels,
                                         args.scaling, replace=args.replace)
    cam = f"Grad-CAM at layer {entry['gradcam_layer']}" if entry["gradcam_layer"] else "no Grad-CAM (no conv layer)"
    print(f"registered reference model {args.name!r} as {inference.REFERENCE_PREFIX}{args.name}: "
          f"{entry['input_size']}x{entry['input_size']}x{entry['channels']}, scaling {entry['scaling']}, "
          f"outputs {entry['outputs']}, {cam}\n  labels: {', '.join(entry['labels'])}\n  file: {entry['path']}")
    return 0


def cmd_evaluate_reference(args) -> int:
    from core import inference

    new_id, report = inference.evaluate_reference(args.name, args.dataset, max_eval=args.max_eval)
    print(f"reference {args.name} on {args.dataset}: accuracy {report['accuracy']:.3f}, "
          f"macro-F1 {report['macro_f1']:.3f} (recorded as run {new_id})")
    return 0


def cmd_bench(args) -> int:
    from pathlib import Path

    from core import bench
    from core.config import artifacts_dir

    out = Path(args.out) if args.out else artifacts_dir() / "bench" / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    results = bench.run_benchmark(archs=tuple(args.arch), sizes=tuple(args.sizes), n_images=args.images,
                                  batch_size=args.batch_size, epochs=args.epochs, out=out)
    print()
    print(bench.format_table(results))
    print(f"\nJSON: {out}")
    return 0


def cmd_evolve(args) -> int:
    import logging
    import warnings

    from tqdm import tqdm

    from core import cluster, evolution

    if args.ray:  # each generation's new individuals train in parallel as Ray tasks
        os.environ[cluster.ADDRESS_ENV] = args.ray
    # Notices that repeat for every individual and say nothing about the search.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # tf.function retracing
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")  # fit() on a shuffled tf.data
    bar = tqdm(desc="evolve", unit="step")

    def progress(p) -> None:
        bar.total, bar.n = p.total, p.done
        bar.set_postfix(generation=p.generation, val="-" if p.best is None else f"{p.best:.3f}", refresh=False)
        bar.refresh()

    try:
        if args.resume:
            search_id = evolution.resume_search(args.resume, progress=progress)
        else:
            _apply_quick(args)
            budget = evolution.Budget(epochs=args.eval_epochs, max_train=args.eval_max_train,
                                      max_eval=args.eval_max_eval, long_epochs=args.long_epochs)
            search_id = args.name or evolution.new_search_id(args.strategy, args.mode)
            tqdm.write(f"search {search_id}: resume with `python -m core evolve --resume {search_id}`")
            evolution.run_search(args.dataset, args.population, args.generations, args.strategy, args.mode,
                                 budget=budget, base=_base_from_args(args, "resnet50"),
                                 fixed=evolution.parse_fixed(args.fix), seed=args.seed,
                                 retrain_best=not args.no_final, search_id=search_id, progress=progress)
    finally:
        bar.close()
    state = evolution.search_state(search_id)
    for note in state["notes"]:
        print(f"note: {note}")
    if state["mode"] == "head":
        curves = state["curves"]
        last = curves.sort_values("step").groupby("method").tail(1).set_index("method")
        start = curves[curves.step == 0].groupby("method")["val_accuracy"].first()
        for method, row in last.iterrows():
            print(f"{method:8s} val accuracy {start[method]:.3f} -> {row.val_accuracy:.3f} "
                  f"after {int(row.step)} steps ({int(row.forward_passes)} passes over the training set)")
    else:
        cost, best = state["cost"], state["best"]
        print(f"search {search_id}: {state['status']}, {cost['evaluations']} trainings, "
              f"{cost['cache_hits']} cache hits, {cost['seconds']:.0f} s")
        if best:
            print(f"best genome (val accuracy {best['fitness']:.3f}): "
                  + ", ".join(f"{k}={v}" for k, v in best["genes"].items()))
        if state["final_test_accuracy"] is not None:
            print(f"ga-{search_id}: test accuracy {state['final_test_accuracy']:.3f} (run {state['final_run_id']})")
    return 0 if state["status"] == "finished" else 1


def build_parser() -> argparse.ArgumentParser:
    from core.config import ARCHITECTURES
    from core.presets import CONFIG_IDS

    parser = argparse.ArgumentParser(prog="python -m core", description="Facial emotion recognition comparison lab")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("datasets", help="list datasets under data/ with counts per split and class")
    p.add_argument("names", nargs="*")
    p.set_defaults(fn=cmd_datasets)

    p = sub.add_parser("train", help="train one configuration")
    p.add_argument("--arch", choices=ARCHITECTURES, default="resnet50")
    p.add_argument("--config", choices=CONFIG_IDS, default="imagenet-adam")
    _add_run_options(p)
    _add_distribute_option(p)
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("compare", help="train the five configurations on one or both architectures")
    p.add_argument("--arch", choices=ARCHITECTURES, nargs="+", default=list(ARCHITECTURES))
    p.add_argument("--configs", choices=CONFIG_IDS, nargs="+", default=list(CONFIG_IDS))
    p.add_argument("--group", default="", help="name for this comparison (default: generated)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch output")
    _add_run_options(p)
    p.set_defaults(fn=cmd_compare)

    p = sub.add_parser("evaluate", help="evaluate a stored run's model on another dataset's test split")
    p.add_argument("run_id")
    p.add_argument("--dataset", required=True)
    p.set_defaults(fn=cmd_evaluate)

    p = sub.add_parser("runs", help="list runs in the store")
    p.set_defaults(fn=cmd_runs)

    p = sub.add_parser("fetch-weights", help="download ImageNet weights into the Keras cache (needs internet)")
    p.add_argument("--arch", choices=ARCHITECTURES, nargs="+", default=list(ARCHITECTURES))
    p.set_defaults(fn=cmd_fetch_weights)

    p = sub.add_parser("predict", help="detect faces in photos and print every model's emotion for each")
    p.add_argument("images", nargs="+", help="JPEG, PNG, WebP or BMP files")
    p.add_argument("--runs", nargs="+", default=None, metavar="ID",
                   help="run ids (or unique prefixes) and ref:NAME; default: every finished run and reference")
    p.add_argument("--detector", choices=("haar", "whole", "yunet"), default="haar",
                   help="'whole' treats each image as one cropped face")
    p.add_argument("--yunet-model", default=None, help="path to a YuNet .onnx file (for --detector yunet)")
    p.add_argument("--margin", type=float, default=0.2, help="extra border around each face, as a fraction")
    p.add_argument("--gradcam-dir", default=None, help="save Grad-CAM overlays (PNG) into this folder")
    p.set_defaults(fn=cmd_predict)

    p = sub.add_parser("register-model", help="register a trusted local Keras model as a reference predictor")
    p.add_argument("name")
    p.add_argument("path", help=".keras or .h5 file")
    p.add_argument("--labels", required=True, help="output classes in order, comma-separated")
    p.add_argument("--input-size", type=int, required=True)
    p.add_argument("--channels", type=int, default=1, help="1 (grayscale) or 3 (RGB)")
    p.add_argument("--scaling", default="0-1", help="0-1 | -1-1 | caffe | none")
    p.add_argument("--replace", action="store_true", help="overwrite a registration of the same name")
    p.set_defaults(fn=cmd_register_model)

    p = sub.add_parser("evaluate-reference", help="score a reference model on a dataset's test split")
    p.add_argument("name")
    p.add_argument("--dataset", required=True)
    p.add_argument("--max-eval", type=int, default=None, help="cap on test images")
    p.set_defaults(fn=cmd_evaluate_reference)

    p = sub.add_parser("worker", help="run queued jobs one at a time (started for you by submit and the dashboard)")
    p.add_argument("--max-jobs", type=int, default=None, help="exit after this many jobs")
    p.add_argument("--exit-when-idle", type=float, default=None, metavar="SECONDS",
                   help="exit after this long with nothing to do (default: wait forever)")
    p.add_argument("--slots", type=int, default=1,
                   help="workers allowed on this machine at once (one per accelerator; default 1)")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run jobs as Ray tasks, several at once: on a new local Ray instance, or on the cluster at "
                        "ADDRESS ('auto' or HEAD:6379)")
    p.add_argument("--gpus-per-task", type=float, default=1.0,
                   help="with --ray: GPUs per job, a fraction to share one (default 1)")
    p.add_argument("--cpus-per-task", type=float, default=1.0,
                   help="with --ray: CPUs per job (on a cluster without GPUs, the share each job gets; default 1)")
    p.add_argument("--max-parallel", type=int, default=None,
                   help="with --ray: at most this many jobs at once (default: as many as the cluster has room for)")
    _add_distribute_option(p)
    p.set_defaults(fn=cmd_worker)

    p = sub.add_parser("submit", help="queue training (one job per architecture x configuration) or an evaluation")
    p.add_argument("--arch", choices=ARCHITECTURES, nargs="+", default=["resnet50"])
    p.add_argument("--configs", choices=CONFIG_IDS, nargs="+", default=["imagenet-adam"])
    p.add_argument("--group", default="", help="name for a grid of several jobs (default: generated)")
    p.add_argument("--evaluate", metavar="RUN_ID", help="instead: evaluate this run's model on --dataset")
    p.add_argument("--no-worker", action="store_true", help="only queue; do not start a worker")
    _add_run_options(p)
    p.set_defaults(fn=cmd_submit)

    p = sub.add_parser("jobs", help="list jobs, or show one job with its log tail")
    p.add_argument("id", type=int, nargs="?")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--group", default=None)
    p.set_defaults(fn=cmd_jobs)

    p = sub.add_parser("cancel", help="cancel a job (a running one stops at its next batch)")
    p.add_argument("id", type=int)
    p.add_argument("--force", action="store_true", help="kill the job's process now instead of after a grace period")
    p.set_defaults(fn=cmd_cancel)
    p = sub.add_parser("bench", help="measure training/inference speed: pipeline vs baselines, FLOP/s vs peak")
    p.add_argument("--arch", choices=ARCHITECTURES, nargs="+", default=list(ARCHITECTURES))
    p.add_argument("--sizes", type=int, nargs="+", default=[48, 96])
    p.add_argument("--images", type=int, default=112, help="training images per measurement")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=3, help="epochs per measurement; the first is warm-up")
    p.add_argument("--out", default="", help="JSON path (default: artifacts/bench/bench-<time>.json)")
    p.set_defaults(fn=cmd_bench)

    p = sub.add_parser("evolve", help="genetic search over hyperparameters (or a head's weights) with PyGAD",
                       description="--eval-* set each individual's short budget; --epochs, --max-train and "
                                   "--max-eval set the final retrain of the best genome, as for compare.")
    p.add_argument("--population", type=int, default=8)
    p.add_argument("--generations", type=int, default=5)
    p.add_argument("--strategy", choices=("ga", "random"), default="ga",
                   help="random: the same budget spent on random genomes (a baseline for the GA)")
    p.add_argument("--mode", choices=("hyper", "head"), default="hyper",
                   help="hyper: evolve training settings; head: evolve a dense head's weights vs Adam/RMSprop")
    p.add_argument("--fix", nargs="*", default=[], metavar="GENE=VALUE",
                   help="pin genes, e.g. arch=vgg16 input_size=48 (genes: arch, weights, optimizer, learning_rate, "
                        "batch_size, frozen_blocks, dropout, dense_units, label_smoothing, augment_strength, "
                        "input_size)")
    p.add_argument("--eval-epochs", type=int, default=2, help="epochs per individual (fitness budget)")
    p.add_argument("--eval-max-train", type=int, default=1000, help="training images per individual")
    p.add_argument("--eval-max-eval", type=int, default=300, help="validation images per individual")
    p.add_argument("--long-epochs", type=int, default=0,
                   help="multi-fidelity: retrain the best third of each generation for this many epochs")
    p.add_argument("--no-final", action="store_true", help="skip retraining the best genome with the full budget")
    p.add_argument("--name", default="", help="search id (default: generated)")
    p.add_argument("--resume", default="", metavar="SEARCH_ID", help="continue a stopped or killed search")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="train each generation's individuals in parallel as Ray tasks: on a new local Ray instance, "
                        "or on the cluster at ADDRESS ('auto' or HEAD:6379)")
    _add_run_options(p)
    p.set_defaults(fn=cmd_evolve)
    return parser


def main(argv: list[str] | None = None) -> int:
    from core.config import ConfigError
    from core.datasets import DatasetError
    from core.models import WeightsMissingError
    from core.tracking import RunNotFound

    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (ConfigError, DatasetError, WeightsMissingError, RunNotFound, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to start again, finished runs are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
