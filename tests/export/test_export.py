"""Taking a model out of the lab: exports in every format reload and agree with the Keras model, the model
card lists what the run recorded, the MLflow model loads and serves, ONNX models register and predict
like the run they came from (round trip)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import stored_run
from PIL import Image

from core.cli import main
from core.configs.choices import FER_LABELS
from core.data import datasets
from core.inference import ReferenceModelError, evaluate_reference, export, predict, register_reference
from core.inference import card as model_card
from core.inference.mlflow_model import log_run_model
from core.store import RunStore


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A store of this module's own with one VGG16 run at 32 px (the smallest input the backbones take)."""
    root = tmp_path_factory.mktemp("export")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMOTION_LAB_ARTIFACTS", str(root / "artifacts"))
        store = RunStore()
        run = stored_run(store, "vgg16", 32, summary={"train_time_s": 12.5})
        yield SimpleNamespace(store=store, run=run, root=root, faces=export.test_faces(store, run))


def test_face_model_gives_the_runs_test_probabilities(lab):
    model, spec = export.run_face_model(lab.store, lab.run)
    assert spec.labels == FER_LABELS and (spec.input_size, spec.channels, spec.scaling) == (32, 1, "none")
    assert lab.faces.shape == (21, 32, 32, 1) and lab.faces.max() > 1.0  # gray 0-255, not scaled
    probs = np.asarray(model.predict_on_batch(lab.faces))
    np.testing.assert_allclose(probs, lab.store.predictions(lab.run)["probs"], atol=1e-5)


def test_card_lists_what_the_run_recorded(lab, tmp_path):
    result = export.export_run(lab.run, "keras", tmp_path / "out", store=lab.store)
    report, cfg = lab.store.report(lab.run), lab.store.config(lab.run)
    card = json.loads(result.card_json.read_text())
    assert card == json.loads(json.dumps(result.card))
    assert card["input"]["labels"] == list(FER_LABELS) and card["input"]["input_size"] == 32
    assert (card["input"]["channels"], card["input"]["scaling"], card["input"]["source_size"]) == (1, "none", 48)
    assert card["dataset"]["name"] == "synthetic-tiny"
    assert card["dataset"]["fingerprint"] == lab.store.get(lab.run).data.tags["dataset.fingerprint"]
    assert card["split"]["split_seed"] == cfg.data.split_seed and card["seeds"]["train"] == cfg.train.seed
    assert card["profile"] == cfg.train.profile
    assert card["test"]["accuracy"] == report["accuracy"] and card["test"]["accuracy_ci95"] == report["accuracy_ci"]
    assert card["test"]["macro_f1"] == report["macro_f1"]
    assert list(card["test"]["per_class_f1"].values()) == report["per_class"]["f1"]
    assert card["cost"]["train_time_s"] == 12.5 and card["cost"]["params_total"] > 0
    assert card["lab_version"] == model_card.lab_version() != "unknown"
    assert any("drawn faces" in note for note in card["licence_notes"]) and card["warning"]
    assert card["check"]["images"] == 21 and card["check"]["max_abs_prob_diff"] < 1e-5
    text = result.card_md.read_text()
    for expected in ("synthetic-tiny", "--channels 1 --scaling none", "| disgust |", "train_time_s: 12.5",
                     "Largest absolute probability difference", f"{report['macro_f1']:.4f}"):
        assert expected in text
    assert (tmp_path / "out" / "model.keras").is_file()


def test_export_refuses_bad_format_and_a_used_folder(lab, tmp_path):
    with pytest.raises(export.ExportError, match="format: expected one of savedmodel, onnx, litert, keras"):
        export.export_run(lab.run, "tfjs", tmp_path / "a", store=lab.store)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("keep me")
    with pytest.raises(export.ExportError, match="is not empty"):
        export.export_run(lab.run, "keras", tmp_path / "used", store=lab.store)
    assert main(["export", "no-such-run", "--out", str(tmp_path / "b")]) == 2
    assert main(["export", lab.run]) == 2  # neither --out nor --mlflow


@pytest.mark.slow
def test_every_format_reloads_and_agrees_with_keras(lab, tmp_path):
    """SavedModel, ONNX (ONNX Runtime), LiteRT (TFLite interpreter) and Keras, each loaded in its own runtime."""
    model, _ = export.run_face_model(lab.store, lab.run)
    keras_probs = np.asarray(model.predict_on_batch(lab.faces))
    for fmt in export.FORMATS:
        result = export.export_run(lab.run, fmt, tmp_path / fmt, store=lab.store)
        probs = export.load_export(result.model_path, fmt)(lab.faces)
        assert probs.shape == (21, 7)
        assert np.max(np.abs(probs - keras_probs)) < 1e-4, fmt
        assert result.card["format"] == fmt and result.card["check"]["max_abs_prob_diff"] < 1e-4


@pytest.mark.slow
def test_onnx_export_registered_back_predicts_like_its_run(lab, tmp_path):
    """Round trip: `export --format onnx` then `register-model NAME model.onnx` (same spec as the card)."""
    assert main(["export", lab.run[:10], "--format", "onnx", "--out", str(tmp_path / "onnx")]) == 0
    card = json.loads((tmp_path / "onnx" / "model_card.json").read_text())
    inp = card["input"]
    entry = register_reference("vgg-onnx", tmp_path / "onnx" / "model.onnx", ",".join(inp["labels"]),
                               inp["input_size"], channels=inp["channels"], scaling=inp["scaling"])
    assert entry["outputs"] == "probabilities" and entry["gradcam_layer"] is None
    # Crops at the training images' resolution: both paths then resize them with the same op.
    x, _ = datasets.load_for_run(lab.store.config(lab.run).data).splits["test"]
    crops = [np.asarray(img) for img in x[:6]]
    ours = predict.predict_crops(lab.run, crops, lab.store)
    theirs = predict.predict_crops("ref:vgg-onnx", crops, lab.store)
    np.testing.assert_allclose(theirs, ours, atol=1e-4)
    # The whole predict path (CLI, photo, Grad-CAM asked for: an ONNX model has none) runs it too.
    Image.fromarray(crops[0]).save(tmp_path / "face.png")
    code = main(["predict", str(tmp_path / "face.png"), "--runs", "ref:vgg-onnx", lab.run, "--detector", "whole",
                 "--gradcam-dir", str(tmp_path / "cams"), "--out", str(tmp_path / "rows.csv")])
    assert code == 0
    rows = pd.read_csv(tmp_path / "rows.csv")
    assert sorted(rows["model id"]) == sorted(["ref:vgg-onnx", lab.run])
    np.testing.assert_allclose(rows[[f"p({c})" for c in FER_LABELS]].sum(axis=1), 1.0, atol=1e-3)
    with pytest.raises(ReferenceModelError, match="input_size=48, channels=1 describe"):
        register_reference("wrong-size", tmp_path / "onnx" / "model.onnx", ",".join(inp["labels"]), 48,
                           channels=1, scaling="none")
    with pytest.raises(ReferenceModelError, match="is an ONNX model"):
        evaluate_reference("vgg-onnx", "synthetic-tiny")


def test_export_command_offers_the_formats_keras_exports():
    from core.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    actions = {a.dest: a for a in sub.choices["export"]._actions}
    assert tuple(actions["format"].choices) == tuple(export.FORMATS) == ("savedmodel", "onnx", "litert", "keras")
    assert all(note in actions["format"].help for note in export.FORMAT_NOTES.values())


def test_onnx_file_that_is_not_a_model_is_refused(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a protobuf")
    with pytest.raises(ReferenceModelError, match="broken.onnx could not be loaded as an ONNX model"):
        register_reference("broken", bad, ",".join(FER_LABELS), 32, channels=1, scaling="none")


def test_mlflow_model_loads_and_returns_the_runs_probabilities(lab):
    import mlflow

    logged = log_run_model(lab.run, lab.store, register="emotion-vgg")
    assert logged.uri == f"runs:/{lab.run}/mlflow_model" and logged.registered_name == "emotion-vgg"
    mlflow.set_tracking_uri(lab.store.uri)
    try:
        loaded = mlflow.pyfunc.load_model(logged.uri)
        out = loaded.predict(lab.faces)
        schema = loaded.metadata.get_input_schema()
    finally:
        mlflow.set_tracking_uri(None)
    assert list(out.columns) == list(FER_LABELS)
    np.testing.assert_allclose(out.to_numpy(), lab.store.predictions(lab.run)["probs"], atol=1e-5)
    assert schema.inputs[0].shape == (-1, 32, 32, 1)
    version = lab.store.client.get_model_version("emotion-vgg", logged.version)
    assert "# Model card" in version.description and lab.run in version.description


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_mlflow_models_serve_answers_one_request(lab):
    """`mlflow models serve` on 127.0.0.1, stopped by the test (and by `timeout` if the test dies first)."""
    assert main(["export", lab.run, "--mlflow"]) == 0  # logs runs:/RUN/mlflow_model, as the README says
    uri = f"runs:/{lab.run}/mlflow_model"
    port = _free_port()
    # The scoring server execs `uvicorn` by name: the virtualenv's bin folder goes first on PATH, as when activated.
    env = {**os.environ, "MLFLOW_TRACKING_URI": lab.store.uri,
           "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])}
    mlflow_cli = [sys.executable, "-m", "mlflow", "models", "serve", "-m", uri, "--env-manager", "local",
                  "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    server = subprocess.Popen(["timeout", "300", *mlflow_cli], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the scoring server did not start: {server.stderr.read()[-2000:]!r}") from None
                time.sleep(1)
        body = json.dumps({"inputs": lab.faces[:2].tolist()}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    rows = answer["predictions"]
    assert [list(r) for r in rows] == [list(FER_LABELS)] * 2
    np.testing.assert_allclose([[r[k] for k in FER_LABELS] for r in rows],
                               lab.store.predictions(lab.run)["probs"][:2], atol=1e-5)


def _export_section(run_id: str) -> None:
    from dashboard.views import compare_export

    compare_export.render([run_id], {run_id: "vgg16/scratch-adam"})


@pytest.mark.slow
def test_compare_section_offers_the_export_as_a_zip(lab, st_clean, downloads):
    import io
    import zipfile

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_export_section, args=(lab.run,), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert "Take a model out of the lab" in [s.value for s in at.subheader]
    assert at.selectbox(key="compare_export_format").options[:2] == ["savedmodel: " + export.FORMAT_NOTES["savedmodel"],
                                                                      "onnx: " + export.FORMAT_NOTES["onnx"]]
    at.selectbox(key="compare_export_format").set_value("keras").run()
    at.button(key="compare_export_go").click().run()
    assert not at.exception, at.exception
    with zipfile.ZipFile(io.BytesIO(downloads["compare_export_download"])) as zf:
        assert sorted(zf.namelist()) == ["MODEL_CARD.md", "model.keras", "model_card.json"]
        assert json.loads(zf.read("model_card.json"))["run_id"] == lab.run
    assert any("Largest absolute probability difference" in c.value for c in at.caption)


def _channels_first_onnx(path, size: int, weights: np.ndarray, bias: np.ndarray) -> None:
    """A PyTorch-style ONNX classifier (the HSEmotion kind): NCHW input, mean colour -> dense -> softmax."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["flat"]),
         helper.make_node("MatMul", ["flat", "W"], ["scores"]),
         helper.make_node("Add", ["scores", "b"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probs"], axis=1)],
        "hse_mini",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", len(bias)])],
        [numpy_helper.from_array(weights.astype(np.float32), "W"), numpy_helper.from_array(bias.astype(np.float32), "b")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), path)


def test_published_style_onnx_model_channels_first_with_torch_scaling_predicts(tmp_path, lab):
    labels = ["Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise"]
    rng = np.random.default_rng(5)
    weights, bias = rng.normal(size=(3, 8)), rng.normal(size=8)
    path = tmp_path / "hse_mini.onnx"
    _channels_first_onnx(path, 16, weights, bias)
    with pytest.raises(ReferenceModelError, match="'torch' normalises each colour by ImageNet statistics"):
        register_reference("hse-mini", path, labels, 16, channels=1, scaling="torch")
    entry = register_reference("hse-mini", path, labels, 16, channels=3, scaling="torch")
    assert entry["labels"][:2] == ["angry", "Contempt"] and entry["outputs"] == "probabilities"
    crop = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    got = predict.predict_crops("ref:hse-mini", [crop], lab.store)
    x = (crop / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]  # torchvision's ImageNet normalisation
    logits = x.mean(axis=(0, 1)) @ weights + bias
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(got[0], expected, atol=1e-5)
