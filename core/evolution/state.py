"""Saved searches: where a search's state lives, how it is written and read, and the read API.

A search writes its whole state to ``artifacts/searches/<search_id>/state.json`` after every
evaluation (write-then-rename, so a kill leaves the previous complete state). The read API
(``list_searches``, ``search_state``) turns states into plain values and DataFrames for the
dashboard and the CLI; it imports only NumPy and pandas, never TensorFlow, PyGAD or MLflow.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.analysis import pareto
from core.configs import artifacts_dir, atomic_write
from core.evolution.space import genome_key, genome_values, space_from_json


@dataclass(frozen=True)
class Objective:
    """Something a search optimises: the child run's metric it reads, what people call it, and its unit."""

    metric: str
    label: str
    unit: str = ""

    @property
    def axis_title(self) -> str:
        """``"training time (s)"``: the label with its unit."""
        return f"{self.label} ({self.unit})" if self.unit else self.label


# What a search can optimise: validation accuracy (always first, maximised) and, for a
# multi-objective search, costs to minimise, each read from the child run's cost metrics
# (``core.train.costs``) into its cache entry's ``costs``.
OBJECTIVES: dict[str, Objective] = {
    "accuracy": Objective("val_accuracy", "validation accuracy"),
    "train_time": Objective("train_time_s", "training time", "s"),
    "latency": Objective("latency_ms_per_face", "inference latency", "ms per face"),
    "train_flops": Objective("train_flops", "training FLOPs"),
}


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
    atomic_write(path, json.dumps(state, indent=1, default=_json_default))


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


def cost_metrics(state: dict) -> list[str]:
    """The run metrics a search minimises beside accuracy (empty for a single-objective search)."""
    return [OBJECTIVES[o].metric for o in state.get("objectives", ["accuracy"])[1:]]


def objective_vector(state: dict, entry: dict) -> list[float] | None:
    """``[accuracy, -cost, ...]`` of a cache entry (all maximised), or None unless it finished with every cost."""
    costs = entry.get("costs") or {}
    metrics = cost_metrics(state)
    if entry["status"] != "FINISHED" or any(costs.get(m) is None for m in metrics):
        return None
    return [float(entry["fitness"]), *(-float(costs[m]) for m in metrics)]


def _scoring_entries(state: dict) -> list[dict]:
    """One entry per genome: its longer run when that finished (how the search ranked it), else its short one."""
    evaluations = state["evaluations"]
    out = []
    for entry in (e for e in evaluations.values() if e["fidelity"] == "short"):
        long = evaluations.get(f"{genome_key(entry['genome'])}@long")
        out.append(long if long is not None and long["status"] == "FINISHED" else entry)
    return out


def final_front(state: dict) -> list[dict]:
    """The non-dominated genomes of everything a multi-objective search scored, cheapest first
    (by its first cost). Each: ``member`` (its index here, the ``k`` of ``ga-<search>-<k>``),
    ``genome``, ``fitness``, ``costs``, ``run_id``. Empty for a single-objective search."""
    if len(state.get("objectives", ["accuracy"])) < 2:
        return []
    scored = [(e, v) for e in _scoring_entries(state) if (v := objective_vector(state, e)) is not None]
    if not scored:
        return []
    mask = pareto.non_dominated(np.array([v for _, v in scored]))
    front = sorted((pair for pair, keep in zip(scored, mask) if keep),
                   key=lambda p: (-p[1][1], -p[1][0], genome_key(p[0]["genome"])))
    return [{"member": k, "genome": list(e["genome"]), "fitness": float(e["fitness"]), "costs": dict(e["costs"]),
             "run_id": e["run_id"]} for k, (e, _) in enumerate(front)]


def enable_front_retrain(search_id: str, member: int) -> None:
    """Make ``resume_search`` retrain member ``member`` of the final front with the full budget
    (as ``ga-<search_id>-<member>``); a member already retrained is left alone."""
    state = load_state(search_id)
    front = final_front(state)
    if not 0 <= member < len(front):
        raise IndexError(f"member: expected 0 to {len(front) - 1} (the front of search {search_id!r}). "
                         f"Received: {member}")
    retrains = state.setdefault("front_retrain", {})
    record = retrains.get(str(member))
    if record is not None and record["status"] == "FINISHED":
        return
    if record is None:
        m = front[member]
        retrains[str(member)] = {"genome": m["genome"], "search_fitness": m["fitness"], "costs": m["costs"],
                                 "search_run_id": m["run_id"], "run_id": None, "status": "PENDING",
                                 "test_accuracy": None, "seconds": 0.0}
    if state["status"] == "finished":
        state["status"] = "stopped"  # resume_search leaves finished searches alone
    save_state(state)


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
    seconds += sum(r["seconds"] for r in (st.get("front_retrain") or {}).values())
    if st["mode"] == "head" and st.get("head"):
        per_method: dict[str, float] = {}
        for r in st["head"]["curves"]:
            per_method[r["method"]] = max(per_method.get(r["method"], 0.0), r["seconds"])
        seconds = sum(per_method.values())
    hits = sum(sum(h["cached"]) for h in st["history"])
    return {"evaluations": len(done), "cache_hits": hits, "seconds": seconds}


def _front_mask(vectors: list[list[float] | None]) -> list[bool]:
    known = [i for i, v in enumerate(vectors) if v is not None]
    mask = [False] * len(vectors)
    if known:
        for i, keep in zip(known, pareto.non_dominated(np.array([vectors[i] for i in known]))):
            mask[i] = bool(keep)
    return mask


def search_state(search_id: str) -> dict:
    """Everything the dashboard shows about one search, as plain values and DataFrames.

    Keys: ``search_id, mode, strategy, dataset, status, error, notes, settings`` (population,
    generations, seed, budget, fixed genes), ``genes`` (names), ``generation`` (last completed),
    ``generations`` (DataFrame: generation, best, mean, worst, evaluations, cache_hits),
    ``population`` (DataFrame: generation, slot, one column per gene, fitness, fidelity,
    run_id, cached), ``evaluations`` (DataFrame: one row per trained genome and fidelity),
    ``cost`` (seconds, evaluations, cache_hits), ``best`` (genes, fitness, run_id; or None),
    ``final_run_id``, ``final_test_accuracy``, ``objectives`` (accuracy, then the costs a
    multi-objective search minimises; ``cost_metrics``, their run metrics, are extra columns of ``population`` and
    ``evaluations``, and ``population.on_front`` marks each generation's non-dominated slots),
    ``front`` (DataFrame: member, genes, fitness, costs, run_id and its full-budget retrain:
    retrain_status, retrain_run_id, test_accuracy; empty for one objective), and for mode head ``curves`` (DataFrame:
    method, step, val_accuracy, train_loss, forward_passes, seconds) with ``head`` details.
    A step is a generation for the GA (population-many forward passes over the training
    features) and an epoch for Adam and RMSprop (one forward and backward pass);
    ``forward_passes`` counts those passes over the training set.
    """
    st = load_state(search_id)
    space = space_from_json(st["space"])
    names = [g.name for g in space]
    metrics = cost_metrics(st)
    gen_rows, pop_rows = [], []
    for h in st["history"]:
        trained = [c is False for c in h["cached"]]
        gen_rows.append({"generation": h["generation"], "best": h["best"], "mean": h["mean"], "worst": h["worst"],
                         "evaluations": sum(trained), "cache_hits": sum(h["cached"])})
        scoring = {e["run_id"]: e for e in st["evaluations"].values()}
        vectors = [objective_vector(st, scoring[r]) if r in scoring else None for r in h["run_ids"]]
        on_front = _front_mask(vectors) if metrics else [False] * len(vectors)
        for slot, (genome, fit, cached, run_id) in enumerate(zip(h["population"], h["fitness"], h["cached"],
                                                                 h["run_ids"])):
            long = st["evaluations"].get(f"{genome_key(genome)}@long")
            costs = (scoring.get(run_id) or {}).get("costs") or {}
            pop_rows.append({"generation": h["generation"], "slot": slot, **genome_values(genome, space),
                             "fitness": fit, "fidelity": "long" if long and long["run_id"] == run_id else "short",
                             "run_id": run_id, "cached": cached, **{m: costs.get(m) for m in metrics},
                             "on_front": bool(on_front[slot])})
    eval_rows = [{**genome_values(e["genome"], space), "fidelity": e["fidelity"], "fitness": e["fitness"],
                  "status": e["status"], "run_id": e["run_id"], "generation": e["generation"], "slot": e["slot"],
                  "seconds": e["seconds"], **{m: (e.get("costs") or {}).get(m) for m in metrics}}
                 for e in st["evaluations"].values()]
    retrains = st.get("front_retrain") or {}
    front_rows = [{"member": m["member"], **genome_values(m["genome"], space), "fitness": m["fitness"],
                   **{k: m["costs"].get(k) for k in metrics}, "run_id": m["run_id"],
                   "retrain_status": (retrains.get(str(m["member"])) or {}).get("status", ""),
                   "retrain_run_id": (retrains.get(str(m["member"])) or {}).get("run_id"),
                   "test_accuracy": (retrains.get(str(m["member"])) or {}).get("test_accuracy")}
                  for m in final_front(st)]
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
                                                      "run_id", "cached", *metrics, "on_front"]),
        "evaluations": pd.DataFrame(eval_rows, columns=[*names, "fidelity", "fitness", "status", "run_id",
                                                        "generation", "slot", "seconds", *metrics]),
        "objectives": list(st.get("objectives", ["accuracy"])), "cost_metrics": metrics,
        "front": pd.DataFrame(front_rows, columns=["member", *names, "fitness", *metrics, "run_id",
                                                   "retrain_status", "retrain_run_id", "test_accuracy"]),
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


def best_so_far(state: dict) -> pd.DataFrame:
    """A search's best validation fitness after each training it spent, in the order it trained them.

    Columns: ``evaluations`` (trainings so far; cache hits are free), ``seconds`` (their
    cumulative training time), ``best`` (best fitness so far; a failed training scores 0).
    """
    rows, best, seconds = [], -np.inf, 0.0
    for entry in state["evaluations"].values():
        if entry["status"] not in ("FINISHED", "FAILED"):
            continue
        seconds += entry["seconds"]
        best = max(best, float(entry["fitness"] or 0.0))
        rows.append({"evaluations": len(rows) + 1, "seconds": seconds, "best": best})
    return pd.DataFrame(rows, columns=["evaluations", "seconds", "best"])


def strategy_bands(search_ids: list[str], x: str = "evaluations", points: int = 60,
                   confidence: float = 0.95) -> pd.DataFrame:
    """Best-so-far fitness of several searches, as mean with a Student-t interval across them per strategy.

    ``x`` is ``evaluations`` (trainings spent: 1, 2, ...) or ``seconds`` (training time, on a
    grid of ``points`` steps). A search that stopped spending (its population converged onto
    cached genomes) keeps its last best. Columns: strategy, x, mean, low, high, n (searches
    with a value there; the interval needs two).
    """
    from core.analysis.stats import mean_ci  # only here: reading searches stays NumPy and pandas

    if x not in ("evaluations", "seconds"):
        raise ValueError(f"x: expected 'evaluations' or 'seconds'. Received: {x!r}")
    curves: dict[str, list[pd.DataFrame]] = {}
    for sid in search_ids:
        st = load_state(sid)
        curve = best_so_far(st)
        if len(curve):
            curves.setdefault(st["strategy"], []).append(curve)
    if not curves:
        return pd.DataFrame(columns=["strategy", x, "mean", "low", "high", "n"])
    top = max(float(c[x].iloc[-1]) for cs in curves.values() for c in cs)
    grid = np.arange(1, int(top) + 1, dtype=float) if x == "evaluations" else np.linspace(0.0, top, points)
    rows = []
    for strategy, cs in curves.items():
        # Best so far at each grid point: the last training done by then (NaN before the first).
        at = np.full((len(cs), len(grid)), np.nan)
        for i, c in enumerate(cs):
            idx = np.searchsorted(c[x].to_numpy(dtype=float), grid, side="right") - 1
            at[i, idx >= 0] = c["best"].to_numpy()[idx[idx >= 0]]
        for j, g in enumerate(grid):
            values = at[:, j][~np.isnan(at[:, j])]
            if not len(values):
                continue
            ci = mean_ci(values, confidence)
            rows.append({"strategy": strategy, x: float(g), "mean": ci["mean"], "low": ci["low"], "high": ci["high"],
                         "n": len(values)})
    return pd.DataFrame(rows, columns=["strategy", x, "mean", "low", "high", "n"])
