"""Command-line interface: ``python -m core --help``."""
from __future__ import annotations

import argparse
import os
import sys
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
