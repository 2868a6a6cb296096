"""The bench command: training and inference speed, pipeline vs baselines, FLOP/s vs peak."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from core.cli.common import AddParser


def register(add: AddParser) -> None:
    """Add this group's command to the top-level parser."""
    from core.config import ARCHITECTURES

    p = add("bench", help="measure training/inference speed: pipeline vs baselines, FLOP/s vs peak")
    p.add_argument("--arch", choices=ARCHITECTURES, nargs="+", default=list(ARCHITECTURES))
    p.add_argument("--sizes", type=int, nargs="+", default=[48, 96])
    p.add_argument("--images", type=int, default=None, help="training images per measurement (default 112; 480 with --paper)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=3, help="epochs per measurement; the first is warm-up")
    p.add_argument("--out", default="", help="JSON path (default: artifacts/bench/bench-<time>.json)")
    p.add_argument("--paper", action="store_true",
                   help="instead: throughput at the paper profile's input sizes and settings, and the time per "
                        "FER2013 run it implies (--images defaults to 480 here)")
    p.set_defaults(fn=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmark, print its table and save the JSON."""
    from core import bench
    from core.config import artifacts_dir

    out = Path(args.out) if args.out else artifacts_dir() / "bench" / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    if args.paper:
        results = bench.run_paper_benchmark(archs=tuple(args.arch), n_images=args.images or 480, epochs=args.epochs,
                                            out=out)
        print()
        print(bench.format_paper_table(results))
        print(f"\nJSON: {out}")
        return 0
    results = bench.run_benchmark(archs=tuple(args.arch), sizes=tuple(args.sizes), n_images=args.images or 112,
                                  batch_size=args.batch_size, epochs=args.epochs, out=out)
    print()
    print(bench.format_table(results))
    print(f"\nJSON: {out}")
    return 0
