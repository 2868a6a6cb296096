"""The three kinds of job (train, evaluate, evolve): payload checks, submit helpers, executors.

The only module of the job system that imports training and evolution; it does so inside
the executors, which run in the job's own process, so submitting stays light.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from core.configs import ConfigError, RunConfig
from core.jobs.context import JobContext
from core.jobs.queue import JobCancelled, JobError, register_kind, submit, submit_many
from core.train import runs

# ------------------------------------------------------------------ train


def _validate_train(payload: Any) -> tuple[dict, str]:
    if not isinstance(payload, dict) or "config" not in payload:
        raise JobError(f"train payload: expected {{'config': RunConfig.to_dict()}}. Received: payload={payload!r}")
    cfg = payload["config"]
    cfg = cfg if isinstance(cfg, RunConfig) else RunConfig.from_dict(cfg)  # a RunConfig was validated when built
    return {"config": cfg.to_dict()}, f"{cfg.model.arch}/{cfg.variant} on {cfg.data.dataset}"


def submit_train(cfg: RunConfig, key: str | None = None) -> int:
    """Queue training of one configuration."""
    return submit("train", {"config": cfg}, group=cfg.group, key=key)


def submit_grid(configs: list[RunConfig], group: str, key: str | None = None) -> list[int]:
    """Queue a comparison grid atomically: one training job per configuration, all in ``group``."""
    if not configs:
        raise JobError("submit_grid: expected at least one configuration. Received: configs=[]")
    return submit_many("train", [{"config": replace(cfg, group=group)} for cfg in configs], group=group, key=key)


def execute_train(ctx: JobContext) -> dict:
    """Train one configuration; a resumed attempt continues the same run from its checkpoint."""
    from core.data import datasets
    from core.train import models

    cfg = RunConfig.from_dict(ctx.payload["config"])
    models.resolve_weights(cfg.model)  # before TensorFlow loads: a missing file fails in a second
    from core.train import training  # imports TensorFlow

    if ctx.run_id and runs.is_finished(ctx.run_id):
        return runs.summary(ctx.run_id)  # finished before its job row could say so
    ds = datasets.load_for_run(cfg.data)
    ctx.check_cancelled()
    if ctx.run_id is None:
        ctx.set_run_id(runs.open_run(cfg, ds, tags={"job_id": ctx.job_id}))
    result = training.train(cfg, run_id=ctx.run_id, dataset=ds, callbacks=[ctx.keras_callback()],
                            should_stop=ctx.should_stop)
    if result.status == "KILLED":
        raise JobCancelled()
    return runs.summary(result.run_id)


# ------------------------------------------------------------------ evaluate


def _validate_evaluate(payload: Any) -> tuple[dict, str]:
    if not isinstance(payload, dict):
        raise JobError(f"evaluate payload: expected {{'run_id': ..., 'dataset': ...}}. Received: payload={payload!r}")
    for field in ("run_id", "dataset"):
        if not isinstance(payload.get(field), str) or not payload[field]:
            raise JobError(f"evaluate payload: {field} must be a non-empty string. Received: {field}={payload.get(field)!r}")
    return {"run_id": payload["run_id"], "dataset": payload["dataset"]}, \
        f"evaluate {payload['run_id'][:8]} on {payload['dataset']}"


def submit_evaluate(run_id: str, dataset: str, key: str | None = None) -> int:
    """Queue evaluation of a stored run's model on another dataset's test split."""
    return submit("evaluate", {"run_id": run_id, "dataset": dataset}, key=key)


def execute_evaluate(ctx: JobContext) -> dict:
    """Evaluate a stored run's model on another dataset; the evaluation is a new run."""
    ctx.check_cancelled()
    new_id, report = runs.evaluate_stored(ctx.payload["run_id"], ctx.payload["dataset"], tags={"job_id": ctx.job_id})
    ctx.set_run_id(new_id)
    return {"run_id": new_id, "test_accuracy": report["accuracy"], "test_macro_f1": report["macro_f1"]}


# ------------------------------------------------------------------ evolve (core.evolution searches)


def _validate_evolve(payload: Any) -> tuple[dict, str]:
    """A search spec checked once, by ``core.evolution.SearchSpec``; a bad one fails at submit, not in the worker."""
    from core import evolution

    try:
        spec = evolution.SearchSpec.from_payload(payload)
    except ConfigError as exc:
        raise JobError(f"evolve payload: {exc}") from None
    return spec.to_payload(), spec.label()


def submit_evolve(dataset: str, *, population: int = 8, generations: int = 5, strategy: str = "ga",
                  mode: str = "hyper", budget: Any = None, fixed: dict | None = None, seed: int = 42,
                  retrain_best: bool = True, base: RunConfig | None = None, search_id: str | None = None,
                  key: str | None = None, objectives: tuple[str, ...] = ("accuracy",)) -> tuple[int, str]:
    """Queue a search (``core.evolution.start_search`` in the worker); return ``(job_id, search_id)``.

    The search id is chosen here, so the caller can follow the search before the worker
    starts it; the job's group is the search id, as is the group of the search's runs.
    """
    from dataclasses import asdict

    from core import evolution

    sid = search_id or evolution.new_search_id(strategy, mode)
    budget = asdict(budget) if isinstance(budget, evolution.Budget) else budget
    payload = {"search_id": sid, "action": "start", "dataset": dataset, "population": population,
               "generations": generations, "strategy": strategy, "mode": mode, "budget": budget,
               "fixed": dict(fixed or {}), "seed": seed, "retrain_best": retrain_best,
               "base": base.to_dict() if base is not None else None, "objectives": list(objectives)}
    return submit("evolve", payload, group=sid, key=key), sid


def submit_search_action(search_id: str, action: str, key: str | None = None, member: int | None = None) -> int:
    """Queue ``resume`` (continue a stopped or failed search), ``retrain`` (retrain its best genome with
    the full budget as variant ``ga-<search_id>``, for a search started with ``retrain_best=False``) or
    ``retrain-front`` (retrain front member ``member`` of a multi-objective search as ``ga-<search_id>-<member>``)."""
    if action not in ("resume", "retrain", "retrain-front"):
        raise JobError(f"action must be 'resume', 'retrain' or 'retrain-front'. Received: action={action!r}")
    payload = {"search_id": search_id, "action": action, **({"member": member} if action == "retrain-front" else {})}
    return submit("evolve", payload, group=search_id, key=key)


def execute_evolve(ctx: JobContext) -> dict:
    """Run, resume or finish a search; a retried job resumes the search it started (same search id)."""
    from core import evolution

    sid, action = ctx.payload["search_id"], ctx.payload.get("action", "start")
    ctx.check_cancelled()
    existing = evolution.search_exists(sid)
    head = (existing or ctx.payload)["mode"] == "head"
    started = {"t": time.monotonic(), "done": None}

    def progress(p: evolution.Progress) -> None:
        if started["done"] is None:
            started["done"] = p.done - 1  # slots already scored before this attempt
        # Head mode reports the validation accuracy of the method at work (see the progress message).
        metrics = {("val_accuracy" if head else "best_fitness"): float(p.best)} if p.best is not None else {}
        if p.mean_fitness is not None:
            metrics["mean_fitness"] = float(p.mean_fitness)
        done_now = p.done - started["done"]
        eta = (time.monotonic() - started["t"]) / done_now * (p.total - p.done) if done_now > 0 else None
        ctx.progress(generation=p.generations_done, generations=p.generations_total, individual=p.individual,
                     individuals=p.individuals, metrics=metrics, eta_s=eta, force=p.done == p.total)

    def should_stop() -> bool:
        # Training polls this after every batch: counting those lets a cancel say how promptly it stopped.
        ctx.batch_ended()
        return ctx.should_stop()

    if action == "retrain":
        evolution.enable_retrain(sid)
    elif action == "retrain-front":
        evolution.enable_front_retrain(sid, ctx.payload["member"])
    if existing is None and action == "start":
        evolution.start_search(evolution.SearchSpec.from_payload(ctx.payload), progress=progress,
                               should_stop=should_stop)
    else:  # resume, retrain, or this job's earlier attempt died mid-search
        evolution.resume_search(sid, progress=progress, should_stop=should_stop)
    state = evolution.search_state(sid)
    if state["status"] == "stopped":
        raise JobCancelled()
    best = state["best"]
    if state["mode"] == "head":  # the GA's best validation accuracy; Adam's and RMSprop's are in the curves
        ga = state["curves"][state["curves"].method == "ga"].val_accuracy
        best = {"fitness": float(ga.max())} if len(ga) else None
    return {"search_id": sid, "status": state["status"], "best_fitness": best["fitness"] if best else None,
            "final_run_id": state["final_run_id"], "final_test_accuracy": state["final_test_accuracy"],
            **state["cost"]}


register_kind("train", execute_train, _validate_train)
register_kind("evaluate", execute_evaluate, _validate_evaluate)
register_kind("evolve", execute_evolve, _validate_evolve, units=("generation", "generations", "individual", "individuals"))
