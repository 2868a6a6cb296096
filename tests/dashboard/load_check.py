"""Bounded load check of the dashboard on loopback (a script, not a test: pytest does not collect it).

    .venv/bin/python tests/dashboard/load_check.py [--sessions 8] [--rounds 3]

Serves the dashboard as the README does (from the project root, so .streamlit/config.toml
applies) on a free loopback port with a throwaway artifacts folder, trains one tiny model so
Predict has something to answer with, queues a second training job that runs throughout,
then drives N concurrent headless Chromium sessions, each cycling Overview, Train, Compare
and Predict (uploading scikit-image's astronaut) for a fixed number of rounds. It reports
page times (p50/p95 per page), errors (timeouts, failed loads) and exceptions shown in pages,
and the server's memory before and after. Every request goes to 127.0.0.1 and the loop is
bounded in rounds and time: it stops by itself.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# The browser test's helpers: Python runs this script with tests/, where both live, as its first import folder.
from test_e2e_browser import CHROMIUM, ROOT, free_port, stop_worker, wait_healthy

# page -> text that is visible once the page has rendered its main content
PAGES = {"overview": "Samples per class", "train": "estimated time", "compare": "Training curves",
         "predict": "All predictions"}
PAGE_TIMEOUT_S = 180


def rss_mb(pid: int) -> float:
    """Resident memory of one process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def core_cli(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)


async def session(browser, url: str, rounds: int, photo: Path, times: dict, problems: list, who: int) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_S * 1000)
    for r in range(rounds):
        for name, marker in PAGES.items():
            start = time.perf_counter()
            try:
                await page.goto(f"{url}/{'' if name == 'overview' else name}")
                if name == "predict":
                    await page.get_by_text("Photos", exact=True).first.wait_for()
                    await page.locator("input[type=file]").first.set_input_files(str(photo))
                await page.get_by_text(marker, exact=False).first.wait_for()
                # Streamlit shows "Running..." while the script runs: the page is done when it goes.
                await page.locator("[data-testid=stStatusWidget]").wait_for(state="hidden")
                times.setdefault(name, []).append(time.perf_counter() - start)
                for exc in await page.locator("[data-testid=stException]").all_inner_texts():
                    problems.append(f"session {who} round {r} {name}: exception: {exc.splitlines()[0]}")
            except Exception as exc:  # a timeout or a failed load is what this check is looking for
                problems.append(f"session {who} round {r} {name}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    await context.close()


async def drive(url: str, sessions: int, rounds: int, photo: Path) -> tuple[dict, list]:
    from playwright.async_api import async_playwright

    times: dict[str, list[float]] = {}
    problems: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        await asyncio.gather(*[session(browser, url, rounds, photo, times, problems, i) for i in range(sessions)])
        await browser.close()
    return times, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    # Stopped from outside (kill, timeout): still stop the server, its worker and the job.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not Path(CHROMIUM).exists():
        print("error: needs Debian's chromium (apt-get install chromium)", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="emotion-lab-load-"))
    env = {**os.environ, "EMOTION_LAB_ARTIFACTS": str(work / "artifacts"), "EMOTION_LAB_DATA": str(work / "data"),
           "KERAS_HOME": str(work / "keras"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("MLFLOW_TRACKING_URI", None)
    photo = work / "astronaut.png"
    from PIL import Image
    from skimage import data as skdata

    Image.fromarray(skdata.astronaut()).save(photo)
    print("training a tiny model for Predict ...", flush=True)
    core_cli(env, "train", "--dataset", "synthetic-small", "--arch", "vgg16", "--config", "scratch-adam",
             "--epochs", "1", "--input-size", "32", "--batch-size", "16")

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port", str(port)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_healthy(url, 60):
            print("error: the dashboard did not start", file=sys.stderr)
            return 1
        # One job trains throughout the check, in the worker the dashboard started.
        core_cli(env, "submit", "--dataset", "synthetic", "--arch", "resnet50", "--configs", "scratch-adam",
                 "--epochs", "2", "--input-size", "48", "--max-train", "700")
        idle = rss_mb(server.pid)
        # One session visits every page once first: models and TensorFlow load once per server, and
        # growth under load is what this check looks for.
        asyncio.run(drive(url, 1, 1, photo))
        before = rss_mb(server.pid)
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        times, problems = asyncio.run(drive(url, args.sessions, args.rounds, photo))
        wall = time.perf_counter() - start
        after = rss_mb(server.pid)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        stop_worker(env)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{args.sessions} sessions x {args.rounds} rounds of Overview, Train, Compare, Predict (upload) on "
          f"{url}, one job training; {wall:.0f} s, load average {load_before:.1f} at the start")
    print(f"{'page':<10} {'loads':>5} {'p50 s':>7} {'p95 s':>7} {'max s':>7}")
    for name in PAGES:
        t = np.array(times.get(name, []))
        if len(t):
            print(f"{name:<10} {len(t):>5} {np.percentile(t, 50):>7.1f} {np.percentile(t, 95):>7.1f} {t.max():>7.1f}")
        else:
            print(f"{name:<10} {0:>5} {'-':>7} {'-':>7} {'-':>7}")
    print(f"server memory (RSS): {idle:.0f} MB idle, {before:.0f} MB after one warm-up visit of each page, "
          f"{after:.0f} MB after the load")
    print(f"errors and page exceptions: {len(problems)}")
    for line in problems[:20]:
        print("  " + line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
