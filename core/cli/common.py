"""What every command group shares: run options, error text, TensorFlow's start-up output.

Owns the options that describe a training run (``--dataset`` ... ``--quick``) and how they
become configs, the ``--distribute`` switch, the one-line result of a run, the exceptions
a command reports as ``error: ...`` (exit 2) instead of a traceback, and keeping
TensorFlow's log lines off the terminal unless ``--verbose`` is given.
"""
from __future__ import annotations

import argparse
import importlib.abc
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from core.configs.output import stderr_to_devnull

# ``sub.add_parser`` of the top-level parser: each group module registers its commands through it.
AddParser = Callable[..., argparse.ArgumentParser]

VERBOSE_HELP = "show the C++ libraries' own log lines (TensorFlow's oneDNN, CUDA, XLA; OpenCV; FFmpeg) and warnings"
TF_LOG_ENV = "TF_CPP_MIN_LOG_LEVEL"
# OpenCV prints "[ WARN:0@0.03] global loadsave.cpp ..." and "[ERROR:0@0.2] global cap_ffmpeg_impl.hpp ..."
# past Python, and its FFmpeg prints "[h264_v4l2m2m @ 0x...] Could not find a valid device" while a video
# writer tries codecs. Both read these variables when first used (so before cv2 does anything); the
# caller's own values win. -8 is AV_LOG_QUIET. What these lines report reaches the user as our own
# messages (an unreadable image is a skipped file, a codec that cannot open is tried next).
NATIVE_QUIET_ENV: dict[str, str] = {"OPENCV_LOG_LEVEL": "OFF", "OPENCV_FFMPEG_LOGLEVEL": "-8"}


# ---------------------------------------------------------------- run options


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options every training command shares (data, budget, seed, quick profile).

    Budget options left out take the profile's value (``--profile``, default standard;
    ``--quick`` is ``--profile quick``)."""
    from core.configs import presets

    p.add_argument("--dataset", default="synthetic", help="synthetic | synthetic-small | a CSV or folder under data/")
    p.add_argument("--epochs", type=int, default=None, help="(default: the profile's)")
    p.add_argument("--batch-size", type=int, default=None, help="(default: the profile's)")
    p.add_argument("--input-size", type=int, default=None,
                   help="input size in px of every configuration (default: the profile's)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--max-train", type=int, default=None, help="cap on training images (stratified subset)")
    p.add_argument("--max-eval", type=int, default=None, help="cap on validation/test images")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--class-weights", action="store_true", help="balance rare classes (FER2013's disgust)")
    p.add_argument("--quick", action="store_true",
                   help="a few minutes on a laptop CPU: " + ", ".join(f"{k}={v}" for k, v in presets.QUICK.items()))


def add_seeds_option(p: argparse.ArgumentParser) -> None:
    """``--seeds``: repeat every configuration with several training seeds (same data split)."""
    p.add_argument("--seeds", type=int, nargs="+", default=None, metavar="N",
                   help="repeat each configuration with several training seeds: one number N runs N seeds "
                        "from --seed (--seeds 3: 42 43 44), several numbers are the seeds (--seeds 1 2 3); the "
                        "data split stays the same, so repeats differ only in weights, data order, augmentation "
                        "and dropout")


def add_profile_options(p: argparse.ArgumentParser) -> None:
    """``--profile`` and the pretrained backbones' input size, for commands that train the configurations."""
    from core.configs import profiles

    p.add_argument("--profile", choices=profiles.PROFILE_NAMES, default=profiles.DEFAULT_PROFILE,
                   help="; ".join(f"{name}: {p.description}" for name, p in profiles.PROFILES.items()))
    p.add_argument("--pretrained-input-size", type=int, default=None,
                   help="input size in px of ImageNet-initialised configurations (default: --input-size if given, "
                        "else the profile's)")


def apply_quick(args: argparse.Namespace) -> None:
    """Resolve the profile (``--quick`` means ``--profile quick``) and fill the budget options left out
    from it. The input size the user gave, if any, is kept as ``args.given_input_size``."""
    from core.configs import profiles

    if args.quick:
        args.profile = "quick"
    args.profile = getattr(args, "profile", profiles.DEFAULT_PROFILE)
    args.given_input_size = args.input_size
    for k, v in profiles.budget(args.profile).items():
        if getattr(args, k, None) is None and k != "early_stopping":
            setattr(args, k, v)


def configs_from_args(args: argparse.Namespace, archs: list[str], config_ids: list[str]) -> list:
    """One validated ``RunConfig`` per seed x architecture x configuration, from the run options and the profile."""
    from core.configs import presets, profiles

    settings = {k: v for k, v in run_settings(args).items() if k != "input_size"}
    seeds = getattr(args, "seeds", None)
    if seeds:
        seeds = presets.seed_list(seeds, start=settings.pop("seed"))
    return profiles.grid(args.profile, args.dataset, archs, config_ids, input_size=args.given_input_size,
                         pretrained_input_size=getattr(args, "pretrained_input_size", None), seeds=seeds,
                         group=getattr(args, "group", "") or "", **settings)


def run_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The run options as ``core.configs.presets.shared_base`` keywords."""
    return dict(epochs=args.epochs, batch_size=args.batch_size, input_size=args.input_size, max_train=args.max_train,
                max_eval=args.max_eval, augment=not args.no_augment, class_weights=args.class_weights, seed=args.seed)


def fit_verbosity() -> int:
    """Keras ``fit`` verbosity: a live progress bar on a terminal, one line per epoch in a log."""
    return 1 if sys.stdout.isatty() else 2


def print_result(cfg: Any, result: Any) -> None:
    """One line per finished run: test accuracy with its interval, macro-F1, run id."""
    name = f"{cfg.model.arch}/{cfg.variant} seed {cfg.train.seed}"
    if result.report is None:
        print(f"{name}: {result.status} (run {result.run_id})")
        return
    r = result.report
    print(f"{name}: test accuracy {r['accuracy']:.3f} "
          f"[{r['accuracy_ci'][0]:.3f}, {r['accuracy_ci'][1]:.3f}], macro-F1 {r['macro_f1']:.3f} (run {result.run_id})")


def add_distribute_option(p: argparse.ArgumentParser) -> None:
    """``--distribute``, with the modes ``core.device`` accepts."""
    from core.train.device import DISTRIBUTE_MODES

    p.add_argument("--distribute", choices=DISTRIBUTE_MODES, default=None,
                   help="mirrored: one run on every visible GPU (tf.distribute.MirroredStrategy)")


def apply_distribute(args: argparse.Namespace) -> None:
    """Hand ``--distribute`` to training (and to job processes, which inherit the environment)."""
    if args.distribute is not None:
        from core.train.device import DISTRIBUTE_ENV

        os.environ[DISTRIBUTE_ENV] = args.distribute


# ---------------------------------------------------------------- errors


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "bad input", reported as one ``error:`` line rather than a traceback."""
    from core.configs import ConfigError
    from core.data.dataset import DatasetError
    from core.store import StoreUnreachable
    from core.train.models import WeightsMissingError

    # KeyError covers the not-found errors (runs, jobs, searches), which all subclass it.
    return ConfigError, DatasetError, WeightsMissingError, StoreUnreachable, KeyError


def error_text(exc: BaseException) -> str:
    """The message of ``exc``; a KeyError's str() is the repr of its argument, quotes and all."""
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        return exc.args[0]
    return str(exc)


# ---------------------------------------------------------------- TensorFlow's output


class _LoaderWithoutStderr(importlib.abc.Loader):
    """Runs another loader with file descriptor 2 pointed at /dev/null."""

    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def __getattr__(self, name: str):  # get_data, is_package, ...: whatever else the real loader offers
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with stderr_to_devnull():
            self.loader.exec_module(module)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as usual, but loads it with stderr closed."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # the search below must not find this finder again
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _LoaderWithoutStderr(spec.loader)
        return spec


@contextmanager
def tensorflow_output(verbose: bool) -> Iterator[None]:
    """Keep TensorFlow's, OpenCV's and FFmpeg's log lines off the terminal for a command, unless ``verbose``.

    OpenCV and FFmpeg are quietened by ``NATIVE_QUIET_ENV`` (job processes and workers this
    command starts inherit it); TensorFlow as follows.

    TF_CPP_MIN_LOG_LEVEL=3 silences TensorFlow's C++ logging once it is initialised, but
    in TF 2.21 the lines printed while its libraries load (oneDNN, CUDA drivers) ignore it,
    so the import itself runs with stderr closed. An import that fails still raises as
    usual. oneDNN itself stays as configured (TF_ENABLE_ONEDNN_OPTS is left alone): only
    the notice goes. Everything changed here is restored on exit.
    """
    if verbose:
        yield
        return
    saved_env = os.environ.get(TF_LOG_ENV)
    os.environ[TF_LOG_ENV] = "3"
    native = {k: v for k, v in NATIVE_QUIET_ENV.items() if k not in os.environ}
    os.environ.update(native)
    saved_cv2_level = None
    if "cv2" in sys.modules:  # imported already (a test, an embedding program): its level is set in place
        cv2_logging = sys.modules["cv2"].utils.logging
        saved_cv2_level = cv2_logging.getLogLevel()
        cv2_logging.setLogLevel(cv2_logging.LOG_LEVEL_SILENT)
    loggers = [logging.getLogger(name) for name in ("tensorflow", "absl")]
    saved_levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)  # retracing and deprecation notices, via Python logging
    finder = None
    if "tensorflow" not in sys.modules:
        finder = _QuietTensorFlowImport()
        sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        if finder is not None and finder in sys.meta_path:
            sys.meta_path.remove(finder)
        for lg, level in zip(loggers, saved_levels):
            lg.setLevel(level)
        for k in native:
            os.environ.pop(k, None)
        if saved_cv2_level is not None:
            sys.modules["cv2"].utils.logging.setLogLevel(saved_cv2_level)
        if saved_env is None:
            os.environ.pop(TF_LOG_ENV, None)
        else:
            os.environ[TF_LOG_ENV] = saved_env
