"""Scale bench: how Overview, Train, Compare and the ``runs``/``summary`` commands grow with the store
(a script, not a test: pytest does not collect it).

    .venv/bin/python tests/dashboard/scale_check.py [--sizes 50 500 2000] [--repeat 2]

Fills one throwaway store (a temporary artifacts folder) with realistic runs through the
lab's own API (``core.bench.scale``: seeded grids, curves, reports, per-sample
predictions; no training), growing it to each size in turn, and at each size times, for
one user, in this process:

- ``overview``, ``train``: the page rendered by Streamlit's AppTest through the real
  entrypoint: ``first``, the first visitor of a server that has never read this store (empty
  caches, no saved runs table); ``restart``, the first visitor after a server restart (empty
  caches, the runs table saved by the server before); ``warm``, the next visitor, served from the
  caches every session shares;
- ``compare 10``, ``compare 30``: Compare with the newest 10 or 30 finished runs selected;
- each visit lands on Overview (as the app's address does), then switches to the page, then picks
  Compare's runs: a page's figure is that whole path, and ``... 1 click`` the longest of its steps,
  what a user waits after one click (where a visit has several);
- ``runs``: ``python -m core runs`` (the newest 100), ``summary``: ``python -m core summary``
  of the newest grid, in-process, output discarded.

Each figure is the best of ``--repeat`` tries (the machine may be shared: the minimum is the
least disturbed), and the table ends with each figure's growth from the smallest size next
to the growth of the store. Nothing is downloaded; the store is deleted at the end.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "dashboard" / "app.py")


def clear_caches() -> None:
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


def page(name: str, select: list[str] | None = None) -> tuple[float, float]:
    """Seconds to reach page ``name`` (a views/ file) for one new session, landing on Overview as the app's
    link does, then switching to the page, then (``select``) choosing Compare's runs: the whole path and its
    slowest step (what a user waits after one click)."""
    from streamlit.testing.v1 import AppTest

    steps = [time.perf_counter()]
    at = AppTest.from_file(APP, default_timeout=600)
    at.run()
    steps.append(time.perf_counter())
    if name != "overview.py":
        at = at.switch_page(f"views/{name}").run()
        steps.append(time.perf_counter())
    if select is not None:
        at.multiselect(key="compare_runs").set_value(select).run()
        steps.append(time.perf_counter())
    if at.exception:
        raise RuntimeError(f"{name}: {at.exception[0].value}")
    waits = [b - a for a, b in zip(steps, steps[1:])]
    return sum(waits), max(waits)


def command(*argv: str) -> float:
    from core.cli import main

    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        status = main(list(argv))
    if status != 0:
        raise RuntimeError(f"python -m core {' '.join(argv)} exited with {status}")
    return time.perf_counter() - t0


def best(fn, repeat: int):
    """The least disturbed of ``repeat`` tries: the minimum, of each figure when ``fn`` returns several."""
    tries = [fn() for _ in range(repeat)]
    return tuple(map(min, zip(*tries))) if isinstance(tries[0], tuple) else min(tries)


def measure(repeat: int) -> dict[str, float]:
    from core.store import RunStore
    from core.store.table import snapshot_path

    newest = RunStore().list_runs(max_results=200)
    finished = newest[newest.status == "FINISHED"].run_id.tolist()
    group = newest.group.iloc[0]
    out = {}
    pages = [("overview", "overview.py", None), ("train", "train.py", None),
             ("compare 10", "compare.py", finished[:10]), ("compare 30", "compare.py", finished[:30])]
    for label, name, select in pages:
        def first(name=name, select=select):
            clear_caches()
            shutil.rmtree(snapshot_path(RunStore()).parent, ignore_errors=True)
            return page(name, select)

        def restart(name=name, select=select):
            clear_caches()
            return page(name, select)

        for visit, fn in (("first", first), ("restart", restart),
                          ("warm", lambda name=name, select=select: page(name, select))):
            out[f"{label} {visit}"], slowest = best(fn, repeat)
            if name != "overview.py":  # several clicks: the longest wait of the visit, too
                out[f"{label} {visit} 1 click"] = slowest
    out["runs"] = best(lambda: command("runs"), repeat)
    out["summary"] = best(lambda: command("summary", group), repeat)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 500, 2000])
    parser.add_argument("--repeat", type=int, default=2, help="tries per figure; the best is kept")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="scale-check-"))
    os.environ["EMOTION_LAB_ARTIFACTS"] = str(folder / "artifacts")
    os.environ["EMOTION_LAB_DATA"] = str(folder / "data")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from core.bench import scale

    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    results: dict[int, dict[str, float]] = {}
    have = 0
    try:
        for n in sorted(args.sizes):
            t0 = time.perf_counter()
            scale.fill_store(n, start=have)
            print(f"store filled to {n} runs (+{n - have} in {time.perf_counter() - t0:.0f} s); measuring...",
                  flush=True)
            have = n
            results[n] = measure(args.repeat)
            print("  " + ", ".join(f"{k} {v:.2f} s" for k, v in results[n].items()), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    sizes = sorted(results)
    first = sizes[0]
    import resource

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nSeconds for one user (best of {args.repeat}; each page figure includes AppTest's own start-up, "
          f"about 0.5-1 s); load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs. This process "
          f"(the pages, the store, AppTest) peaked at {peak_mb:.0f} MB; TensorFlow imported: "
          f"{'yes' if 'tensorflow' in sys.modules else 'no'}.")
    header = f"{'':<26}" + "".join(f"{f'N={n}':>10}" for n in sizes) + "".join(
        f"{f'x{n // first} runs':>12}" for n in sizes[1:])
    print(header)
    for key in results[first]:
        cells = "".join(f"{results[n][key]:>10.2f}" for n in sizes)
        growth = "".join(f"{results[n][key] / results[first][key]:>11.1f}x" for n in sizes[1:])
        print(f"{key:<26}{cells}{growth}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
