"""CPU levers, each timed against the project's default in interleaved windows (``bench --levers``).

``LEVERS`` defines every lever once: its variant's name, its report line and how its variant
is built. The measurement builds the variants from it and writes the report lines from it, so
what was timed and what is printed cannot name different things.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from core.bench import runner, stats
from core.configs import RunConfig
from core.data.pipeline import fixed_parallelism
from core.train import device, models

DEFAULT = "default"  # the project's settings, in this process
WORKER_DEFAULT = "threads_default"  # the same in a worker process: what the worker levers are held against


class Unavailable(Exception):
    """This device cannot run the lever; the message is the report's note."""


@dataclass(frozen=True)
class Pools:
    """A worker process's TensorFlow thread pools (0: TF's default) and environment, fixed when TF starts."""

    intra: int = 0
    inter: int = 0
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Setup:
    """What a lever's variant is built from: the bench's images and settings, the default model and pipeline."""

    arch: str
    size: int
    x: np.ndarray
    y: np.ndarray
    batch_size: int
    num_classes: int
    cfg: RunConfig
    model: Any
    plain: Any  # the default pipeline, shared by every variant that differs only in the model

    @property
    def n(self) -> int:
        """Images per window."""
        return len(self.y)

    @property
    def cores(self) -> int:
        """CPU cores: the intra-op pool size the thread-pool lever tries."""
        return os.cpu_count() or 1

    def words(self) -> dict[str, int]:
        """What a lever's name and setting are filled with."""
        b = self.batch_size
        return {"batch": b, "half": b // 2, "double": b * 2, "cores": self.cores}

    def pipeline(self, **options):
        """The default pipeline with ``options`` changed (``batch_size``, ``autotune``)."""
        kw = {"batch_size": self.batch_size, **options}
        return runner.train_pipeline(self.x, self.y, self.arch, self.size, num_classes=self.num_classes, **kw)

    def window(self, data, model=None) -> Callable[[], float]:
        """An epoch window of ``model`` (default: the default model) over ``data``."""
        return runner.epoch_window(self.model if model is None else model, data, self.n)


@dataclass(frozen=True)
class Lever:
    """One lever. ``name`` and ``setting`` are templates filled with ``Setup.words``.

    Exactly one of ``build`` (a window in this process, held against ``DEFAULT``) and
    ``pools`` (a worker process's settings, held against ``WORKER_DEFAULT``) is set.
    ``optional`` levers may be unavailable (``build`` raises ``Unavailable``); their report
    line then carries the reason as its note.
    """

    name: str
    lever: str
    setting: str
    build: Callable[[Setup], Callable[[], float]] | None = None
    pools: Callable[[Setup], Pools] | None = None
    optional: bool = False

    def __post_init__(self):
        if (self.build is None) == (self.pools is None):
            raise ValueError(f"lever {self.name!r}: expected exactly one of build and pools")


def _half_batch(s: Setup) -> Callable[[], float]:
    return s.window(s.pipeline(batch_size=s.words()["half"]))


def _double_batch(s: Setup) -> Callable[[], float]:
    return s.window(s.pipeline(batch_size=s.words()["double"]))


def _xla(s: Setup) -> Callable[[], float]:
    return s.window(s.plain, runner.compiled(s.cfg, s.num_classes, jit_compile=True))


def _autotune(s: Setup) -> Callable[[], float]:
    return s.window(s.pipeline(autotune=True))


def _bfloat16(s: Setup) -> Callable[[], float]:
    import keras

    if not device.accelerator()["bf16"]:
        raise Unavailable("not measured: this CPU has no native bfloat16 (AVX512-BF16/AMX)")
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        mixed = runner.compiled(s.cfg, s.num_classes)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return s.window(s.plain, mixed)


def _fused_preprocessing(s: Setup) -> Callable[[], float]:
    """The default model behind a layer that resizes and preprocesses uint8 images: no tf.data map."""
    import keras
    import tensorflow as tf

    raw = fixed_parallelism(tf.data.Dataset.from_tensor_slices((s.x[..., None], tf.one_hot(s.y, s.num_classes)))
                            .shuffle(s.n, seed=0, reshuffle_each_iteration=True).batch(s.batch_size)
                            .prefetch(tf.data.AUTOTUNE))
    image = keras.Input(s.x.shape[1:] + (1,), dtype="uint8", name="raw_image")
    prep = keras.layers.Lambda(lambda t: models.to_model_input(t, s.arch, s.size), output_shape=(s.size, s.size, 3),
                               name="fused_preprocess")(image)
    fused = keras.Model(image, s.model(prep))
    fused.compile(optimizer=models.make_optimizer(s.cfg.optimizer), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    models.build_train_state(fused)
    return s.window(raw, fused)


def _channels_first(s: Setup) -> Callable[[], float]:
    """The same backbone in NCHW layout; ``Unavailable`` where this device cannot train one."""
    import keras
    import tensorflow as tf

    spec = models.get_spec(s.arch)
    # Built (and its maps traced) before the switch: Keras' preprocess_input reads the global format.
    data = s.pipeline().map(lambda a, b: (tf.transpose(a, (0, 3, 1, 2)), b))
    old = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        backbone = spec.builder_fn()(include_top=False, weights=None, input_shape=(3, s.size, s.size))
        h = keras.layers.GlobalAveragePooling2D()(backbone.output)
        model = keras.Model(backbone.input, keras.layers.Dense(s.num_classes, activation="softmax")(h))
        model.compile(optimizer=models.make_optimizer(s.cfg.optimizer), loss="categorical_crossentropy",
                      metrics=["accuracy"])
        models.build_train_state(model)
        window = s.window(data, model)
        window()  # fails here where the device has no NCHW kernels
        return window
    except Exception as exc:  # the kernel errors differ by TF version; the message is what is reported
        raise Unavailable(f"not supported here: {str(exc).strip().splitlines()[0][:200]}") from None
    finally:
        keras.config.set_image_data_format(old)


# In report order. In-process variants are timed in this order, then the worker variants.
LEVERS = (
    Lever("batch_{half}", "batch size", "{half} vs {batch}", build=_half_batch),
    Lever("batch_{double}", "batch size", "{double} vs {batch}", build=_double_batch),
    Lever("xla", "XLA JIT (jit_compile=True)", "on vs off", build=_xla),
    Lever("tfdata_autotune", "tf.data autotuning", "on (TF's default) vs off (the project's)", build=_autotune),
    Lever("mixed_bfloat16", "mixed precision (bfloat16 compute)", "mixed_bfloat16 vs float32", build=_bfloat16,
          optional=True),
    Lever("fused_preprocessing", "preprocessing fused into the model", "in the model vs tf.data map",
          build=_fused_preprocessing),
    Lever("threads_intra{cores}_inter1", "thread pools (tf.config.threading)",
          "intra-op {cores}, inter-op 1 vs TF's default", pools=lambda s: Pools(intra=s.cores, inter=1)),
    # TensorFlow reads this when it loads: Eigen's kernels instead of oneDNN's.
    Lever("onednn_off", "oneDNN kernels (TF_ENABLE_ONEDNN_OPTS)", "off (Eigen) vs on (TF's default)",
          pools=lambda s: Pools(env={"TF_ENABLE_ONEDNN_OPTS": "0"})),
    Lever("channels_first", "data layout", "channels_first vs channels_last", build=_channels_first, optional=True),
)


def threaded_window(intra: int, inter: int, arch: str, size: int, x, y, batch_size: int,
                    num_classes: int) -> Callable[[], float]:
    """A training window in a process whose TensorFlow thread pools are ``intra``/``inter`` (0: TF's default).

    Called first thing in a worker process (``stats.WorkerVariant``): the pools are
    fixed when TensorFlow's runtime starts.
    """
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
    model = runner.compiled(runner.bench_config(arch, size, batch_size), num_classes)
    return runner.epoch_window(model, runner.train_pipeline(x, y, arch, size, batch_size, num_classes), len(y))


def _worker(name: str, pools: Pools, s: Setup) -> stats.WorkerVariant:
    args = (pools.intra, pools.inter, s.arch, s.size, s.x, s.y, s.batch_size, s.num_classes)
    return stats.WorkerVariant(name, f"{__name__}:{threaded_window.__name__}", args, env=dict(pools.env))


def bench_levers(arch: str, size: int, x: np.ndarray, y: np.ndarray, batch_size: int, windows: int,
                 num_classes: int, progress: Callable[[str], None] = print) -> dict:
    """Each lever of ``LEVERS`` against the project's default, interleaved: one report line per lever.

    Settings fixed when TensorFlow starts (thread pools, oneDNN) are timed in worker
    processes, each against a default worker; the rest are variants in this process.
    """
    import keras

    cfg = runner.bench_config(arch, size, batch_size)
    keras.backend.clear_session()
    s = Setup(arch, size, x, y, batch_size, num_classes, cfg, runner.compiled(cfg, num_classes),
              runner.train_pipeline(x, y, arch, size, batch_size, num_classes))
    words = s.words()
    names = {lever: lever.name.format(**words) for lever in LEVERS}
    in_process = [lever for lever in LEVERS if lever.build is not None]
    in_workers = [lever for lever in LEVERS if lever.pools is not None]
    variants, notes = [stats.Variant(DEFAULT, s.window(s.plain))], {}
    for lever in in_process:
        try:
            variants.append(stats.Variant(names[lever], lever.build(s)))
        except Unavailable as exc:
            notes[lever] = str(exc)
    workers = [_worker(WORKER_DEFAULT, Pools(), s)] + [_worker(names[lv], lv.pools(s), s) for lv in in_workers]
    try:
        rates = stats.interleave(variants + [w.variant for w in workers], windows, progress=progress)
    finally:
        worker_cpu_s = sum(w.stop() for w in workers)
    ratios = {}
    for lever in in_process + in_workers:
        if names[lever] in rates:
            baseline = DEFAULT if lever.build is not None else WORKER_DEFAULT
            ratios[names[lever]] = stats.paired_ratio(rates[names[lever]], rates[baseline])
    lines = []
    for lever in LEVERS:
        line = {"lever": lever.lever, "setting": lever.setting.format(**words),
                "ratio": None if lever in notes else names[lever]}
        if lever.optional:
            line["note"] = notes.get(lever)
        lines.append(line)
    return {"arch": arch, "size": size, "batch_size": batch_size,
            "figures": {k: stats.summarize(v) for k, v in rates.items()}, "ratios": ratios,
            "levers": lines, "worker_cpu_s": worker_cpu_s}
