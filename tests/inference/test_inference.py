"""Predict: faces in real photos scored by stored runs and registered reference models,
Grad-CAM for both backbones, reference registration and evaluation, and the CLI."""
from __future__ import annotations

from types import SimpleNamespace

import keras
import numpy as np
import pytest
from conftest import stored_run, tiny_config
from PIL import Image
from skimage import data as skdata

from core import inference
from core.cli import main
from core.configs.choices import FER_LABELS
from core.data import datasets
from core.data.pipeline import make_pipeline
from core.inference import ReferenceModelError, gradcam, predict, predictors
from core.inference.faces import to_gray
from core.store import RunStore
from core.train import models

FER = list(FER_LABELS)
# Her face, checked by eye (see test_faces.py).
ASTRONAUT_FACE = (177, 65, 95, 95)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A store of this module's own with resnet50 at 32 px (the smoke size) and vgg16 at
    48 px (which gives VGG16 a 3x3 Grad-CAM grid)."""
    root = tmp_path_factory.mktemp("inference")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMOTION_LAB_ARTIFACTS", str(root / "artifacts"))
        store = RunStore()
        resnet, vgg = stored_run(store, "resnet50", 32), stored_run(store, "vgg16", 48)
        ds = datasets.load_for_run(tiny_config().data)
        yield SimpleNamespace(store=store, resnet=resnet, vgg=vgg, ds=ds, root=root)


def _small_cnn(softmax: bool = True) -> keras.Model:
    """A FER2013-style reference network: 64x64 grayscale in, 7 emotions out."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((64, 64, 1))
    x = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(16, 3, activation="relu", name="last_conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(7, activation="softmax" if softmax else None)(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def reference(lab):
    path = lab.root / "fer_mini.keras"
    _small_cnn().save(path)
    entry = inference.register_reference("fer-mini", path, ",".join(FER), input_size=64, channels=1, scaling="0-1")
    return SimpleNamespace(id="ref:fer-mini", path=path, entry=entry)


def _iou(a, b) -> float:
    iw = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return iw * ih / (a[2] * a[3] + b[2] * b[3] - iw * ih)


@pytest.mark.slow
def test_list_predictors_describes_runs_and_references(lab, reference):
    found = {p["id"]: p for p in inference.list_predictors()}
    assert found[lab.resnet]["note"] == inference.DRAWN_FACES_NOTE and not found[lab.resnet]["for_photos"]
    assert found[lab.resnet]["trained_on"] == "synthetic-tiny"
    assert found[reference.id]["for_photos"] and found[reference.id]["trained_on"] == "the operator's registered file"
    res, vgg, ref = found[lab.resnet], found[lab.vgg], found[reference.id]
    assert (res["kind"], res["arch"], res["input_size"], res["source_size"]) == ("run", "resnet50", 32, 48)
    assert res["class_names"] == FER and "resnet50/scratch-adam" in res["label"]
    assert (vgg["arch"], vgg["input_size"], vgg["gradcam"]) == ("vgg16", 48, True)
    assert (ref["kind"], ref["input_size"], ref["color"], ref["class_names"]) == ("reference", 64, "gray", FER)
    assert reference.entry["gradcam_layer"] == "last_conv" and reference.entry["outputs"] == "probabilities"


def test_astronaut_face_is_scored_by_every_model(lab, reference):
    ids = [lab.resnet, lab.vgg, reference.id]
    result = inference.predict_faces(skdata.astronaut(), ids)
    assert result["message"] is None and len(result["faces"]) == 1
    face = result["faces"][0]
    assert _iou(face["box"], ASTRONAUT_FACE) > 0.6
    for pid in ids:
        pred = face["predictions"][pid]
        probs = np.array(list(pred["probs"].values()))
        assert list(pred["probs"]) == FER
        np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-5)
        assert pred["top_label"] == FER[int(probs.argmax())] and pred["probability"] == pytest.approx(probs.max())
        # One batch per model, the same numbers as scoring the crop on its own.
        np.testing.assert_allclose(inference.predict_crops(pid, [face["crop"]])[0], probs, atol=1e-5)
    # Both runs learnt from drawn faces: shown, but the reference model alone votes and leads.
    verdict = face["verdict"]
    assert verdict.leader == reference.id and verdict.voters == (reference.id,)
    assert verdict.label == face["predictions"][reference.id]["top_label"]
    assert set(verdict.abstain) == {lab.resnet, lab.vgg} and face["n_models"] == 3
    assert result["detector"] == "mtcnn" and len(face["landmarks"]) == 5

    timings = result["timings"]
    assert timings["detection_ms"] > 0 and timings["total_ms"] >= timings["detection_ms"]
    for pid in ids:
        assert timings["models"][pid]["preprocess_ms"] > 0 and timings["models"][pid]["predict_ms"] > 0

    crop = face["crop"]
    for pid in ids:
        cam = face["gradcam"][pid]
        assert cam["overlay"].shape == crop.shape and cam["overlay"].dtype == np.uint8
        assert cam["heatmap"].shape == crop.shape[:2] and np.isfinite(cam["heatmap"]).all()
        assert 0.0 <= cam["heatmap"].min() and cam["heatmap"].max() <= 1.0
    # ResNet50 at 32 px ends in a single 1x1 cell; VGG16 at 48 px has a 3x3 grid to localise with.
    assert face["gradcam"][lab.resnet]["resolution"] == (1, 1)
    assert face["gradcam"][lab.vgg]["resolution"] == (3, 3) and face["gradcam"][lab.vgg]["heatmap"].std() > 0.01

    again = inference.predict_faces(skdata.astronaut(), ids, gradcam=False)
    assert all(t["load_ms"] == 0.0 for t in again["timings"]["models"].values())  # cached in memory
    assert again["faces"][0]["gradcam"] == {}


def test_photo_without_a_face_says_so_and_suggests_whole(lab):
    result = inference.predict_faces(skdata.coffee(), [lab.resnet])
    assert result["faces"] == [] and "whole" in result["message"]


def test_whole_detector_scores_a_48px_gray_face_like_the_test_evaluation(lab):
    x, _ = lab.ds.splits["test"]
    stored = lab.store.predictions(lab.resnet)["probs"]
    for i in (0, 7):
        result = inference.predict_faces(x[i], [lab.resnet], detector="whole", gradcam=False)
        (face,) = result["faces"]
        assert face["box"] == (0, 0, 48, 48)
        probs = list(face["predictions"][lab.resnet]["probs"].values())
        np.testing.assert_allclose(probs, stored[i], atol=1e-4)


def test_preprocessing_equals_the_training_pipeline(lab):
    x, y = lab.ds.splits["test"]
    for run_id, arch, size in ((lab.resnet, "resnet50", 32), (lab.vgg, "vgg16", 48)):
        expected, _ = next(iter(make_pipeline(x[:5], y[:5], arch=arch, input_size=size, num_classes=7,
                                                       batch_size=5, training=False)))
        predictor = predictors.run_predictor(lab.store, run_id)
        gray = predict.prepare(predictor, list(x[:5]))
        colour = predict.prepare(predictor, [np.repeat(img[..., None], 3, axis=2) for img in x[:5]])
        assert gray.shape == (5, size, size, 3)
        np.testing.assert_allclose(gray, expected.numpy(), atol=1e-4)
        np.testing.assert_allclose(colour, gray, atol=1e-6)


@pytest.mark.parametrize("arch", ["resnet50", "vgg16"])
def test_gradcam_has_the_crop_shape_and_localises(lab, arch):
    from core.configs import ModelConfig

    crop = skdata.astronaut()[40:180, 160:290]  # her face, 140x130
    model = models.build_model(ModelConfig(arch=arch, weights="none", input_size=48), 7, seed=1)
    target = models.get_spec(arch).last_conv_layer
    x = models.preprocess(arch, to_gray(crop)[None], 48)
    probs = np.asarray(model(x, training=False))
    cls = int(probs[0].argmax())

    # The CAM path (maps -> remaining layers -> pre-softmax score) is the model itself.
    graph = gradcam.cam_graph(model, target, nested=arch)
    h = graph.inner(x, training=False)
    for layer in graph.rest:
        h = layer(h, training=False)
    scores = np.asarray(gradcam.class_scores(graph.last, h))
    np.testing.assert_allclose(np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True), probs, atol=1e-5)

    cams = inference.grad_cam(model, x, [cls], target, nested=arch)
    assert cams.shape == ((1, 2, 2) if arch == "resnet50" else (1, 3, 3))
    heat, overlay = inference.overlay_heatmap(crop, cams[0])
    assert heat.shape == crop.shape[:2] and overlay.shape == crop.shape and overlay.dtype == np.uint8
    assert np.isfinite(heat).all() and heat.max() == pytest.approx(1.0) and heat.std() > 0.01
    assert not np.array_equal(overlay, crop)


def test_reference_registration_names_the_bad_value(lab, reference, tmp_path):
    labels = ",".join(FER)
    missing = tmp_path / "nowhere.keras"
    with pytest.raises(ReferenceModelError, match="nowhere.keras does not exist"):
        inference.register_reference("x", missing, labels, 64)
    with pytest.raises(ReferenceModelError, match=r"outputs 7 class scores but 6 labels.*angry,disgust"):
        inference.register_reference("x", reference.path, FER[:6], 64)
    with pytest.raises(ReferenceModelError, match=r"expects input \(64, 64, 1\).*channels=3"):
        inference.register_reference("x", reference.path, labels, 64, channels=3, scaling="-1-1")
    with pytest.raises(ReferenceModelError, match=r"input_size=48"):
        inference.register_reference("x", reference.path, labels, 48)
    with pytest.raises(ReferenceModelError, match="scaling='zero-one'"):
        inference.register_reference("x", reference.path, labels, 64, scaling="zero-one")
    with pytest.raises(ReferenceModelError, match="'happy'"):
        inference.register_reference("x", reference.path, "angry,happy,Happiness,sad,fear,surprise,neutral", 64)
    with pytest.raises(ReferenceModelError, match="already registered"):
        inference.register_reference("fer-mini", reference.path, labels, 64)
    not_a_model = tmp_path / "fake.keras"
    not_a_model.write_bytes(b"not a zip")
    with pytest.raises(ReferenceModelError, match="fake.keras could not be loaded"):
        inference.register_reference("x", not_a_model, labels, 64)
    assert "x" not in inference.list_references()


def test_hdf5_reference_with_a_named_scaling_registers_from_the_cli(lab, tmp_path, capsys):
    path = tmp_path / "fer_mini.hdf5"  # Keras' legacy HDF5 format under its other common name
    _small_cnn().save(path)
    assert main(["register-model", "fer-hdf5", str(path), "--labels", ",".join(FER), "--input-size", "64",
                 "--scaling", "symmetric"]) == 0
    assert inference.list_references()["fer-hdf5"]["scaling"] == "-1-1"
    with pytest.raises(inference.ReferenceModelError, match=r"symmetric \(-1-1\).*Received: scaling='half'"):
        inference.register_reference("x", path, FER, 64, scaling="half")


def test_reference_with_logit_outputs_gets_softmax(lab, tmp_path):
    path = tmp_path / "logits.keras"
    _small_cnn(softmax=False).save(path)
    entry = inference.register_reference("fer-logits", path, FER, 64)
    assert entry["outputs"] == "logits"
    face = skdata.astronaut()[40:180, 160:290]
    probs = inference.predict_crops("ref:fer-logits", [face, face[::2, ::2]])
    assert probs.shape == (2, 7) and (probs > 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)


def test_evaluate_reference_records_a_run(lab, reference):
    run_id, report = inference.evaluate_reference("fer-mini", "synthetic-tiny")
    store = lab.store
    row = store.list_runs().set_index("run_id").loc[run_id]
    assert (row.status, row.label, row.dataset, row.arch) == ("FINISHED", "reference/fer-mini", "synthetic-tiny",
                                                              "reference")
    stored = store.report(run_id)
    assert stored["class_names"] == FER and stored["accuracy"] == report["accuracy"]
    assert np.array(stored["confusion_matrix"]).sum() == 21
    # The recorded per-image probabilities are what Predict computes for the same faces.
    x, _ = lab.ds.splits["test"]
    np.testing.assert_allclose(store.predictions(run_id)["probs"], inference.predict_crops(reference.id, list(x)),
                               atol=1e-5)
    assert store.config(run_id).model.input_size == 64
    assert run_id not in {p["id"] for p in inference.list_predictors()}


def test_cli_predict_prints_a_table_per_face(lab, tmp_path, capsys):
    photo, coffee, broken = tmp_path / "astronaut.png", tmp_path / "coffee.jpg", tmp_path / "broken.png"
    Image.fromarray(skdata.astronaut()).save(photo)
    Image.fromarray(skdata.coffee()).save(coffee)
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    rc = main(["predict", str(photo), str(coffee), str(broken), "--runs", lab.resnet[:8], lab.vgg])
    out, err = capsys.readouterr()
    assert rc == 1  # one unusable image
    assert "astronaut.png: 1 face(s), mtcnn detector, eyes levelled" in out
    assert "No verdict: none of these models is meaningful on photos" in out
    assert "resnet50/scratch-adam" in out and "vgg16/scratch-adam" in out
    assert out.count("note: ") == 2 and out.count(": trained on drawn faces: not meaningful on photos") == 4
    assert out.count("no: trained on drawn faces") == 2  # each model's vote column on the face
    assert "coffee.jpg: no face found" in out and "--detector whole" in out
    assert "broken.png" in err and "Traceback" not in err

    rc = main(["predict", str(photo), "--runs", "no-such-run"])
    assert rc == 2 and "'no-such-run' matches no finished run" in capsys.readouterr().err


def test_cli_register_model(lab, reference, capsys):
    args = ["register-model", "cli-ref", str(reference.path), "--input-size", "64"]
    assert main([*args, "--labels", "angry,happy"]) == 2
    assert "2 labels were given" in capsys.readouterr().err
    assert main([*args, "--labels", ",".join(FER)]) == 0
    assert "ref:cli-ref" in capsys.readouterr().out
    assert inference.list_references()["cli-ref"]["labels"] == FER


def test_latency_benchmark(lab):
    bench = inference.latency_benchmark(lab.vgg, n=3)
    assert bench["faces"] == 1 and bench["n"] == 3 and bench["predictor_id"] == lab.vgg
    for stage in ("detection_ms", "preprocess_ms", "predict_ms", "total_ms"):
        assert bench[stage]["median"] > 0 and bench[stage]["p90"] >= bench[stage]["median"] * 0.5


def test_latency_benchmark_of_a_model_that_was_never_stored(lab):
    model = lab.store.load_model(lab.resnet)
    wrapped = inference.wrap_model(model, "resnet50", 32, source_size=48)
    # Wrapped like a stored run, it sees a face exactly as that run's predictor does.
    face = skdata.astronaut()[40:180, 160:290]
    np.testing.assert_allclose(predict.probabilities(wrapped, predict.prepare(wrapped.predictor, [face])),
                               inference.predict_crops(lab.resnet, [face]), atol=1e-6)
    bench = inference.latency_benchmark(wrapped, n=2)
    assert bench["faces"] == 1 and bench["predict_ms"]["median"] > 0 and "resnet50" in bench["label"]
    with pytest.raises(ValueError, match="Unknown model 'vgg17'"):
        inference.wrap_model(model, "vgg17", 32)


def test_cli_predict_folder_writes_a_csv_and_lists_unreadable_files(lab, reference, tmp_path, capsys):
    import pandas as pd

    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(skdata.astronaut()).save(folder / "astronaut.png")
    Image.fromarray(skdata.coffee()).save(folder / "sub" / "coffee.jpg")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    (folder / ".hidden.png").write_bytes(b"ignored")
    out = tmp_path / "predictions.csv"
    rc = main(["predict", str(folder), "--runs", reference.id, "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 1  # one unreadable file, not fatal
    assert "photos: 2 of 3 file(s) scored, 1 face(s) (mtcnn detector), 1 without a face" in captured.out
    assert "no face: sub/coffee.jpg" in captured.out
    assert "unreadable: broken.png: " in captured.err and "Traceback" not in captured.err
    rows = pd.read_csv(out)
    assert list(rows.file) == ["photos/astronaut.png"] and list(rows.model) == ["reference/fer-mini"]
    assert rows.probability.iloc[0] == pytest.approx(rows[f"p({rows['top label'].iloc[0]})"].iloc[0])
    box = tuple(rows[["x", "y", "width", "height"]].iloc[0])
    assert _iou(box, ASTRONAUT_FACE) > 0.6


def test_cli_and_dashboard_read_the_same_yunet_setting(reference, tmp_path, monkeypatch, capsys):
    from dashboard import services

    photo, bogus = tmp_path / "astronaut.png", tmp_path / "yunet.onnx"
    Image.fromarray(skdata.astronaut()).save(photo)
    bogus.write_bytes(b"not an onnx model")
    monkeypatch.setenv("EMOTION_LAB_YUNET_MODEL", str(bogus))
    # No --yunet-model: the CLI reads EMOTION_LAB_YUNET_MODEL in core, as the dashboard does.
    assert main(["predict", str(photo), "--detector", "yunet", "--runs", reference.id]) == 2
    err = capsys.readouterr().err
    assert f"{bogus.resolve()} is not a valid YuNet ONNX model" in err
    assert services.yunet_model() == str(bogus)
    page = services.analyse_photo(photo.read_bytes(), "astronaut.png", [reference.id], "yunet")
    assert f"{bogus.resolve()} is not a valid YuNet ONNX model" in page["error"]


def test_a_model_whose_file_is_gone_is_skipped_and_the_others_still_score(lab, reference, tmp_path, capsys):
    import pandas as pd

    from core.inference.references import registry_path

    saved = registry_path().read_bytes()
    gone = tmp_path / "gone.keras"
    _small_cnn().save(gone)
    inference.register_reference("gone", gone, ",".join(FER), input_size=64, channels=1, scaling="0-1")
    gone.unlink()  # the operator tidied a folder
    try:
        photo = skdata.astronaut()
        result = inference.predict_faces(photo, ["ref:gone", reference.id], gradcam=False)
        assert list(result["skipped"]) == ["ref:gone"] and "no longer exists" in result["skipped"]["ref:gone"]
        assert [p["id"] for p in result["predictors"]] == [reference.id]
        assert list(result["faces"][0]["predictions"]) == [reference.id]
        with pytest.raises(ReferenceModelError, match="no longer exists"):
            inference.predict_faces(photo, ["ref:gone"])  # nothing left to score with

        path, csv = tmp_path / "astronaut.png", tmp_path / "predictions.csv"
        Image.fromarray(photo).save(path)
        rc = main(["predict", str(path), "--runs", reference.id, "ref:gone", "--out", str(csv)])
        out, err = capsys.readouterr()
        assert rc == 1 and "astronaut.png: 1 face(s)" in out
        assert "warning: not scored by reference/gone: reference model 'gone': " in err and "Traceback" not in err
        assert set(pd.read_csv(csv)["model id"]) == {reference.id}
        rc = main(["predict", str(path), "--runs", "ref:gone"])
        err = capsys.readouterr().err
        assert rc == 2 and "error: reference model 'gone': " in err and "Traceback" not in err
    finally:
        registry_path().write_bytes(saved)
