"""Commands for the job queue: worker, submit, jobs, cancel."""
from __future__ import annotations

import argparse

from core.cli.common import (
    AddParser,
    add_distribute_option,
    add_profile_options,
    add_run_options,
    add_seeds_option,
    apply_distribute,
    apply_quick,
    configs_from_args,
)

# What ``jobs ID`` prints, in this order, when the job has a value for it.
DETAIL_KEYS = ("id", "kind", "label", "group", "state", "note", "run_id", "attempts", "progress", "metrics",
               "heartbeat_age_s", "last_seen", "error", "result", "log_path")


def register(add: AddParser) -> None:
    """Add this group's commands to the top-level parser."""
    from core.configs import ARCHITECTURES
    from core.configs.presets import CONFIG_IDS

    p = add("worker", help="run queued jobs one at a time (started for you by submit and the dashboard)")
    p.add_argument("--max-jobs", type=int, default=None, help="exit after this many jobs")
    p.add_argument("--exit-when-idle", type=float, default=None, metavar="SECONDS",
                   help="exit after this long with nothing to do (default: wait forever)")
    p.add_argument("--slots", type=int, default=1,
                   help="workers allowed on this machine at once (one per accelerator; default 1)")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run jobs as Ray tasks, several at once: on a new local Ray instance, or on the cluster at "
                        "ADDRESS ('auto' or HEAD:6379)")
    p.add_argument("--gpus-per-task", type=float, default=1.0,
                   help="with --ray: GPUs per job, a fraction to share one (default 1)")
    p.add_argument("--cpus-per-task", type=float, default=1.0,
                   help="with --ray: CPUs per job (on a cluster without GPUs, the share each job gets; default 1)")
    p.add_argument("--max-parallel", type=int, default=None,
                   help="with --ray: at most this many jobs at once (default: as many as the cluster has room for)")
    add_distribute_option(p)
    p.set_defaults(fn=cmd_worker)

    p = add("submit", help="queue training (one job per architecture x configuration) or an evaluation")
    p.add_argument("--arch", choices=ARCHITECTURES, nargs="+", default=["resnet50"])
    p.add_argument("--configs", choices=CONFIG_IDS, nargs="+", default=["imagenet-adam"])
    p.add_argument("--group", default="", help="name for a grid of several jobs (default: generated)")
    p.add_argument("--evaluate", metavar="RUN_ID", help="instead: evaluate this run's model on --dataset")
    p.add_argument("--no-worker", action="store_true", help="only queue; do not start a worker")
    add_run_options(p)
    add_seeds_option(p)
    add_profile_options(p)
    p.set_defaults(fn=cmd_submit)

    p = add("jobs", help="list jobs, or show one job with its log tail")
    p.add_argument("id", type=int, nargs="?")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--group", default=None)
    p.set_defaults(fn=cmd_jobs)

    p = add("cancel", help="cancel a job (a running one stops at its next batch)")
    p.add_argument("id", type=int)
    p.add_argument("--force", action="store_true", help="kill the job's process now instead of after a grace period")
    p.set_defaults(fn=cmd_cancel)


def cmd_worker(args: argparse.Namespace) -> int:
    """Run queued jobs here, or as Ray tasks with ``--ray``."""
    from core import jobs

    apply_distribute(args)  # job processes inherit it
    if args.ray is not None:
        from core.jobs import ray_worker

        return ray_worker.run_ray_worker(args.ray, gpus_per_task=args.gpus_per_task,
                                         cpus_per_task=args.cpus_per_task, max_parallel=args.max_parallel,
                                         max_jobs=args.max_jobs, exit_when_idle=args.exit_when_idle,
                                         slots=args.slots)
    return jobs.run_worker(max_jobs=args.max_jobs, exit_when_idle=args.exit_when_idle, slots=args.slots)


def cmd_submit(args: argparse.Namespace) -> int:
    """Queue one training job per architecture x configuration (or one evaluation) and start a worker."""
    import uuid

    from core import jobs

    if args.evaluate:
        ids = [jobs.submit_evaluate(args.evaluate, args.dataset)]
    else:
        apply_quick(args)
        configs = configs_from_args(args, args.arch, args.configs)
        group = args.group or f"grid-{uuid.uuid4().hex[:8]}"
        ids = [jobs.submit_train(configs[0])] if len(configs) == 1 else jobs.submit_grid(configs, group)
    print(f"Queued job(s) {', '.join(map(str, ids))}.")
    if not args.evaluate and len(ids) > 1 and len({c.train.seed for c in configs}) > 1:
        print(f"When they finish, across seeds with paired tests: python -m core summary {group}")
    if not args.no_worker:
        pid = jobs.ensure_worker()
        status = jobs.worker_status()
        print(f"Started worker (pid {pid})." if pid else f"Worker already running (pid {status['pid']}).")
    print("Follow with: python -m core jobs")
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    """The queue as a table, or one job's details and log tail."""
    from core import jobs

    if args.id is not None:
        job = jobs.get_job(args.id)
        for key in DETAIL_KEYS:
            value = job.get(key)
            if key == "progress" and value is not None:
                value = describe_progress(value, job["state"])
            if key == "last_seen":
                value = _seen(value, job["state"])
            if value not in (None, "", {}):
                print(f"{key:>16}: {value}")
        if job["log_tail"]:
            print("\n" + job["log_tail"])
        return 0
    table = jobs.list_jobs(args.limit, group=args.group)
    if table.empty:
        print("No jobs yet. Try: python -m core submit --arch resnet50 --configs scratch-adam --quick")
        return 0
    table["progress"] = [describe_progress(j.progress, j.state) if j.state in ("running", "interrupted") else ""
                         for j in table.itertuples()]
    table["last seen"] = [_seen(j.last_seen, j.state) for j in table.itertuples()]
    table["info"] = [(j.error or j.note)[:70] for j in table.itertuples()]
    columns = ["id", "kind", "state", "label", "group", "progress", "attempts", "info"]
    if (table.state == "interrupted").any():  # when the job's worker was last heard from
        columns.insert(6, "last seen")
    print(table[columns].to_string(index=False))
    status = jobs.worker_status()
    worker = f"running (pid {status['pid']})" if status["alive"] else "none running"
    print(f"\nWorker: {worker}")
    return 0


def describe_progress(progress, state: str) -> str:
    """A running job's position (``epoch 2/3, batch 14/88, ...``); for any other, how many units it got through."""
    if state == "running":
        return progress.describe()
    return f"{progress.done}/{progress.total} {progress.unit}s" if progress.total else ""


def _seen(last_seen, state: str) -> str:
    """``14:02:07 UTC (37 s ago)`` for an interrupted job's last heartbeat; empty for other states."""
    import time

    import pandas as pd

    from core.jobs import ago

    if state != "interrupted" or last_seen is None or pd.isna(last_seen):
        return ""
    at = pd.Timestamp(last_seen, unit="s", tz="UTC") if isinstance(last_seen, (int, float)) else last_seen
    return f"{at:%H:%M:%S} UTC ({ago(time.time() - at.timestamp())} ago)"


def cmd_cancel(args: argparse.Namespace) -> int:
    """Cancel a job: a queued one at once, a running one at its next batch (or by force)."""
    from core import jobs

    state = jobs.cancel(args.id, grace_s=0.0 if args.force else jobs.CANCEL_GRACE_S)
    if state == "running":
        print(f"Job {args.id}: cancel requested; it stops at its next batch "
              f"(or is killed {'now' if args.force else f'after {jobs.CANCEL_GRACE_S:.0f} s'}).")
    else:
        print(f"Job {args.id}: {state}.")
    return 0
