"""The default detector on composed multi-face photos and non-face images, eye-levelled crops,
and the verdict rule every result uses (drawn-face and near-chance models do not vote)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from core.inference import faces
from core.inference.align import aligned_crop, eye_angle
from core.inference.faces import Face, detect_faces
from core.inference.verdict import decide, headline

# Her head with some hair and neck around it, checked by eye.
ASTRONAUT_HEAD = (slice(20, 240), slice(120, 330))


def _paste(canvas: np.ndarray, face: np.ndarray, x: int, y: int, side: int, angle: float) -> tuple[int, int, int]:
    interp = cv2.INTER_AREA if face.shape[0] > side else cv2.INTER_CUBIC
    face = cv2.resize(face, (side, side), interpolation=interp)
    if face.ndim == 2:
        face = np.repeat(face[..., None], 3, axis=2)
    turn = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    canvas[y:y + side, x:x + side] = cv2.warpAffine(face, turn, (side, side), borderMode=cv2.BORDER_REPLICATE)
    return x, y, side


def _group_photo() -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """A 1400x800 photo of eight real faces: the astronaut at 80-260 px turned by -15..20 degrees,
    and four LFW faces (25 px originals, scaled to 100-160 px) turned by -10..10 degrees."""
    rng = np.random.default_rng(0)
    canvas = (np.full((800, 1400, 3), 200, np.uint8) + rng.integers(0, 20, (800, 1400, 3), dtype=np.uint8))
    head = skdata.astronaut()[ASTRONAUT_HEAD]
    placed = [_paste(canvas, head, 40, 60, 260, 0), _paste(canvas, head, 360, 80, 160, 20),
              _paste(canvas, head, 600, 60, 110, -15), _paste(canvas, head, 800, 400, 80, 0)]
    lfw = (skdata.lfw_subset()[:100] * 255).astype(np.uint8)  # the first 100 are faces
    for i, (k, side, angle) in enumerate([(0, 140, 0), (5, 120, 10), (11, 100, -10), (20, 160, 0)]):
        placed.append(_paste(canvas, lfw[k], 60 + i * 260, 450, side, angle))
    return canvas, placed


def _one_per_face(found: list[Face], placed: list[tuple[int, int, int]], scale: float = 1.0) -> bool:
    """Whether each pasted face holds exactly one detection's centre (boxes in photo pixels)."""
    for x, y, side in placed:
        x, y, side = x * scale, y * scale, side * scale
        inside = [f for f in found if x <= f.x + f.w / 2 <= x + side and y <= f.y + f.h / 2 <= y + side]
        if len(inside) != 1:
            return False
    return True


def test_the_default_detector_finds_every_face_of_a_composed_group_photo():
    photo, placed = _group_photo()
    assert faces.DEFAULT_DETECTOR == "mtcnn"
    found = detect_faces(photo)
    assert len(found) == len(placed) and _one_per_face(found, placed)
    assert all(len(f.landmarks) == 5 for f in found)
    # Haar, the fallback, misses turned faces that MTCNN finds.
    assert len(detect_faces(photo, "haar")) < len(placed)


def test_the_compiled_detector_finds_the_same_faces_as_the_first_eager_search(monkeypatch):
    """From its second photo on MTCNN runs compiled (the dashboard's speed); the boxes must not change."""
    photo, _ = _group_photo()
    fresh = faces._mtcnn.__wrapped__()  # a new detector: its first search runs eagerly
    monkeypatch.setattr(faces, "_mtcnn", lambda: fresh)
    eager = detect_faces(photo)
    assert fresh.lab_compiled
    compiled = detect_faces(photo)
    assert [f.box for f in compiled] == [f.box for f in eager]
    assert np.allclose([f.landmarks for f in compiled], [f.landmarks for f in eager], atol=0.5)


def test_a_2_megapixel_photo_is_searched_on_a_working_copy():
    photo, placed = _group_photo()
    big = cv2.resize(photo, (1960, 1120), interpolation=cv2.INTER_CUBIC)  # 2.2 MP: every box 1.4 times
    found = detect_faces(big)
    assert len(found) == len(placed) and _one_per_face(found, placed, 1.4)


@pytest.mark.parametrize("name", ["coffee", "brick", "grass", "gravel", "text", "chelsea", "rocket"])
def test_no_face_on_non_face_images(name):
    image = getattr(skdata, name)()
    image = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image
    assert detect_faces(image) == []


def test_no_face_on_stripes_and_noise():
    stripes = np.zeros((600, 800, 3), np.uint8)
    stripes[::16] = 255  # window blinds
    stripes[1::16] = 255
    noise = np.random.default_rng(1).integers(0, 256, (600, 800, 3), dtype=np.uint8)
    assert detect_faces(stripes) == [] and detect_faces(noise) == []


@pytest.mark.parametrize("angle", [-25, 20])
def test_alignment_levels_a_turned_face(angle):
    photo = skdata.astronaut()
    turned = cv2.warpAffine(photo, cv2.getRotationMatrix2D((256, 256), angle, 1.0), (512, 512))
    (face,) = detect_faces(turned)
    assert abs(eye_angle(face)) > 12  # turned the other way on screen, less her own slight tilt
    crop = aligned_crop(turned, face, margin=0.3)
    assert crop.shape[0] == crop.shape[1] and crop.dtype == np.uint8
    (again,) = detect_faces(crop)
    assert abs(eye_angle(again)) < 3.0
    plain = aligned_crop(turned, face, margin=0.3, align=False)  # as detected: still turned
    (unaligned,) = detect_faces(plain)
    assert abs(eye_angle(unaligned)) > 12


def test_faces_without_landmarks_are_cropped_as_before():
    photo = skdata.astronaut()
    box = Face(177, 65, 95, 95, 1.0)
    assert eye_angle(box) is None
    assert np.array_equal(aligned_crop(photo, box, 0.2), faces.crop_face(photo, box, 0.2))


# --- the verdict --------------------------------------------------------------------------

FER7 = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def _model(pid: str, kind: str = "run", accuracy: float | None = 0.6, for_photos: bool = True) -> dict:
    return {"id": pid, "kind": kind, "test_accuracy": accuracy, "for_photos": for_photos, "class_names": FER7,
            "note": "" if for_photos else "trained on drawn faces: not meaningful on photos"}


def test_drawn_face_models_do_not_outvote_the_reference():
    # The astronaut as the issue saw it: seven drawn-face runs say disgust, the published model happy.
    tops = {f"run{i}": ("disgust", 0.16) for i in range(7)} | {"ref:fer": ("happy", 1.0)}
    models = {f"run{i}": _model(f"run{i}", for_photos=False) for i in range(7)} | {"ref:fer": _model(
        "ref:fer", "reference", None)}
    v = decide(tops, models)
    assert (v.label, v.leader, v.voters, v.disagree) == ("happy", "ref:fer", ("ref:fer",), False)
    assert set(v.abstain) == {f"run{i}" for i in range(7)} and "drawn faces" in v.abstain["run0"]
    assert headline(v, {"ref:fer": "reference/fer"}, tops) == "Happy (100%, reference/fer)."


def test_near_chance_models_do_not_vote_and_disagreement_is_said():
    tops = {"a": ("sad", 0.5), "b": ("happy", 0.7), "c": ("happy", 0.9), "d": ("fear", 0.3)}
    models = {"a": _model("a", accuracy=0.65), "b": _model("b", accuracy=0.55), "c": _model("c", accuracy=0.20),
              "d": _model("d", accuracy=None)}
    v = decide(tops, models)
    # c is near chance (20% < 2 x 1/7): it does not vote though it agrees with b.
    assert v.leader == "a" and v.label == "sad" and v.voters == ("a", "b", "d") and v.agree == ("a",)
    assert "near chance" in v.abstain["c"] and v.disagree
    labels = {k: k.upper() for k in tops}
    assert headline(v, labels, tops) == "The models disagree: A says sad (50%); B says happy, D says fear."


def test_no_voter_means_no_verdict():
    tops = {"a": ("disgust", 0.2)}
    v = decide(tops, {"a": _model("a", for_photos=False)})
    assert v.label is None and v.leader is None
    assert headline(v, {}, tops).startswith("No verdict")


def test_agreeing_voters():
    tops = {"r": ("happy", 0.9), "a": ("happy", 0.8)}
    v = decide(tops, {"r": _model("r", "reference", None), "a": _model("a")})
    assert headline(v, {"r": "ref", "a": "run"}, tops) == "Happy (90%, ref); both voting models agree."


def test_a_single_model_is_simply_quoted():
    tops = {"r": ("happy", 0.999)}
    v = decide(tops, {"r": _model("r", "reference", None)})
    assert headline(v, {"r": "reference/fer"}, tops) == "The model says happy (100%)."


def test_detection_benchmark_boxes_and_matching():
    import json

    from core.bench import inference as bench

    spec = json.loads(bench.DETECTION_BOXES.read_text())
    # The floor for a benchmark that can tell detectors apart: 40 faces, 8 photos of several people.
    assert sum(len(p["faces"]) for p in spec["photos"]) >= 40
    assert sum(len(p["faces"]) >= 2 for p in spec["photos"]) >= 8
    assert len({p["name"] for p in spec["photos"]}) == len(spec["photos"]), "one entry per photo"
    for p in spec["photos"]:
        assert p["source"] in spec["sources"] and len(p["sha256"]) == 64
        assert all(len(b) == 4 and min(b[2:]) > 0 for b in p["faces"] + p["ignore"])
    # One-to-one by IoU: a hit, a miss, a false face, and a detection in an ignored region that is neither.
    found = [Face(0, 0, 10, 10, 1.0), Face(100, 100, 10, 10, 1.0), Face(200, 200, 10, 10, 1.0)]
    assert bench.match_boxes(found, [[1, 1, 10, 10], [50, 50, 10, 10]], [[195, 195, 20, 20]], 0.3) == (1, 1)
