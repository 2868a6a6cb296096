"""The classroom experiment: three optimizers, one start, one data order, curves per epoch."""
from __future__ import annotations

import numpy as np
import pytest

from core.teaching import classroom
from core.train import features


def test_three_heads_share_their_start_and_data_order_and_finish():
    setup = classroom.Setup(dataset="synthetic-tiny", input_size=32, epochs=3, batch_size=8, max_train=None,
                            max_eval=None)
    exp = classroom.Experiment(setup)
    assert exp.details["weights_used"] == "none" and "not cached" in exp.details["note"]  # offline: said plainly
    yielded = list(exp.epochs())
    assert [int(rows.epoch.max()) for rows in yielded] == [0, 1, 2, 3]  # one yield per finished epoch
    assert [len(rows) for rows in yielded] == [3, 6, 9, 12]  # all three optimizers each epoch

    # The same random start for every optimizer (not the trivially shared all-zero start).
    starts = list(exp.initial_weights.values())
    assert list(exp.initial_weights) == ["adam", "rmsprop", "sgd"]
    assert np.abs(starts[0][0]).sum() > 0
    for other in starts[1:]:
        for a, b in zip(starts[0], other):
            np.testing.assert_array_equal(a, b)
    final = yielded[-1]
    first = final[final.epoch == 0]
    assert first.val_loss.nunique() == 1 and first.loss.nunique() == 1  # identical before any step
    last = final[final.epoch == 3]
    assert last.loss.nunique() == 3  # ...and different optimizers went different ways
    curves = classroom.histories(final)
    assert list(curves) == ["Adam", "RMSprop", "SGD + Nesterov momentum"]
    assert list(curves["Adam"].epoch) == [0, 1, 2, 3]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(curves["Adam"].columns)


def test_bad_setup_names_the_value():
    with pytest.raises(ValueError, match="arch='alexnet'"):
        classroom.Setup(arch="alexnet").validate()
    with pytest.raises(ValueError, match="epochs=0"):
        classroom.Setup(epochs=0).validate()


def test_standardise_uses_training_statistics():
    f = {"x_train": np.array([[1.0, 10.0], [3.0, 30.0]]), "x_val": np.array([[2.0, 20.0]]),
         "y_train": np.array([0, 1]), "y_val": np.array([1])}
    out = features.standardise(f)
    np.testing.assert_allclose(out["x_train"].mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(out["x_val"], [[0.0, 0.0]], atol=1e-6)
