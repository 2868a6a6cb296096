"""The optimizer playground: the paths are the Keras optimizers' own, and they show what they should."""
from __future__ import annotations

import math

import numpy as np
import pytest

from core.teaching import playground

START = (-0.15, 0.1)


def quadratic_grad(x: float, y: float) -> tuple[float, float]:
    # d/dtheta of 0.5 * (x^2 + 50 y^2): the playground's scale leaves a quadratic's curvature unchanged.
    return x, 50.0 * y


def test_first_three_adam_and_rmsprop_steps_match_the_update_rules():
    s = playground.Settings(learning_rate=0.01)
    # Runs share a compiled loop: an earlier run with other settings must leave nothing behind.
    playground.paths("quadratic", playground.Settings(learning_rate=0.3, beta_1=0.5, rho=0.5), steps=7,
                     start=(0.1, 0.1), optimizers=("rmsprop", "adam"))
    got = playground.paths("quadratic", s, steps=3, start=START, optimizers=("rmsprop", "adam"))
    lr, eps = s.learning_rate, s.epsilon

    # RMSprop (Keras): v <- rho v + (1 - rho) g^2;  theta <- theta - lr g / sqrt(v + eps)
    theta, v = list(START), [0.0, 0.0]
    expected = [tuple(theta)]
    for _ in range(3):
        g = quadratic_grad(*theta)
        for i in range(2):
            v[i] = s.rho * v[i] + (1 - s.rho) * g[i] ** 2
            theta[i] -= lr * g[i] / math.sqrt(v[i] + eps)
        expected.append(tuple(theta))
    np.testing.assert_allclose(got.theta[0], expected, rtol=1e-5, atol=1e-7)

    # Adam (Keras): m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
    # theta <- theta - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
    theta, m, v = list(START), [0.0, 0.0], [0.0, 0.0]
    expected = [tuple(theta)]
    for t in (1, 2, 3):
        g = quadratic_grad(*theta)
        alpha = lr * math.sqrt(1 - s.beta_2 ** t) / (1 - s.beta_1 ** t)
        for i in range(2):
            m[i] = s.beta_1 * m[i] + (1 - s.beta_1) * g[i]
            v[i] = s.beta_2 * v[i] + (1 - s.beta_2) * g[i] ** 2
            theta[i] -= alpha * m[i] / (math.sqrt(v[i]) + eps)
        expected.append(tuple(theta))
    np.testing.assert_allclose(got.theta[1], expected, rtol=1e-5, atol=1e-7)
    # Adam's first step is lr in every coordinate, whatever the gradient's size.
    np.testing.assert_allclose(np.abs(got.theta[1, 1] - got.theta[1, 0]), [lr, lr], rtol=1e-3)


def test_adaptive_methods_beat_sgd_on_the_ill_conditioned_quadratic_with_the_labs_settings():
    got = playground.paths("quadratic", steps=200)
    assert got.settings == playground.Settings() and got.settings.learning_rate == 1e-3
    final = got.final_loss()
    assert final["rmsprop"] < final["plain-sgd"] and final["adam"] < final["plain-sgd"]
    assert got.theta.shape == (5, 201, 2) and got.loss.shape == (5, 201)
    assert np.allclose(got.theta[:, 0], START)  # one start for all
    # The loss curve is the surface's loss along the path.
    srf = playground.SURFACES["quadratic"]
    np.testing.assert_allclose(got.loss[3, 10], srf.loss(*got.theta[3, 10]), rtol=1e-9)


def test_effective_step_size_is_one_rate_for_sgd_and_per_parameter_for_rmsprop():
    got = playground.paths("quadratic", steps=20, optimizers=("plain-sgd", "rmsprop"))
    sgd, rms = got.step_size[0], got.step_size[1]
    np.testing.assert_allclose(sgd, 1e-3, rtol=1e-3)  # |d theta| / |g| = lr on both axes
    # RMSprop divides by each coordinate's gradient scale: the steep y axis gets a much smaller rate.
    assert (rms[:, 0] > 10 * rms[:, 1]).all()


def test_noisy_surface_is_seeded_and_every_optimizer_sees_the_same_batches():
    a = playground.paths("noisy", steps=30, optimizers=("plain-sgd", "plain-sgd"), seed=1)
    b = playground.paths("noisy", steps=30, optimizers=("plain-sgd",), seed=1)
    c = playground.paths("noisy", steps=30, optimizers=("plain-sgd",), seed=2)
    np.testing.assert_array_equal(a.theta[0], a.theta[1])
    np.testing.assert_array_equal(a.theta[0], b.theta[0])
    assert not np.allclose(b.theta, c.theta)
    clean = playground.paths("quadratic", steps=30, optimizers=("plain-sgd",))
    assert not np.allclose(b.theta, clean.theta)


def test_a_learning_rate_too_large_for_the_surface_is_reported_as_divergence():
    got = playground.paths("beale", playground.Settings(learning_rate=0.1), steps=100, optimizers=("plain-sgd", "adam"))
    assert got.diverged() == ["plain-sgd"]  # Adam's step is bounded by its learning rate; SGD's grows with the gradient
    assert np.isfinite(got.loss[1]).all()


def test_grid_and_bad_input():
    xs, ys, z = playground.grid("rosenbrock", n=50)
    assert z.shape == (50, 50) and z.min() >= 0
    with pytest.raises(ValueError, match="Unknown surface 'bowl'.*quadratic"):
        playground.paths("bowl")
    with pytest.raises(ValueError, match="beta_1=1.5"):
        playground.paths("quadratic", playground.Settings(beta_1=1.5))
    with pytest.raises(ValueError, match="Unknown optimizer 'lion'"):
        playground.paths("quadratic", optimizers=("lion",))
