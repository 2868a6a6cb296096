"""The scale fixture writes runs the pages and commands read like real ones (no training)."""
from __future__ import annotations

import numpy as np

from core.bench import scale
from core.store import RunStore


def test_fixture_runs_carry_curves_reports_predictions_seeds_and_groups(fresh_artifacts, monkeypatch):
    monkeypatch.setattr(scale, "FAILED_EVERY", 3)  # the third run fails, as about one in 37 does at scale
    monkeypatch.setattr(scale, "DATASET", "synthetic-tiny")  # 21 test faces instead of 700: the same code, faster
    ids = scale.fill_store(3, epochs=2)
    ids += scale.fill_store(4, start=3, epochs=2)  # a second fill continues the sequence
    store = RunStore()
    table = store.list_runs().set_index("run_id")
    assert set(table.index) == set(ids) and table.group.str.startswith("scale-").all()
    assert table.loc[ids[2], "status"] == "FAILED" and table.loc[ids[2], "error"]
    done = table[table.status == "FINISHED"]
    assert len(done) == 3 and done.test_accuracy.between(0, 1).all() and done.seed.notna().all()
    assert len(set(done.repeat_key)) == 3, "different configurations, not repeats"
    rid = ids[0]
    assert store.history(rid).epoch.tolist() == [1, 2]
    report, preds = store.report(rid), store.predictions(rid)
    assert np.asarray(report["confusion_matrix"]).sum() == len(preds["y_true"]) == 21
    assert np.array_equal(preds["y_pred"], preds["probs"].argmax(axis=1))
    assert store.config(rid).data.dataset == "synthetic-tiny"
    # No model file is written, so Predict must not offer the runs (it would fail to load them).
    from core import inference

    assert not [p for p in inference.list_predictors() if p["id"] in ids]
