"""Commands about data and runs in the foreground: datasets, train, compare, summary, evaluate, runs, fetch-weights."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from core.cli.common import (
    AddParser,
    add_distribute_option,
    add_profile_options,
    add_run_options,
    add_seeds_option,
    apply_distribute,
    apply_quick,
    configs_from_args,
    fit_verbosity,
    print_result,
)

DATA_LAYOUTS = ("a FER2013 CSV (columns emotion,pixels,Usage) or a folder holding train/<class>/ and test/<class>/ "
                "image folders (see data/README.md)")

if TYPE_CHECKING:
    import pandas as pd

    from core.data.dataset import Dataset


def register(add: AddParser) -> None:
    """Add this group's commands to the top-level parser."""
    from core.configs import ARCHITECTURES
    from core.configs.presets import CONFIG_IDS

    p = add("datasets", help="list datasets under data/ with counts per split and class")
    p.add_argument("names", nargs="*", help="dataset names or paths (default: every dataset under data/)")
    p.set_defaults(fn=cmd_datasets)

    p = add("train", help="train one configuration")
    p.add_argument("--arch", choices=ARCHITECTURES, default="resnet50")
    p.add_argument("--config", choices=CONFIG_IDS, default="imagenet-adam")
    add_run_options(p)
    add_profile_options(p)
    add_distribute_option(p)
    p.set_defaults(fn=cmd_train)

    p = add("compare", help="train the five configurations on one or both architectures")
    p.add_argument("--arch", choices=ARCHITECTURES, nargs="+", default=list(ARCHITECTURES))
    p.add_argument("--configs", choices=CONFIG_IDS, nargs="+", default=list(CONFIG_IDS))
    p.add_argument("--group", default="", help="name for this comparison (default: generated)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch output")
    add_run_options(p)
    add_seeds_option(p)
    add_profile_options(p)
    p.set_defaults(fn=cmd_compare)

    p = add("summary", help="a grid's results across seeds: each configuration's mean with its 95%% CI, and "
                           "paired tests between configurations")
    p.add_argument("group", help="the grid's group (printed by compare and submit; listed by runs)")
    p.add_argument("--metric", choices=("test accuracy", "macro-F1", "validation accuracy"), default="test accuracy",
                   help="what the paired tests compare (default: test accuracy)")
    p.add_argument("--summary", choices=("final epoch", "best validation epoch"), default="final epoch",
                   help="the epoch validation accuracy is read at (default: final epoch)")
    p.add_argument("--csv", metavar="PATH", help="also write the per-configuration table and the per-seed values "
                                                 "(PATH and PATH with -seeds before .csv)")
    p.set_defaults(fn=cmd_summary)

    p = add("evaluate", help="evaluate a stored run's model on another dataset's test split")
    p.add_argument("run_id")
    p.add_argument("--dataset", required=True)
    p.set_defaults(fn=cmd_evaluate)

    p = add("runs", help="list runs in the store, newest first")
    p.add_argument("--limit", type=int, default=100, help="show the newest N runs (default 100; 0 shows every run)")
    p.add_argument("--group", default=None, help="only this grid's runs")
    p.set_defaults(fn=cmd_runs)

    p = add("fetch-weights", help="download ImageNet weights into the Keras cache (needs internet)")
    p.add_argument("--arch", choices=ARCHITECTURES, nargs="+", default=list(ARCHITECTURES))
    p.set_defaults(fn=cmd_fetch_weights)


def cmd_datasets(args: argparse.Namespace) -> int:
    """Counts per split and class; for a name that is no dataset, why not."""
    from core.configs import data_dir
    from core.data import datasets
    from core.data.dataset import DatasetError

    if not args.names:
        table = datasets.describe()
        if not table.empty:
            print(table.to_string(index=False))
        if not any(e["kind"] != "synthetic" for e in datasets.available_datasets()):
            where = data_dir() if data_dir().is_dir() else f"{data_dir()} (the folder does not exist)"
            print(f"\nNo datasets of your own in {where}; put {DATA_LAYOUTS} there, or pass a path.")
        return 0 if not table.empty else 1
    tables, caveats, status = [], [], 0
    for name in args.names:
        try:
            ds = datasets.load_dataset(name)
        except DatasetError as exc:
            print(f"error: {not_a_dataset(name, exc)}", file=sys.stderr)
            status = 1
            continue
        tables.append(counts_table(name, ds))
        caveats += [f"warning: {w}" for w in ds.warnings()]
        caveats += [f"  skipped: {f}" for f in ds.skipped]
    if tables:
        import pandas as pd

        print(pd.concat(tables, ignore_index=True).to_string(index=False))
    if caveats:
        print("\n" + "\n".join(caveats))
    return status


def counts_table(name: str, ds: Dataset) -> pd.DataFrame:
    """One row per class, one column per split, as ``datasets.describe`` lays them out."""
    table = ds.counts().pivot(index="class_name", columns="split", values="count").reset_index()
    table.insert(0, "dataset", name)
    return table


def not_a_dataset(name: str, exc: Exception) -> str:
    """Why ``name`` is no dataset, in the user's terms: a missing path, the wrong kind of file, or the loader's reason."""
    from core.configs import data_dir

    path = Path(name)
    if not path.exists() and not (data_dir() / name).exists() and (os.sep in name or path.suffix):
        return f"{name}: no such file or folder (looked in . and {data_dir()})"
    if path.is_file() and path.suffix.lower() != ".csv":
        return f"{name}: not a CSV file; a dataset is {DATA_LAYOUTS}"
    return str(exc)


def cmd_train(args: argparse.Namespace) -> int:
    """Train one architecture x configuration and print its test result."""
    from core.train import training

    apply_quick(args)
    apply_distribute(args)
    cfg = configs_from_args(args, [args.arch], [args.config])[0]
    print_result(cfg, training.train(cfg, verbose=fit_verbosity()))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Train a grid one run at a time; a configuration that fails or lacks weights does not stop the rest."""
    import uuid

    from tqdm import tqdm

    from core.train import models, training

    apply_quick(args)
    args.group = args.group or f"compare-{uuid.uuid4().hex[:8]}"
    configs = configs_from_args(args, args.arch, args.configs)
    failures = []
    for cfg in tqdm(configs, desc="comparison", unit="run"):
        try:
            models.resolve_weights(cfg.model)
        except models.WeightsMissingError as exc:
            failures.append(f"{cfg.model.arch}/{cfg.variant}: skipped, {exc}")
            tqdm.write(failures[-1])
            continue
        try:
            print_result(cfg, training.train(cfg, verbose=0 if args.quiet else fit_verbosity()))
        except Exception as exc:  # one failing configuration must not sink the grid
            failures.append(f"{cfg.model.arch}/{cfg.variant}: failed: {exc}")
            tqdm.write(failures[-1])
    print(f"Group {args.group}: {len(configs) - len(failures)} of {len(configs)} runs finished.")
    for f in failures:
        print("  " + f)
    if len({c.train.seed for c in configs}) > 1:
        print(f"Across seeds, with paired tests: python -m core summary {args.group}")
    return 0 if len(failures) < len(configs) else 1


def cmd_summary(args: argparse.Namespace) -> int:
    """Print a grid's aggregated table across seeds, the paired tests and their verdicts."""
    from core.analysis import comparison

    s = comparison.group_summary(args.group, summary=args.summary, metric=args.metric)
    per_seed, agg, pairs = s["per_seed"], s["aggregate"], s["pairs"]
    datasets = ", ".join(sorted({name.rsplit(" · ", 1)[-1] for name in agg.configuration}))
    print(f"Group {args.group}: {len(per_seed)} finished runs of {len(agg)} configuration(s); test metrics on the "
          f"test split of {datasets}, validation accuracy at the {args.summary}.\n")
    shown = agg[["configuration", "seeds", "seed list"]].copy()
    for metric, (scale, _) in comparison.METRICS.items():
        shown[metric] = [_with_ci(m, lo, hi, scale) for m, lo, hi in
                         zip(agg[metric], agg[f"{metric} CI low"], agg[f"{metric} CI high"])]
    print("Mean across seeds [95% t-interval]; accuracies in %:")
    print(shown.to_string(index=False))
    if len(pairs):
        print(f"\nPaired by seed on {args.metric} (A - B; paired t-test, p Holm-corrected over {len(pairs)} pair(s)):")
        print(pairs.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        print()
        for line in s["verdicts"]:
            print(line)
    if args.csv:
        from pathlib import Path

        path = Path(args.csv)
        seeds_path = path.with_name(f"{path.stem}-seeds{path.suffix or '.csv'}")
        agg.to_csv(path, index=False)
        per_seed.to_csv(seeds_path, index=False)
        print(f"\nWrote {path} and {seeds_path}.")
    return 0


def _with_ci(mean: float, low: float, high: float, scale: float) -> str:
    if low != low:  # one seed: no interval
        return f"{mean * scale:.3g}"
    return f"{mean * scale:.3g} [{low * scale:.3g}, {high * scale:.3g}]"


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a stored run's model on another dataset's test split, recorded as a new run."""
    from core.train import runs

    new_id, report = runs.evaluate_stored(args.run_id, args.dataset)
    print(f"run {args.run_id} on {args.dataset}: accuracy {report['accuracy']:.3f}, "
          f"macro-F1 {report['macro_f1']:.3f} (recorded as run {new_id})")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """The run store as a table."""
    from core.store import RunStore

    limit = getattr(args, "limit", 100) or None
    # The newest ``limit`` only: what this costs follows the runs shown, not the runs stored.
    runs = RunStore().list_runs(max_results=None if limit is None else limit + 1, group=getattr(args, "group", None))
    if runs.empty:
        print("No runs yet. Try: python -m core compare --dataset synthetic --arch resnet50 --quick")
        return 0
    more = limit is not None and len(runs) > limit
    runs = runs.head(limit) if limit is not None else runs
    cols = ["run_id", "label", "dataset", "status", "epochs_done", "test_accuracy", "test_macro_f1", "group"]
    print(runs[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if more:
        print(f"\nThe {limit} newest runs; --limit 0 lists every run, --group NAME one grid's.")
    return 0


def cmd_fetch_weights(args: argparse.Namespace) -> int:
    """Download (or verify) ImageNet weights for each architecture."""
    from core.train import models

    for arch in args.arch:
        print(f"{arch}: {models.fetch_weights(arch)}")
    return 0
