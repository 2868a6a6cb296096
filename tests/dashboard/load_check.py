"""Bounded load check of the dashboard on loopback (a script, not a test: pytest does not collect it).

    .venv/bin/python tests/dashboard/load_check.py [--sessions 8] [--rounds 3] [--driver protocol|browser]

Serves the dashboard as the README does (from the project root, so .streamlit/config.toml
applies) on a free loopback port with a throwaway artifacts folder, trains one tiny model so
Predict has something to answer with, queues a second training job that runs throughout,
then drives N concurrent sessions, each cycling Overview, Train, Compare and Predict (uploading
scikit-image's astronaut) for a fixed number of rounds. The sessions speak Streamlit's own protocol
(tests/dashboard/ws_session.py) by default, so the times are the server's, as users on their own
machines would see them; ``--driver browser`` runs them in headless Chromium instead, on this machine,
where the browsers take most of the CPU. It reports
page times (p50/p95 per page), errors (timeouts, failed loads) and exceptions shown in pages,
the server's memory (idle, after the pages that need no model, after Predict, after the load) and
where the machine's CPU went during the load (the server, the training job, the browsers). With
``--profile`` (needs py-spy), the server is sampled during the load and the lab's functions that
took most of its time are listed. Every request goes to 127.0.0.1 and the loop is bounded in rounds
and time: it stops by itself.
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
import threading
import time
from collections import Counter
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


class CpuMeter:
    """CPU seconds used by every process on the machine while it runs, summed by role (sampled each second,
    so a process that exits between two samples loses at most its last second)."""

    ROLES = ("server", "training job", "browsers", "other")

    def __init__(self, server_pid: int):
        self.server_pid = server_pid
        self.role: dict[tuple, str] = {}
        self.base: dict[tuple, float] = {}
        self.used: dict[tuple, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _role(self, proc) -> str:
        import psutil

        try:
            if proc.pid == self.server_pid:
                return "server"
            cmd = " ".join(proc.cmdline())
        except psutil.Error:
            return "other"
        if "core.jobs.context" in cmd or " worker" in cmd and "-m core" in cmd:
            return "training job"
        if "chrom" in cmd or "playwright" in cmd or "node" in cmd.split(" ")[0]:
            return "browsers"
        return "other"

    def _sample(self, first: bool = False) -> None:
        import psutil

        for proc in psutil.process_iter():
            try:
                key = (proc.pid, proc.create_time())
                times = proc.cpu_times()
                if key not in self.role:
                    self.role[key] = self._role(proc)
                    # Processes started during the load count from zero; those already running, from now.
                    self.base[key] = times.user + times.system if first else 0.0
                self.used[key] = times.user + times.system
            except psutil.Error:
                continue

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self._sample()

    def __enter__(self):
        self._sample(first=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def by_role(self) -> dict[str, float]:
        out = dict.fromkeys(self.ROLES, 0.0)
        for key, used in self.used.items():
            out[self.role[key]] += used - self.base[key]
        return out


def profile_summary(raw: Path, top: int = 12) -> list[str]:
    """Where the server's busy samples (a thread holding the GIL, so working, not waiting) went: the lab's
    functions (dashboard/, core/) by the share of samples they were on the stack for, then any code's
    functions by the share they were the innermost frame for (a library's cost the lab's frames hide)."""
    inclusive, leaf, total = Counter(), Counter(), 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        total += int(count)
        frames = stack.split(";")
        leaf[frames[-1]] += int(count)
        for frame in dict.fromkeys(f for f in frames if "dashboard/" in f or "core/" in f):
            inclusive[frame] += int(count)
    if not total:
        return []
    return ([f"{n / total:6.1%}  {frame}" for frame, n in inclusive.most_common(top)] + ["innermost frames:"]
            + [f"{n / total:6.1%}  {frame}" for frame, n in leaf.most_common(top)])


def photo_for(photo: Path, who: int, r: int) -> Path:
    """The portrait as session ``who`` uploads it in round ``r`` (both 0-255): two corner pixels differ, so every
    upload is a new photo to detect and score (Predict caches what it has already analysed), with the same faces."""
    from PIL import Image

    out = photo.with_name(f"{photo.stem}-{who}-{r}.png")
    if not out.exists():
        with Image.open(photo) as img:
            img = img.convert("RGB")
            img.putpixel((0, 0), (who, r, 0))
            img.putpixel((1, 0), (r, who, 255))
            img.save(out)
    return out


def core_cli(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)


async def session(browser, url: str, rounds: int, photo: Path, times: dict, problems: list, who: int,
                  pages: tuple[str, ...] = tuple(PAGES)) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_S * 1000)
    for r in range(rounds):
        for name in pages:
            marker = PAGES[name]
            start = time.perf_counter()
            try:
                await page.goto(f"{url}/{'' if name == 'overview' else name}")
                if name == "predict":
                    await page.get_by_text("Photos", exact=True).first.wait_for()
                    await page.locator("input[type=file]").first.set_input_files(str(photo_for(photo, who, r)))
                await page.get_by_text(marker, exact=False).first.wait_for()
                # Streamlit shows "Running..." while the script runs: the page is done when it goes.
                await page.locator("[data-testid=stStatusWidget]").wait_for(state="hidden")
                times.setdefault(name, []).append(time.perf_counter() - start)
                for exc in await page.locator("[data-testid=stException]").all_inner_texts():
                    problems.append(f"session {who} round {r} {name}: exception: {exc.splitlines()[0]}")
            except Exception as exc:  # a timeout or a failed load is what this check is looking for
                problems.append(f"session {who} round {r} {name}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    await context.close()


async def protocol_session(url: str, rounds: int, photo: Path, times: dict, problems: list, who: int,
                           pages: tuple[str, ...] = tuple(PAGES), server_cpu: dict | None = None) -> None:
    """One user over Streamlit's protocol; with ``server_cpu`` (alone on the server), the server's CPU
    seconds per page are recorded too."""
    import psutil
    from ws_session import ProtocolSession

    server = next((p for p in psutil.process_iter(["cmdline"]) if "streamlit" in " ".join(p.info["cmdline"] or [])
                   and url.rsplit(":", 1)[1] in " ".join(p.info["cmdline"] or [])), None)

    def cpu() -> float:
        t = server.cpu_times() if server else None
        return t.user + t.system if t else 0.0

    async with ProtocolSession(url, PAGE_TIMEOUT_S) as s:
        for r in range(rounds):
            for name in pages:
                path = "" if name == "overview" else name
                start, used = time.perf_counter(), cpu()
                try:
                    got = await s.visit(path)
                    if name == "predict":
                        mine = photo_for(photo, who, r)
                        got = await s.upload(path, got.uploaders["Photos"], mine.name, mine.read_bytes(), "image/png")
                    if not got.shows(PAGES[name]):
                        problems.append(f"session {who} round {r} {name}: {PAGES[name]!r} not shown")
                    problems.extend(f"session {who} round {r} {name}: exception: {e}" for e in got.exceptions)
                    times.setdefault(name, []).append(time.perf_counter() - start)
                    if server_cpu is not None:
                        server_cpu.setdefault(name, []).append(cpu() - used)
                except Exception as exc:  # a timeout or a refused upload is what this check is looking for
                    problems.append(f"session {who} round {r} {name}: {type(exc).__name__}: {exc}")


async def drive(url: str, sessions: int, rounds: int, photo: Path, pages: tuple[str, ...] = tuple(PAGES),
                driver: str = "protocol", server_cpu: dict | None = None, first: int = 0) -> tuple[dict, list]:
    """``sessions`` concurrent users, numbered from ``first`` (each number uploads photos of its own)."""
    times: dict[str, list[float]] = {}
    problems: list[str] = []
    if driver == "protocol":
        await asyncio.gather(*[protocol_session(url, rounds, photo, times, problems, first + i, pages, server_cpu)
                               for i in range(sessions)])
        return times, problems
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        await asyncio.gather(*[session(browser, url, rounds, photo, times, problems, first + i, pages)
                               for i in range(sessions)])
        await browser.close()
    return times, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="sample the server with py-spy during the load")
    parser.add_argument("--driver", choices=("protocol", "browser"), default="protocol",
                        help="protocol: sessions speak Streamlit's websocket protocol (the server's time); "
                             "browser: headless Chromium on this machine (adds the browsers' rendering)")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if args.profile and not Path(spy).exists():
        print("error: --profile needs py-spy (pip install py-spy)", file=sys.stderr)
        return 2
    # Stopped from outside (kill, timeout): still stop the server, its worker and the job.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.driver == "browser" and not Path(CHROMIUM).exists():
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
        # growth under load is what this check looks for. Predict comes last: it is the page that loads them.
        alone: dict[str, list[float]] = {}
        asyncio.run(drive(url, 1, 1, photo, ("overview", "train", "compare"), args.driver, alone))
        no_model = rss_mb(server.pid)
        asyncio.run(drive(url, 1, 1, photo, ("predict",), args.driver, alone, first=255))
        before = rss_mb(server.pid)
        # Once more, warm (with a photo not analysed yet): what one user's page costs the server once models
        # and caches are loaded.
        alone.clear()
        asyncio.run(drive(url, 1, 1, photo, tuple(PAGES), args.driver, alone, first=254))
        load_before = os.getloadavg()[0]
        raw = work / "server-profile.txt"
        sampler = subprocess.Popen([spy, "record", "--pid", str(server.pid), "--format", "raw", "--rate", "20", "--gil",
                                    "--output", str(raw)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL) if args.profile else None
        start = time.perf_counter()
        with CpuMeter(server.pid) as cpu:
            times, problems = asyncio.run(drive(url, args.sessions, args.rounds, photo, driver=args.driver))
        wall = time.perf_counter() - start
        after = rss_mb(server.pid)
        if sampler is not None:
            sampler.send_signal(signal.SIGINT)  # py-spy writes its samples when interrupted
            sampler.wait(timeout=60)
            hot = profile_summary(raw) if raw.exists() else ["(py-spy wrote no samples)"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        stop_worker(env)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{args.sessions} sessions ({args.driver}) x {args.rounds} rounds of Overview, Train, Compare, Predict "
          f"(upload) on {url}, one job training; {wall:.0f} s, load average {load_before:.1f} at the start")
    if alone:
        print("one user alone, warm: server CPU per page " + ", ".join(f"{k} {v[0]:.2f} s" for k, v in alone.items()))
    print(f"{'page':<10} {'loads':>5} {'p50 s':>7} {'p95 s':>7} {'max s':>7}")
    for name in PAGES:
        t = np.array(times.get(name, []))
        if len(t):
            print(f"{name:<10} {len(t):>5} {np.percentile(t, 50):>7.1f} {np.percentile(t, 95):>7.1f} {t.max():>7.1f}")
        else:
            print(f"{name:<10} {0:>5} {'-':>7} {'-':>7} {'-':>7}")
    print(f"server memory (RSS): {idle:.0f} MB idle, {no_model:.0f} MB after Overview, Train and Compare (no model "
          f"loaded yet), {before:.0f} MB after Predict, {after:.0f} MB after the load")
    used = cpu.by_role()
    print(f"CPU during the load: {sum(used.values()):.0f} s on {os.cpu_count()} cores in {wall:.0f} s: "
          + ", ".join(f"{role} {sec:.0f} s ({sec / max(sum(used.values()), 1e-9):.0%})" for role, sec in used.items()))
    if args.profile:
        print("where the server's busy time went (share of samples holding the GIL with the function on the stack):")
        for line in hot:
            print("  " + line)
    print(f"errors and page exceptions: {len(problems)}")
    for line in problems[:20]:
        print("  " + line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
