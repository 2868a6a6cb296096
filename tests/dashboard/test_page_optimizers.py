"""The Optimizers page under AppTest: its state comes from the link, its charts from the real optimizers."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import texts
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "dashboard" / "views" / "optimizers.py")


def open_page(**query) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def figure(at: AppTest, key: str) -> dict:
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith(key) or key in c.proto.id)
    return json.loads(chart.proto.spec)


def values(v) -> np.ndarray:
    """A trace's data as numbers: plotly sends NumPy arrays base64-encoded."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
    return np.asarray(v)


@pytest.mark.usefixtures("st_clean")
def test_page_opens_with_the_labs_settings_and_animates_five_paths():
    at = open_page()
    assert not at.exception
    assert at.selectbox(key="surface").value == "quadratic"
    assert at.multiselect(key="opt").value == ["plain-sgd", "sgd", "rmsprop", "adam", "adamw"]
    assert at.select_slider(key="lr").value == 1e-3 and at.slider(key="steps").value == 200
    assert at.slider(key="momentum").value == 0.9 and at.select_slider(key="wd").value == 1e-4
    paths = figure(at, "optimizers_paths")
    assert [t["name"] for t in paths["data"][2:]] == ["SGD (no momentum)", "SGD + Nesterov momentum", "RMSprop", "Adam", "AdamW"]
    assert len(paths["frames"]) == 100 and paths["layout"]["updatemenus"][0]["buttons"][0]["label"] == "▶ Play"
    loss = figure(at, "optimizers_loss")
    assert len(loss["data"]) == 5 and len(values(loss["data"][0]["y"])) == 201
    assert "Curvature is 50 times larger" in texts(at)
    assert "keras.optimizers" in texts(at) and "200 steps from (-0.150, 0.100)" in texts(at)


@pytest.mark.usefixtures("st_clean")
def test_a_link_restores_every_control():
    query = {"surface": "rosenbrock", "opt": ["rmsprop", "adam"], "lr": "0.01", "steps": "50", "present": "true",
             "rosenbrock_x": "-0.1", "rosenbrock_y": "0.2", "momentum": "0.5", "rho": "0.8", "beta1": "0.7",
             "beta2": "0.99", "wd": "0.01", "noise_seed": "3"}
    at = open_page(**query)
    assert not at.exception
    controls = {"surface": at.selectbox(key="surface").value, "opt": at.multiselect(key="opt").value,
                "lr": at.select_slider(key="lr").value, "steps": at.slider(key="steps").value,
                "present": at.toggle(key="present").value, "rosenbrock_x": at.slider(key="rosenbrock_x").value,
                "rosenbrock_y": at.slider(key="rosenbrock_y").value, "momentum": at.slider(key="momentum").value,
                "rho": at.slider(key="rho").value, "beta1": at.slider(key="beta1").value,
                "beta2": at.select_slider(key="beta2").value, "wd": at.select_slider(key="wd").value,
                "noise_seed": at.number_input(key="noise_seed").value}
    assert controls == {"surface": "rosenbrock", "opt": ["rmsprop", "adam"], "lr": 0.01, "steps": 50, "present": True,
                        "rosenbrock_x": pytest.approx(-0.1), "rosenbrock_y": pytest.approx(0.2), "momentum": 0.5,
                        "rho": 0.8, "beta1": 0.7, "beta2": 0.99, "wd": 0.01, "noise_seed": 3}
    # The charts follow the link: two optimizers, 50 steps, from the linked start; presentation fonts.
    paths = figure(at, "optimizers_paths")
    assert [t["name"] for t in paths["data"][2:]] == ["RMSprop", "Adam"]
    assert paths["frames"][-1]["name"] == "50" and paths["layout"]["font"]["size"] == 20
    assert values(paths["data"][2]["x"])[0] == pytest.approx(-0.1, abs=1e-6)
    assert "(hidden while presenting)" in at.expander[0].label


@pytest.mark.usefixtures("st_clean")
def test_compare_link_presets_the_runs_optimizer_and_learning_rate():
    from dashboard import services

    link = services.optimizers_link({"optimizer": {"name": "sgd", "learning_rate": 3e-5, "momentum": 0.8}})
    at = open_page(**link)
    assert not at.exception
    assert at.multiselect(key="opt").value == ["sgd"]  # one name, one meaning: the lab's SGD has momentum
    assert at.select_slider(key="lr").value == 3e-5 and at.slider(key="momentum").value == 0.8
    # A rate that is not on the slider's scale is added to it, not dropped.
    at = open_page(**services.optimizers_link({"optimizer": {"name": "adam", "learning_rate": 0.00042}}))
    assert at.multiselect(key="opt").value == ["adam"] and at.select_slider(key="lr").value == 0.00042


@pytest.mark.slow
def test_classroom_experiment_animates_and_says_what_was_trained(st_clean, monkeypatch):
    from dashboard import services
    from dashboard.services import teaching

    tiny = {**services.classroom_defaults(), "dataset": "synthetic-tiny", "input_size": 32, "epochs": 2,
            "max_train": None, "max_eval": None, "batch_size": 8}
    monkeypatch.setattr(services, "classroom_defaults", lambda: tiny)
    monkeypatch.setattr(services, "classroom_experiment", lambda: teaching.classroom_experiment(**tiny))
    at = open_page()
    assert "Trains **only a classifier head**" in texts(at) and "**resnet50** backbone" in texts(at)
    at.button(key="classroom_start").click().run()
    assert not at.exception
    assert "ImageNet weights for resnet50 are not cached" in texts(at)  # offline: said plainly
    table = at.dataframe[0].value
    assert sorted(table.optimizer) == ["Adam", "RMSprop", "SGD + Nesterov momentum"]
    assert (table.epoch == 2).all()
    curves = figure(at, "classroom_accuracy")
    assert {t["legendgrouptitle"]["text"] for t in curves["data"] if t.get("legendgrouptitle")} == {
        "Adam", "RMSprop", "SGD + Nesterov momentum"}
    assert "measured on 21 validation images of synthetic-tiny" in texts(at)
