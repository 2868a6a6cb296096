"""The Evolve page for a multi-objective search: the front per generation and full-budget retrains of members."""
from __future__ import annotations

import pytest
from conftest import array, figure
from test_page_evolve import open_evolve, write_search

from core import evolution, jobs

pytestmark = pytest.mark.usefixtures("no_worker")


def test_front_per_generation_and_retraining_a_member(no_worker):
    state = write_search("evo-front")
    # The same search, minimising training time too: run-a is slow, run-c the cheapest, run-d the most accurate.
    seconds = {"run-a": 50.0, "run-b": 30.0, "run-c": 10.0, "run-d": 45.0, "run-e": 20.0}
    for entry in state["evaluations"].values():
        entry["costs"] = {"train_time_s": seconds[entry["run_id"]]}
    state["objectives"] = ["accuracy", "train_time"]
    evolution.save_state(state)

    # (val accuracy, seconds): a (0.30, 50) b (0.45, 30) c (0.20, 10) d (0.55, 45) e (0.40, 20)
    front = evolution.search_state("evo-front")["front"]
    assert list(front.run_id) == ["run-c", "run-e", "run-b", "run-d"] and list(front.member) == [0, 1, 2, 3]

    at = open_evolve(search="evo-front")
    assert at.select_slider(key="evolve_front_generation").value == 1
    traces = {t["name"]: t for t in figure(at, "evolve_front_chart")["data"]}
    # Generation 1 holds b, d and e: none dominates another.
    assert sorted(traces["Pareto front"]["text"]) == ["slot 0", "slot 1", "slot 2"]
    at.select_slider(key="evolve_front_generation").set_value(0).run()
    traces = {t["name"]: t for t in figure(at, "evolve_front_chart")["data"]}
    # Generation 0: a (0.30, 50 s) is beaten by b (0.45, 30 s).
    assert list(traces["dominated"]["text"]) == ["slot 0"]
    assert array(traces["front (joined)"]["x"]).tolist() == [10.0, 30.0]

    table = next(df.value for df in at.dataframe if "member" in df.value.columns)
    assert list(table.member) == [0, 1, 2, 3] and list(table.train_time_s) == ["10.0 s", "20.0 s", "30.0 s", "45.0 s"]

    at.selectbox(key="evolve_front_member").set_value(3).run()
    at.button(key="evolve_front_retrain").click().run()
    job = jobs.get_job(int(jobs.list_jobs().id.iloc[0]))
    assert job["payload"] == {"search_id": "evo-front", "action": "retrain-front", "member": 3}
    assert job["group"] == "evo-front" and no_worker
    with pytest.raises(jobs.JobError, match="member: expected a front member 0 to 3"):
        jobs.submit_search_action("evo-front", "retrain-front", member=4)
