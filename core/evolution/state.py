"""Saved searches: where a search's state lives, how it is written and read, and the read API.

A search writes its whole state to ``artifacts/searches/<search_id>/state.json`` after every
evaluation (write-then-rename, so a kill leaves the previous complete state). The read API
(``list_searches``, ``search_state``) turns states into plain values and DataFrames for the
dashboard and the CLI; it imports only NumPy and pandas, never TensorFlow, PyGAD or MLflow.
"""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.config import artifacts_dir
from core.evolution.space import genome_key, genome_values, space_from_json


class SearchNotFound(KeyError):
    """No saved search with that id."""


def searches_dir() -> Path:
    """Where search states live: ``artifacts/searches/<search_id>/state.json``."""
    return artifacts_dir() / "searches"


def state_path(search_id: str) -> Path:
    """The state file of one search (it may not exist yet)."""
    return searches_dir() / search_id / "state.json"


def timestamp() -> str:
    """Now, as search states record ``created`` and ``updated`` (UTC, ISO 8601, seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def save_state(state: dict) -> None:
    """Write a search state (and stamp its ``updated``); a kill at any moment leaves the previous one."""
    path = state_path(state["search_id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    state["updated"] = timestamp()
    tmp = path.with_name("state.tmp.json")
    tmp.write_text(json.dumps(state, indent=1, default=_json_default))
    tmp.replace(path)


def load_state(search_id: str) -> dict:
    """The saved state of a search, as ``save_state`` wrote it; ``SearchNotFound`` if there is none."""
    path = state_path(search_id)
    if not path.is_file():
        raise SearchNotFound(f"No search {search_id!r} (looked for {path})")
    return json.loads(path.read_text())


def _json_default(o: Any):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def new_search_id(strategy: str = "ga", mode: str = "hyper") -> str:
    """A fresh id such as ``evo-3f9c2a1b`` (``random-...``, ``head-...``)."""
    prefix = "head" if mode == "head" else ("evo" if strategy == "ga" else strategy)
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def search_exists(search_id: str) -> dict | None:
    """``search_state(search_id)`` for a saved search, else None."""
    try:
        return search_state(search_id)
    except SearchNotFound:
        return None


def enable_retrain(search_id: str) -> None:
    """Make ``resume_search`` retrain the best genome with the full budget (as ``ga-<search_id>``).

    A search retrains its best genome only at the end of a run with ``retrain_best``; turning
    the flag on in the saved state makes a resume do exactly that step (its generations are
    all scored, so nothing else runs). A search whose retrain already finished is left alone.
    """
    state = load_state(search_id)
    if state["retrain_best"] and state["status"] != "finished":
        return
    if state.get("final") and state["final"].get("status") == "FINISHED":
        return
    state["retrain_best"] = True
    if state["status"] == "finished":
        state["status"] = "stopped"  # resume_search leaves finished searches alone
    save_state(state)


def best_entry(state: dict) -> tuple[list[int], float, str] | None:
    """(genome, fitness, run_id) of the best genome, scored as in the search (the longer run
    when there is one); ties go to a genome with a longer run, then to the earlier one."""
    evaluations = state["evaluations"]
    best = None
    for order, entry in enumerate(e for e in evaluations.values() if e["fidelity"] == "short"):
        long = evaluations.get(f"{genome_key(entry['genome'])}@long")
        scoring = long if long is not None and long["status"] == "FINISHED" else entry
        if scoring["status"] != "FINISHED":
            continue
        rank = (scoring["fitness"], scoring is long, -order)
        if best is None or rank > best[0]:
            best = (rank, scoring)
    if best is None:
        return None
    entry = best[1]
    return entry["genome"], float(entry["fitness"]), entry["run_id"]


# ---------------------------------------------------------------- read API (dashboard, CLI)


def list_searches() -> pd.DataFrame:
    """One row per saved search, newest first."""
    cols = ["search_id", "mode", "strategy", "dataset", "status", "generation", "generations", "population",
            "best_fitness", "evaluations", "cache_hits", "seconds", "final_run_id", "final_test_accuracy",
            "created", "updated"]
    rows = []
    root = searches_dir()
    for path in sorted(root.glob("*/state.json")) if root.is_dir() else []:
        try:
            st = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # being replaced right now, or not ours
        cost, best = _cost(st), best_entry(st)
        if st["mode"] == "head" and st.get("head"):
            ga = [r["val_accuracy"] for r in st["head"]["curves"] if r["method"] == "ga"]
            best = (None, max(ga), None) if ga else None
        final = st.get("final") or {}
        rows.append({
            "search_id": st["search_id"], "mode": st["mode"], "strategy": st["strategy"], "dataset": st["dataset"],
            "status": st["status"], "generation": st["generation"], "generations": st["generations"],
            "population": st["population"], "best_fitness": best[1] if best else None, **cost,
            "final_run_id": final.get("run_id"), "final_test_accuracy": final.get("test_accuracy"),
            "created": st["created"], "updated": st["updated"],
        })
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values("created", ascending=False, kind="stable").reset_index(drop=True)


def _cost(st: dict) -> dict:
    done = [e for e in st["evaluations"].values() if e["status"] in ("FINISHED", "FAILED")]
    seconds = sum(e["seconds"] for e in st["evaluations"].values()) + ((st.get("final") or {}).get("seconds") or 0.0)
    if st["mode"] == "head" and st.get("head"):
        per_method: dict[str, float] = {}
        for r in st["head"]["curves"]:
            per_method[r["method"]] = max(per_method.get(r["method"], 0.0), r["seconds"])
        seconds = sum(per_method.values())
    hits = sum(sum(h["cached"]) for h in st["history"])
    return {"evaluations": len(done), "cache_hits": hits, "seconds": seconds}


def search_state(search_id: str) -> dict:
    """Everything the dashboard shows about one search, as plain values and DataFrames.

    Keys: ``search_id, mode, strategy, dataset, status, error, notes, settings`` (population,
    generations, seed, budget, fixed genes), ``genes`` (names), ``generation`` (last completed),
    ``generations`` (DataFrame: generation, best, mean, worst, evaluations, cache_hits),
    ``population`` (DataFrame: generation, slot, one column per gene, fitness, fidelity,
    run_id, cached), ``evaluations`` (DataFrame: one row per trained genome and fidelity),
    ``cost`` (seconds, evaluations, cache_hits), ``best`` (genes, fitness, run_id; or None),
    ``final_run_id``, ``final_test_accuracy``, and for mode head ``curves`` (DataFrame:
    method, step, val_accuracy, train_loss, forward_passes, seconds) with ``head`` details.
    A step is a generation for the GA (population-many forward passes over the training
    features) and an epoch for Adam and RMSprop (one forward and backward pass);
    ``forward_passes`` counts those passes over the training set.
    """
    st = load_state(search_id)
    space = space_from_json(st["space"])
    names = [g.name for g in space]
    gen_rows, pop_rows = [], []
    for h in st["history"]:
        trained = [c is False for c in h["cached"]]
        gen_rows.append({"generation": h["generation"], "best": h["best"], "mean": h["mean"], "worst": h["worst"],
                         "evaluations": sum(trained), "cache_hits": sum(h["cached"])})
        for slot, (genome, fit, cached, run_id) in enumerate(zip(h["population"], h["fitness"], h["cached"],
                                                                 h["run_ids"])):
            long = st["evaluations"].get(f"{genome_key(genome)}@long")
            pop_rows.append({"generation": h["generation"], "slot": slot, **genome_values(genome, space),
                             "fitness": fit, "fidelity": "long" if long and long["run_id"] == run_id else "short",
                             "run_id": run_id, "cached": cached})
    eval_rows = [{**genome_values(e["genome"], space), "fidelity": e["fidelity"], "fitness": e["fitness"],
                  "status": e["status"], "run_id": e["run_id"], "generation": e["generation"], "slot": e["slot"],
                  "seconds": e["seconds"]} for e in st["evaluations"].values()]
    best = best_entry(st)
    final = st.get("final") or {}
    out = {
        "search_id": st["search_id"], "mode": st["mode"], "strategy": st["strategy"], "dataset": st["dataset"],
        "status": st["status"], "error": st.get("error", ""), "notes": list(st["notes"]),
        "settings": {"population": st["population"], "generations": st["generations"], "seed": st["seed"],
                     "budget": st["budget"], "fixed": st["fixed"], "retrain_best": st["retrain_best"]},
        "genes": names, "generation": st["generation"],
        "generations": pd.DataFrame(gen_rows, columns=["generation", "best", "mean", "worst", "evaluations",
                                                       "cache_hits"]),
        "population": pd.DataFrame(pop_rows, columns=["generation", "slot", *names, "fitness", "fidelity",
                                                      "run_id", "cached"]),
        "evaluations": pd.DataFrame(eval_rows, columns=[*names, "fidelity", "fitness", "status", "run_id",
                                                        "generation", "slot", "seconds"]),
        "cost": _cost(st),
        "best": ({"genes": genome_values(best[0], space), "fitness": best[1], "run_id": best[2]} if best else None),
        "final_run_id": final.get("run_id"), "final_test_accuracy": final.get("test_accuracy"),
    }
    if st["mode"] == "head":
        head = st.get("head") or {"curves": []}
        out["curves"] = pd.DataFrame(head["curves"], columns=["method", "step", "val_accuracy", "train_loss",
                                                              "forward_passes", "seconds"])
        out["head"] = {k: v for k, v in head.items() if k != "curves"}
    return out
