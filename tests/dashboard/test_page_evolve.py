"""Evolve page and the 'evolve' job kind, through the real entrypoint, queue and search states.

The detached worker is replaced by a recorder (as in tests/dashboard/test_pages_overview_train.py);
one test runs the real worker in this process on the smallest search there is.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from conftest import array, figure, texts
from streamlit.testing.v1 import AppTest

from core import evolution, jobs

pytestmark = pytest.mark.usefixtures("no_worker")

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
# Cheap individuals (see tests/evolution/test_evolution.py): VGG16 at 32x32, random weights, nothing frozen.
FIXED = {"arch": "vgg16", "weights": "none", "input_size": 32, "frozen_blocks": 0, "dense_units": 0,
         "augment_strength": 0.5, "batch_size": 16, "dropout": 0.2, "label_smoothing": 0.0}
TINY_BUDGET = {"epochs": 1, "max_train": 14, "max_eval": 14, "long_epochs": 0}


def open_evolve(**query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at = at.switch_page("views/evolve.py").run()
    assert not at.exception, at.exception
    return at




def traces(fig: dict) -> dict[str, np.ndarray]:
    return {t["name"]: array(t["y"]) for t in fig["data"]}


def tiny_base():
    from core.configs import presets

    base = presets.base_config("vgg16", "synthetic-tiny", epochs=1, batch_size=8, seed=3)
    return replace(base, model=replace(base.model, input_size=32))


def write_search(sid: str = "evo-saved", *, status: str = "finished", generations: list | None = None) -> dict:
    """A search state in evolution's own format, saved with its own writer: optimizer and learning rate free."""
    space, notes = evolution.resolve_space(FIXED)
    names = [g.name for g in space]
    opt, lr = names.index("optimizer"), names.index("learning_rate")

    def genome(o: int, r: int) -> list[int]:
        g = [0] * len(space)
        g[opt], g[lr] = o, r
        return g

    # (genome, fitness, run id) per slot; generation 1 keeps generation 0's best (a cache hit).
    gens = generations if generations is not None else [
        [(genome(0, 2), 0.30, "run-a"), (genome(1, 4), 0.45, "run-b"), (genome(2, 1), 0.20, "run-c")],
        [(genome(1, 4), 0.45, "run-b"), (genome(1, 2), 0.55, "run-d"), (genome(3, 4), 0.40, "run-e")],
    ]
    evaluations, history = {}, []
    for g, slots in enumerate(gens):
        cached = []
        for slot, (gn, fit, run_id) in enumerate(slots):
            key = f"{evolution.genome_key(gn)}@short"
            cached.append(key in evaluations)
            evaluations.setdefault(key, {"genome": gn, "fidelity": "short", "generation": g, "slot": slot,
                                         "run_id": run_id, "status": "FINISHED", "fitness": fit, "seconds": 10.0})
        fits = [f for _, f, _ in slots]
        history.append({"generation": g, "population": [gn for gn, _, _ in slots], "fitness": fits,
                        "cached": cached, "run_ids": [r for _, _, r in slots], "best": max(fits),
                        "mean": float(np.mean(fits)), "worst": min(fits)})
    state = {
        "search_id": sid, "mode": "hyper", "strategy": "ga", "dataset": "synthetic-tiny", "population": 3,
        "generations": 1, "seed": 3, "budget": TINY_BUDGET, "fixed": FIXED, "base": tiny_base().to_dict(),
        "retrain_best": False, "space": evolution.space_to_json(space), "notes": notes, "status": status,
        "error": "", "generation": len(history) - 1, "history": history, "evaluations": evaluations,
        "final": None, "head": None, "created": evolution.timestamp(), "updated": evolution.timestamp(),
    }
    evolution.save_state(state)
    return state


def test_empty_state_offers_the_form_with_an_estimate():
    at = open_evolve()
    page = texts(at)
    assert "No searches yet" in page
    assert "Estimated time on this machine: at most" in page and "up to 48 short trainings" in page
    assert "Evolving weights" not in page and "so weights stays `none`" in page  # no ImageNet weights offline
    assert "frozen_blocks" not in page.split("Evolving ")[1].split(":")[0]
    assert "Freezing only makes sense for pretrained weights, so frozen_blocks stays 0" in page
    assert not at.get("plotly_chart")


def test_a_pinned_freeze_of_random_weights_is_refused_before_submitting():
    at = open_evolve()
    at.multiselect(key="evolve_fixed").set_value(["arch", "input_size", "frozen_blocks"]).run()
    at.selectbox(key="evolve_fix_frozen_blocks").set_value(2).run()
    assert any(w.value.startswith("frozen_blocks=2 freezes randomly initialised blocks") for w in at.warning)
    assert at.button(key="evolve_start").disabled


@pytest.mark.slow
def test_submitting_queues_an_evolve_job_and_shows_it_queued(no_worker):
    at = open_evolve()
    at.selectbox(key="evolve_dataset").set_value("synthetic-tiny")
    at.number_input(key="evolve_population").set_value(4)
    at.number_input(key="evolve_generations").set_value(2)
    at.number_input(key="evolve_epochs").set_value(1)
    at.number_input(key="evolve_max_train").set_value(200)
    at.number_input(key="evolve_final_epochs").set_value(3)
    at.multiselect(key="evolve_fixed").set_value(["arch", "input_size", "optimizer"])
    at.run()
    at.selectbox(key="evolve_fix_arch").set_value("vgg16")
    at.selectbox(key="evolve_fix_input_size").set_value(32)
    at.selectbox(key="evolve_fix_optimizer").set_value("rmsprop").run()
    assert "4 individuals × (2 generations + the initial population) = up to 12 short trainings" in texts(at)
    at.button(key="evolve_start").click().run()
    assert not at.exception, at.exception

    (job,) = jobs.list_jobs().itertuples()
    payload = jobs.get_job(job.id)["payload"]
    sid = payload["search_id"]
    assert job.kind == "evolve" and job.group == sid and sid.startswith("evo-")
    assert {k: payload[k] for k in ("action", "dataset", "strategy", "mode", "population", "generations", "seed",
                                    "retrain_best", "fixed")} == {
        "action": "start", "dataset": "synthetic-tiny", "strategy": "ga", "mode": "hyper", "population": 4,
        "generations": 2, "seed": 42, "retrain_best": True,
        "fixed": {"arch": "vgg16", "input_size": 32, "optimizer": "rmsprop"}}
    assert payload["budget"] == {"epochs": 1, "max_train": 200, "max_eval": 300, "long_epochs": 0}
    assert payload["base"]["train"]["epochs"] == 3 and payload["base"]["data"]["max_train"] is None  # full budget
    assert no_worker  # a worker was asked for
    assert f"Queued search **{sid}**" in texts(at)
    assert at.selectbox(key="evolve_search").value == sid
    assert "Queued: the worker starts this search" in texts(at)
    # The queued job can be cancelled from the page.
    at.button(key=f"evolve_cancel_{job.id}").click().run()
    assert jobs.get_job(job.id)["state"] == "cancelled"
    assert "Its job was cancelled before the search started" in texts(at)


@pytest.mark.slow
def test_a_saved_search_shows_fitness_population_genes_and_offers_a_retrain(no_worker):
    state = write_search()
    at = open_evolve(search="evo-saved")
    assert at.selectbox(key="evolve_search").value == "evo-saved"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Populations scored"] == "2 / 2" and metrics["Best fitness"] == "0.550"
    assert metrics["Trainings"] == "5" and metrics["Cache hits"] == "1"

    lines = traces(figure(at, "evolve_fitness"))
    np.testing.assert_allclose(lines["best"], [0.45, 0.55])
    np.testing.assert_allclose(lines["worst"], [0.20, 0.40])
    np.testing.assert_allclose(lines["mean"], [np.mean([0.30, 0.45, 0.20]), np.mean([0.45, 0.55, 0.40])])

    pop = next(df.value for df in at.dataframe if "slot" in df.value.columns)
    assert len(pop) == 6 and list(pop.columns) == ["generation", "slot", "optimizer", "learning_rate", "fitness",
                                                   "cached", "run_id"]
    top = pop.iloc[0]  # newest generation, fittest first
    assert (top.generation, top.optimizer, top.learning_rate, top.fitness, top.run_id) == \
        (1, "rmsprop", "0.0001", 0.55, "run-d")
    assert pop.cached.sum() == 1

    dims = figure(at, "evolve_parcoords")["data"][0]["dimensions"]
    assert [d["label"] for d in dims] == ["optimizer", "learning_rate", "fitness"]
    assert sorted(array(dims[-1]["values"])) == pytest.approx([0.20, 0.30, 0.40, 0.45, 0.55])  # one per genome
    assert dims[0]["ticktext"] == ["adam", "rmsprop", "sgd", "adamw"]  # search-space order, not alphabetical

    best = next(df.value for df in at.dataframe if "optimizer" in df.value.columns and len(df.value) == 1)
    assert best.optimizer.iloc[0] == "rmsprop" and best.learning_rate.iloc[0] == "0.0001"
    assert "No finished runs on synthetic-tiny" in texts(at)  # nothing to compare with yet

    # Started with retrain_best=False: the page offers the retrain, which queues a 'retrain' job.
    at.button(key="evolve_retrain_best").click().run()
    job = jobs.get_job(int(jobs.list_jobs().id.iloc[0]))
    assert job["kind"] == "evolve" and job["payload"] == {"search_id": "evo-saved", "action": "retrain"}
    assert job["group"] == "evo-saved" and no_worker
    assert "retraining the best genome" in texts(at) and state["final"] is None


def test_prefill_a_random_search_with_the_same_budget():
    write_search()
    at = open_evolve(search="evo-saved")
    assert "No random search (baseline) with the same dataset" in texts(at)
    at.button(key="evolve_prefill").click().run()
    assert not at.exception, at.exception
    assert at.radio(key="evolve_strategy").value == "random"
    assert at.selectbox(key="evolve_dataset").value == "synthetic-tiny"
    assert (at.number_input(key="evolve_population").value, at.number_input(key="evolve_generations").value,
            at.number_input(key="evolve_max_train").value, at.number_input(key="evolve_seed").value) == (3, 1, 14, 3)
    assert set(at.multiselect(key="evolve_fixed").value) == set(FIXED)
    assert at.selectbox(key="evolve_fix_input_size").value == 32


@pytest.mark.slow
def test_generation_zero_in_progress_and_a_failed_search():
    write_search("evo-young", status="running", generations=[])
    write_search("evo-broken", status="failed")
    broken = evolution.load_state("evo-broken")
    broken["error"] = "RuntimeError: every individual of generation 1 failed; last error: out of memory"
    evolution.save_state(broken)

    at = open_evolve(search="evo-young")
    assert "Generation 0 is being scored: 0 of 3 individuals trained so far" in texts(at)
    assert "no queued job runs it" in texts(at)  # running, but no job: killed, or a command-line search
    assert not at.get("plotly_chart")

    at = open_evolve(search="evo-broken")
    assert any("The search failed: RuntimeError: every individual" in e.value for e in at.error)
    at.button(key="evolve_resume").click().run()
    job = jobs.get_job(int(jobs.list_jobs().id.iloc[0]))
    assert job["payload"] == {"search_id": "evo-broken", "action": "resume"}


def test_evolve_payload_is_checked_at_submit():
    with pytest.raises(jobs.JobError, match="population"):
        jobs.submit_evolve("synthetic-tiny", population=1)
    with pytest.raises(jobs.JobError, match="input_size=16"):
        jobs.submit_evolve("synthetic-tiny", fixed={"input_size": 16})
    with pytest.raises(jobs.JobError, match="not cached"):  # no ImageNet weights on this machine
        jobs.submit_evolve("synthetic-tiny", fixed={"arch": "vgg16", "weights": "imagenet"})
    with pytest.raises(jobs.JobError, match="mode head"):
        jobs.submit_evolve("synthetic-tiny", mode="head", strategy="random")
    with pytest.raises(jobs.JobError, match="search_id"):
        jobs.submit("evolve", {"search_id": "../elsewhere", "action": "resume"})
    with pytest.raises(jobs.JobError, match="no saved search"):
        jobs.submit_search_action("evo-nothing", "retrain")
    write_search("evo-taken")
    with pytest.raises(jobs.JobError, match="already exists"):
        jobs.submit_evolve("synthetic-tiny", search_id="evo-taken")
    assert jobs.list_jobs().empty


@pytest.mark.slow
def test_worker_runs_a_search_then_retrains_its_best_genome():
    """The real path: queue -> worker -> job process -> run_search; then the page's retrain path."""
    fixed = {g.name: g.choices[0] for g in evolution.GENE_SPACE} | FIXED  # one genome: one training
    job_id, sid = jobs.submit_evolve("synthetic-tiny", population=2, generations=1, budget=TINY_BUDGET,
                                     fixed=fixed, seed=3, retrain_best=False, base=tiny_base())
    jobs.run_worker(max_jobs=1, exit_when_idle=0, echo=lambda line: None)
    job = jobs.get_job(job_id)
    assert job["state"] == "done", (job["error"], job["log_tail"])
    state = evolution.search_state(sid)
    assert state["status"] == "finished" and list(state["generations"].generation) == [0, 1]
    assert job["result"]["search_id"] == sid and job["result"]["evaluations"] == 1
    assert job["result"]["cache_hits"] == 3
    # Progress as the page reads it: both generations (0 and 1) of two slots scored.
    assert (job["epoch"], job["epochs"], job["batches"]) == (2, 2, 2)
    assert job["metrics"]["best_fitness"] == pytest.approx(state["best"]["fitness"])
    assert job["metrics"]["mean_fitness"] == pytest.approx(state["generations"]["mean"].iloc[-1])

    at = open_evolve(search=sid)
    lines = traces(figure(at, "evolve_fitness"))
    np.testing.assert_allclose(lines["best"], state["generations"]["best"])
    assert "Every gene is fixed" in texts(at)
    at.button(key="evolve_retrain_best").click().run()
    jobs.run_worker(max_jobs=1, exit_when_idle=0, echo=lambda line: None)
    retrain = jobs.get_job(int(jobs.list_jobs().id.iloc[0]))
    assert retrain["state"] == "done", (retrain["error"], retrain["log_tail"])
    state = evolution.search_state(sid)
    assert state["status"] == "finished" and state["final_test_accuracy"] is not None
    assert retrain["result"]["final_run_id"] == state["final_run_id"]

    st.cache_data.clear()
    at = open_evolve(search=sid)
    assert f"Retrained with the full budget as **ga-{sid}**" in texts(at)
    bars = figure(at, "evolve_compare_bars")["data"][0]
    assert list(bars["y"]) == [f"ga-{sid} (this search)"]
    assert array(bars["x"])[0] == pytest.approx(state["final_test_accuracy"])
    # One click shows it on Compare, selected, beside whatever the comparison listed.
    at.button(key="evolve_open_compare").click().run()
    assert at.title[0].value == "Compare runs"
    assert at.multiselect(key="compare_runs").value == [state["final_run_id"]]


def test_head_mode_shows_the_three_methods_curves():
    curves = [{"method": m, "step": s, "val_accuracy": acc, "train_loss": 2.0 - s * k, "forward_passes": p * s,
               "seconds": 0.1 * s} for m, k, p, accs in (("ga", 0.1, 8, (1 / 7, 0.25, 0.30)),
                                                         ("adam", 0.3, 1, (1 / 7, 0.40, 0.50)),
                                                         ("rmsprop", 0.2, 1, (1 / 7, 0.35, 0.45)))
              for s, acc in enumerate(accs)]
    state = write_search("head-saved", generations=[])
    state.update(mode="head", fixed={"arch": "vgg16", "weights": "none", "input_size": 32}, generation=-1,
                 evaluations={}, head={"arch": "vgg16", "weights": "none", "input_size": 32, "feature_dim": 512,
                                       "n_train": 42, "n_val": 21, "curves": curves})
    evolution.save_state(state)
    at = open_evolve(search="head-saved")
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["GA (PyGAD) val accuracy"], metrics["Adam val accuracy"], metrics["RMSprop val accuracy"]) == \
        ("0.300", "0.500", "0.450")
    fig = figure(at, "evolve_head_accuracy")
    by_method = {t["legendgroup"]: array(t["y"]) for t in fig["data"]}
    np.testing.assert_allclose(by_method["Adam"], [1 / 7, 0.40, 0.50])
    np.testing.assert_allclose(by_method["GA (PyGAD)"], [1 / 7, 0.25, 0.30])
    assert "512 features" in texts(at) and "Fitness per generation" not in [s.value for s in at.subheader]
