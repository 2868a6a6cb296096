"""Multi-objective search: NSGA-II over validation accuracy and a cost, its front, and retraining a member."""
from __future__ import annotations

import numpy as np
import pytest
from test_evolution import SEED, _base

from core import evolution
from core.configs import ConfigError

# Only the head's width evolves (4 genomes, so later generations are mostly cache hits), and it
# sets the training FLOPs: a deterministic cost, so the front does not depend on this machine's
# timing. At this scale (14 training images, one step) most genomes score chance on validation,
# and whether some head width beats it is luck of the initialisation: the front can be a single
# genome. The test therefore checks the front against a brute-force dominance check of every
# scored genome, whatever its size; tests/analysis/test_pareto.py checks multi-member fronts and ties.
FIXED = {"arch": "vgg16", "weights": "none", "input_size": 32, "frozen_blocks": 0, "augment_strength": 0.0,
         "batch_size": 16, "optimizer": "adam", "learning_rate": 1e-5, "dropout": 0.0, "label_smoothing": 0.0}
BUDGET = evolution.Budget(epochs=1, max_train=14, max_eval=None)


def test_objectives_are_validated():
    payload = {"search_id": "evo-objectives", "dataset": "synthetic-tiny", "fixed": FIXED, "base": _base().to_dict()}
    spec = evolution.SearchSpec.from_payload({**payload, "objectives": "accuracy,train_time"})
    assert spec.objectives == ("accuracy", "train_time") and "objectives accuracy, train_time" in spec.label()
    assert evolution.SearchSpec.from_payload(spec.to_payload()).objectives == spec.objectives
    for bad in ("train_time,accuracy", "accuracy,speed", "accuracy,latency,latency"):
        with pytest.raises(ConfigError, match="objectives: expected 'accuracy' first"):
            evolution.SearchSpec.from_payload({**payload, "objectives": bad})
    with pytest.raises(ConfigError, match="mode hyper"):
        evolution.SearchSpec.from_payload({**payload, "mode": "head", "fixed": {}, "objectives": "accuracy,latency"})


@pytest.mark.slow
def test_two_objective_search_yields_a_front_and_retrains_a_member(fresh_artifacts):
    from core.store import RunStore

    # Two generations (0 and 1) of four individuals.
    sid = evolution.run_search("synthetic-tiny", 4, 1, budget=BUDGET, base=_base(), fixed=FIXED, seed=SEED,
                               retrain_best=False, search_id="evo-multi", objectives=("accuracy", "train_flops"))
    state = evolution.search_state(sid)
    assert state["status"] == "finished" and state["objectives"] == ["accuracy", "train_flops"]
    front, evaluations = state["front"], state["evaluations"]
    assert len(front) >= 1, evaluations[["dense_units", "fitness", "train_flops"]]
    assert list(front.member) == list(range(len(front))) and front.train_flops.is_monotonic_increasing
    # The front is exactly the genomes no other scored genome beats on both validation accuracy and FLOPs.
    points = evaluations[evaluations.status == "FINISHED"][["fitness", "train_flops", "run_id"]]
    for p in points.itertuples():
        beaten = ((points.fitness >= p.fitness) & (points.train_flops <= p.train_flops)
                  & ((points.fitness > p.fitness) | (points.train_flops < p.train_flops))).any()
        assert (p.run_id in set(front.run_id)) == (not beaten)
    # More accuracy on the front costs more FLOPs (cheapest first, so accuracy rises along it).
    assert (np.diff(front.fitness) > 0).all()
    pop = state["population"]
    assert set(pop.generation) == {0, 1} and pop.groupby("generation").on_front.any().all()
    assert pop.train_flops.notna().all()

    with pytest.raises(ConfigError, match="member: expected a front member"):
        evolution.SearchSpec.from_payload({"search_id": sid, "action": "retrain-front", "member": len(front)})
    member = len(front) - 1  # the most accurate member
    assert evolution.retrain_front_member(sid, member) == sid
    state = evolution.search_state(sid)
    row = state["front"].set_index("member").loc[member]
    assert row.retrain_status == "FINISHED" and state["status"] == "finished"
    runs = RunStore().list_runs().set_index("run_id")
    final = runs.loc[row.retrain_run_id]
    assert final.variant == f"ga-{sid}-{member}" and final.kind == "ga-front" and final.status == "FINISHED"
    assert final.test_accuracy == pytest.approx(row.test_accuracy) and final.train_flops > 0
    cfg = RunStore().config(row.retrain_run_id)
    assert cfg.data.max_train is None and cfg.group == sid  # the full budget, in the search's group
    assert set(state["front"].retrain_status) - {"FINISHED"} <= {""}  # only the member asked for
