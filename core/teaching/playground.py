"""The optimizer playground: 2-D loss surfaces and the paths the lab's optimizers take on them.

Every path is computed by the real ``keras.optimizers`` classes applied to a two-element
variable, so what a class sees is what the lab's training does, not a re-implementation.
All the optimizers step together inside one ``tf.function`` (a graph-mode loop) whose
hyperparameters are variables, so it is compiled once per surface and set of optimizers and
then reused: moving a slider re-runs a compiled loop instead of making 1000 eager Keras calls.

Surfaces are written with arithmetic only, so one definition serves NumPy (the contour
grid) and TensorFlow (the gradients). Each is a textbook function ``f`` in coordinates
``u`` scaled to ``theta = scale * u`` with loss ``scale**2 * f(theta / scale)``: that keeps
the curvature (what plain SGD's stability depends on) and shrinks the distances, so the
lab's own learning rate (1e-3) crosses the picture in a couple of hundred steps.
TensorFlow is imported only when a path is computed.
"""
from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from core.configs.choices import OPTIMIZERS as OPTIMIZER_SPECS
from core.configs.presets import SCRATCH_LR


def _quadratic(u, v):
    # Curvatures 1 and 50: one learning rate cannot suit both directions.
    return 0.5 * (u * u + 50.0 * v * v)


def _rosenbrock(u, v):
    return (1.0 - u) ** 2 + 100.0 * (v - u * u) ** 2


def _saddle(u, v):
    # A saddle at the origin with minima at v = +-1: starting on the ridge shows who escapes.
    return 0.5 * u * u + 0.25 * v ** 4 - 0.5 * v * v


def _beale(u, v):
    return (1.5 - u + u * v) ** 2 + (2.25 - u + u * v * v) ** 2 + (2.625 - u + u * v ** 3) ** 2


@dataclass(frozen=True)
class Surface:
    """A 2-D loss surface in the playground's coordinates, with where paths start by default."""

    title: str
    f: Callable
    scale: float
    start: tuple[float, float]
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    minimum: tuple[float, float] | None
    lesson: str
    noise: float = 0.0  # std of the per-step shift of the minimum (mini-batch noise), in theta units

    def loss(self, x, y):
        """Loss at ``(x, y)``; works on floats, NumPy arrays and TensorFlow tensors."""
        s = self.scale
        return s * s * self.f(x / s, y / s)


SURFACES: dict[str, Surface] = {
    "quadratic": Surface(
        "Ill-conditioned quadratic", _quadratic, 0.1, (-0.15, 0.1), (-0.2, 0.2), (-0.12, 0.12), (0.0, 0.0),
        "Curvature is 50 times larger along y than along x. SGD's single learning rate is small for x and "
        "large for y; RMSprop and Adam divide each coordinate's step by its own gradient scale."),
    "rosenbrock": Surface(
        "Rosenbrock's valley", _rosenbrock, 0.1, (-0.12, 0.15), (-0.2, 0.2), (-0.05, 0.3), (0.1, 0.1),
        "The minimum lies at the end of a long, curved, flat valley: reaching the valley is easy, "
        "following it is slow. Momentum builds speed along it."),
    "saddle": Surface(
        "Saddle point", _saddle, 0.1, (-0.15, 0.001), (-0.2, 0.2), (-0.15, 0.15), None,
        "The start sits almost on the ridge of a saddle. The gradient across the ridge is tiny: SGD drifts "
        "for a long time, adaptive methods rescale the tiny gradient and escape quickly."),
    "beale": Surface(
        "Beale's function", _beale, 0.1, (0.05, 0.14), (-0.45, 0.45), (-0.45, 0.45), (0.3, 0.05),
        "Flat plateaus next to steep walls: gradient magnitudes span orders of magnitude."),
    "noisy": Surface(
        "Noisy quadratic (mini-batches)", _quadratic, 0.1, (-0.15, 0.1), (-0.2, 0.2), (-0.12, 0.12), (0.0, 0.0),
        "The ill-conditioned quadratic, but each step sees a mini-batch whose minimum is shifted at random "
        "(seeded). The loss shown is the full-data loss.", noise=0.01),
}

# Every optimizer of the lab's registry, plain SGD first: the page builds up from it.
OPTIMIZERS: tuple[str, ...] = tuple(OPTIMIZER_SPECS)


@dataclass(frozen=True)
class Settings:
    """Hyperparameters of the five optimizers.

    Defaults are the lab's: the five configurations train from scratch at 1e-3 (``SCRATCH_LR``);
    ``core.train.models.make_optimizer`` gives SGD momentum 0.9 with Nesterov and AdamW a weight decay
    of 1e-4; betas and rho are Keras' defaults, which the lab keeps.
    """

    learning_rate: float = SCRATCH_LR
    momentum: float = 0.9
    nesterov: bool = True
    rho: float = 0.9
    beta_1: float = 0.9
    beta_2: float = 0.999
    weight_decay: float = 1e-4
    epsilon: float = 1e-7

    def validate(self) -> Settings:
        checks = {"learning_rate": 0 < self.learning_rate <= 10, "momentum": 0 <= self.momentum < 1,
                  "rho": 0 <= self.rho < 1, "beta_1": 0 <= self.beta_1 < 1, "beta_2": 0 <= self.beta_2 < 1,
                  "weight_decay": self.weight_decay >= 0, "epsilon": self.epsilon > 0}
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r} is out of range: learning_rate must be in (0, 10], "
                                 "momentum, rho and betas in [0, 1), weight_decay >= 0, epsilon > 0")
        return self


def make_optimizer(name: str, settings: Settings):
    """The Keras optimizer ``name`` (one of ``OPTIMIZERS``) with the ``settings`` it has."""
    if name not in OPTIMIZER_SPECS:
        raise ValueError(f"Unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}")
    spec = OPTIMIZER_SPECS[name]
    return spec.build(settings.learning_rate, **{k: getattr(settings, k) for k in spec.options})


@dataclass
class Paths:
    """Where each optimizer went: row ``k`` of every array belongs to ``names[k]``.

    ``theta`` (k, steps+1, 2) and ``loss`` (k, steps+1) include the start; ``grad`` (k, steps, 2) is
    the gradient each step used (noisy on the noisy surface); ``step_size`` (k, steps, 2) is the
    effective per-coordinate learning rate ``|theta[t+1] - theta[t]| / |grad[t]|`` (NaN where the
    gradient is zero). ``seconds`` is the wall time of the computation.
    """

    surface: str
    names: list[str]
    theta: np.ndarray
    loss: np.ndarray
    grad: np.ndarray
    step_size: np.ndarray
    seconds: float
    settings: Settings = field(default_factory=Settings)

    def final_loss(self) -> dict[str, float]:
        return {n: float(v) for n, v in zip(self.names, self.loss[:, -1])}

    def diverged(self) -> list[str]:
        """Optimizers whose path ran off to infinity (their learning rate is too large for this surface)."""
        return [n for n, t in zip(self.names, self.theta) if not np.isfinite(t).all()]


def surface(name: str) -> Surface:
    """The surface ``name`` (one of ``SURFACES``), or a ValueError naming the choices."""
    if name not in SURFACES:
        raise ValueError(f"Unknown surface {name!r}; expected one of {', '.join(SURFACES)}")
    return SURFACES[name]


def grid(name: str, n: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The loss of surface ``name`` on an ``n`` x ``n`` grid over its range: xs (n,), ys (n,), z (n, n)
    with ``z[i, j]`` the loss at ``(xs[j], ys[i])``."""
    srf = surface(name)
    xs, ys = np.linspace(*srf.x_range, n), np.linspace(*srf.y_range, n)
    gx, gy = np.meshgrid(xs, ys)
    return xs, ys, srf.loss(gx, gy)


# Hyperparameters held in variables, so one compiled loop serves every slider position. SGD's
# momentum stays a Python number: Keras' SGD requires a float and decides at build time whether
# it keeps a momentum slot, so a new momentum compiles a new loop.
_TENSOR_SETTINGS = ("rho", "beta_1", "beta_2", "weight_decay", "epsilon")


class _Loop:
    """The compiled loop of one surface and one list of optimizers, reused across calls."""

    def __init__(self, name: str, names: tuple[str, ...], momentum: float, nesterov: bool):
        import tensorflow as tf

        srf = surface(name)
        self.hyper = {k: tf.Variable(getattr(Settings(), k), dtype=tf.float32, trainable=False)
                      for k in _TENSOR_SETTINGS}
        settings = replace(Settings(momentum=momentum, nesterov=nesterov), **self.hyper)
        self.opts = [make_optimizer(n, settings) for n in names]
        self.variables = [tf.Variable(tf.zeros(2), name=f"theta_{n}") for n in names]
        for opt, var in zip(self.opts, self.variables):
            opt.build([var])
        self.lock = threading.Lock()  # dashboard sessions share loops; one run at a time per loop

        def step(i, thetas, grads, shifts):
            step_grads = []
            for opt, var in zip(self.opts, self.variables):
                with tf.GradientTape() as tape:
                    # The mini-batch's loss: the surface with its minimum moved by this step's shift.
                    loss = srf.loss(var[0] - shifts[i, 0], var[1] - shifts[i, 1])
                g = tape.gradient(loss, var)
                opt.apply_gradients([(g, var)])
                step_grads.append(g)
            # tf.function orders reads after the updates to the same variables.
            moved = tf.stack([v.read_value() for v in self.variables])
            return i + 1, thetas.write(i + 1, moved), grads.write(i, tf.stack(step_grads)), shifts

        # autograph=False: converting Keras' optimizer code costs more than the whole loop runs.
        @tf.function(autograph=False, input_signature=[tf.TensorSpec([None, 2], tf.float32)])
        def run(shifts):
            steps = tf.shape(shifts)[0]
            thetas = tf.TensorArray(tf.float32, size=steps + 1).write(
                0, tf.stack([v.read_value() for v in self.variables]))
            grads = tf.TensorArray(tf.float32, size=steps)
            _, thetas, grads, _ = tf.while_loop(lambda i, *_: i < steps, step,
                                                (tf.constant(0), thetas, grads, shifts))
            return thetas.stack(), grads.stack()

        self.run = run

    def __call__(self, settings: Settings, start: tuple[float, float], shifts: np.ndarray):
        with self.lock:
            for opt, var in zip(self.opts, self.variables):
                for v in opt.variables:  # a fresh optimizer: step count and slots back to zero
                    v.assign(np.zeros(v.shape, v.dtype))
                opt.learning_rate = settings.learning_rate
                var.assign(start)
            for k, v in self.hyper.items():
                v.assign(getattr(settings, k))
            return [a.numpy() for a in self.run(shifts.astype(np.float32))]


@functools.lru_cache(maxsize=32)
def _loop(name: str, names: tuple[str, ...], momentum: float, nesterov: bool) -> _Loop:
    return _Loop(name, names, momentum, nesterov)


def paths(name: str, settings: Settings | None = None, steps: int = 200, start: Sequence[float] | None = None,
          optimizers: Sequence[str] = OPTIMIZERS, seed: int = 0) -> Paths:
    """Run ``optimizers`` for ``steps`` steps on surface ``name`` from ``start`` (default: the surface's).

    All optimizers start from the same point and, on the noisy surface, see the same seeded
    sequence of mini-batch shifts. The first call for a surface, list of optimizers and SGD
    momentum compiles a loop; later calls (any learning rate, betas, rho, decay, start, steps)
    reuse it.
    """
    srf = surface(name)
    settings = (settings or Settings()).validate()
    if not 1 <= steps <= 10_000:
        raise ValueError(f"steps={steps!r}: expected an integer in [1, 10000]")
    start = tuple(float(v) for v in (srf.start if start is None else start))
    if len(start) != 2 or not np.all(np.isfinite(start)):
        raise ValueError(f"start={start!r}: expected two finite numbers (x, y)")
    names = tuple(optimizers)
    for n in names:
        if n not in OPTIMIZERS:
            raise ValueError(f"Unknown optimizer {n!r}; expected one of {', '.join(OPTIMIZERS)}")
    t0 = time.perf_counter()
    shifts = np.random.default_rng(seed).normal(0.0, srf.noise, (steps, 2))
    theta, grad = _loop(name, names, settings.momentum, settings.nesterov)(settings, start, shifts)
    theta, grad = (np.swapaxes(a.astype(np.float64), 0, 1) for a in (theta, grad))
    seconds = time.perf_counter() - t0
    # A learning rate too large for the surface sends a path to infinity: NaN from there on, not a warning.
    with np.errstate(all="ignore"):
        step_size = np.where(np.abs(grad) > 0, np.abs(np.diff(theta, axis=1)) / np.abs(grad), np.nan)
        loss = srf.loss(theta[..., 0], theta[..., 1])
    return Paths(name, list(names), theta, loss, grad, step_size, seconds, settings)
