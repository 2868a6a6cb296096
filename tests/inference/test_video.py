"""Videos: a synthesized clip (scikit-image's astronaut moving across the frame, written with OpenCV)
is sampled, its face tracked and scored over time; tracking, limits, cancelling and the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from skimage import data as skdata

from core.cli import main
from core.inference import video

FPS, FRAMES = 8, 24


def write_clip(path, frames: int = FRAMES, fps: int = FPS, hide: tuple[int, ...] = ()) -> None:
    """The astronaut (face ~50 px) sliding 8 px per frame across a gray 480x272 frame; ``hide`` frames are blank."""
    astro = cv2.cvtColor(cv2.resize(skdata.astronaut(), (256, 256), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (480, 272))
    assert writer.isOpened()
    for i in range(frames):
        frame = np.full((272, 480, 3), 90, np.uint8)
        if i not in hide:
            frame[8:264, 8 * i:8 * i + 256] = astro
        writer.write(frame)
    writer.release()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A registered 64x64 grayscale reference model (a few conv filters) and the clip."""
    import keras

    from core import inference

    root = tmp_path_factory.mktemp("video")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMOTION_LAB_ARTIFACTS", str(root / "artifacts"))
        keras.utils.set_random_seed(1)
        inputs = keras.Input((64, 64, 1))
        x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(inputs))
        keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(x)).save(root / "tiny.keras")
        inference.register_reference("tiny", root / "tiny.keras", "angry,disgust,fear,happy,sad,surprise,neutral",
                                     input_size=64, channels=1, scaling="unit")
        clip = root / "astronaut.mp4"
        write_clip(clip)
        yield clip


def test_moving_astronaut_is_one_tracked_face_with_a_timeline(tiny, tmp_path):
    seen = []
    got = video.analyse_video(tiny, ["ref:tiny"], sample_fps=4, annotated=tmp_path / "annotated",
                              progress=lambda done, total: seen.append((done, total)))
    info = got["info"]
    assert (info["fps"], info["frames"], info["duration_s"]) == (8.0, 24, 3.0)
    assert info["samples"] == info["analysed"] == 12 and got["times"] == [k * 0.25 for k in range(12)]
    assert seen == [(k, 12) for k in range(1, 13)] and not got["cancelled"]
    (track,) = got["tracks"]
    assert track["number"] == 1 and track["times"] == got["times"]
    xs = [box[0] for box in track["boxes"]]
    assert xs == sorted(xs) and xs[-1] - xs[0] > 120  # followed her across the frame
    timeline = track["models"]["ref:tiny"]
    assert timeline["probs"].shape == (12, 7) and np.allclose(timeline["probs"].sum(axis=1), 1.0, atol=1e-5)
    assert timeline["dominant"] in timeline["top"] and 0 < timeline["dominant_share"] <= 1
    rows = pd.DataFrame(got["rows"])
    assert len(rows) == 12 and (rows.face == 1).all() and list(rows["frame"]) == list(range(0, 24, 2))
    assert set(rows["top label"]) == set(timeline["top"])
    ann = got["annotated"]
    assert ann["codec"] in {c[2] for c in video.CODECS}
    cap = cv2.VideoCapture(ann["path"])
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 12


def test_a_face_missed_briefly_keeps_its_number_and_a_long_absence_starts_a_new_one():
    tracker = video.FaceTracker(min_iou=0.2, max_gap=2)
    box = (100, 100, 50, 50)
    assert tracker.update(0, [box]) == [1]
    assert tracker.update(1, []) == [] and tracker.update(2, []) == []
    assert tracker.update(3, [(110, 100, 50, 50)]) == [1]  # two samples missed: bridged
    assert tracker.update(4, [(400, 100, 50, 50), (112, 102, 50, 50)]) == [2, 1]
    assert tracker.update(8, [(114, 100, 50, 50)]) == [3]  # three missed: a new face


def test_summary_names_the_dominant_emotion_and_each_change():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    got = video.summarise([0.0, 0.5, 1.0, 1.5], probs, ["happy", "sad"])
    assert got["top"] == ["happy", "sad", "sad", "happy"] and got["dominant_share"] == 0.5
    assert got["dominant"] == "happy"  # a tie goes to the higher mean probability
    assert got["changes"] == [(0.5, "happy", "sad"), (1.5, "sad", "happy")]


def test_cancelling_stops_after_the_frames_done(tiny):
    seen = []
    got = video.analyse_video(tiny, ["ref:tiny"], sample_fps=4, progress=lambda d, t: seen.append(d),
                              cancelled=lambda: len(seen) >= 3)
    assert got["cancelled"] and got["info"]["analysed"] == 3 and len(got["tracks"][0]["times"]) == 3


def test_bad_videos_and_settings_are_named(tiny, tmp_path, monkeypatch):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\0\0\0\x18ftypmp42" + b"\0" * 200)
    with pytest.raises(video.VideoError, match="broken.mp4: .*(cannot be decoded|no readable frames)"):
        video.probe(broken)
    with pytest.raises(video.VideoError, match=r"notes.txt: expected a video file \(.mp4, .mov, .webm, .avi\)"):
        video.probe(tmp_path / "notes.txt")
    monkeypatch.setattr(video, "MAX_DURATION_S", 2.0)
    with pytest.raises(video.VideoError, match="astronaut.mp4: video is 3 s long; the limit is 2 s"):
        video.probe(tiny)
    with pytest.raises(ValueError, match=r"sample_fps: expected a rate in \(0, 10\]"):
        video.sample_indices(24, 8.0, 30)
    assert video.sample_indices(24, 8.0, 10) == list(range(24))  # never more than the video has


def test_cli_prints_each_tracked_face_and_writes_the_per_frame_csv(tiny, tmp_path, capsys):
    out = tmp_path / "frames.csv"
    assert main(["predict", str(tiny), "--runs", "ref:tiny", "--fps", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "astronaut.mp4: 3.0 s at 8 fps, 6 frames analysed (2 per second), 1 face(s) tracked (mtcnn detector)" in text
    assert "face 1: seen from 0.0 s to 2.5 s in 6 frame(s)" in text and "reference/tiny: mostly " in text
    rows = pd.read_csv(out)
    assert len(rows) == 6 and (rows.file == "astronaut.mp4").all() and (rows.detector == "mtcnn").all() and list(rows["time (s)"]) == [0, .5, 1, 1.5, 2, 2.5]


PAGE = str(Path(__file__).resolve().parents[2] / "dashboard" / "views" / "predict.py")


@pytest.mark.slow
def test_video_panel_charts_each_face_and_offers_both_downloads(tiny, downloads, st_clean):
    import io

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(PAGE, default_timeout=240)
    at.run()
    at.radio(key="predict_mode").set_value("Video").run()
    assert not at.exception, at.exception
    assert at.multiselect(key="predict_models").value == ["ref:tiny"]
    assert any("Videos up to 200 MB and 5 minutes (MP4, MOV, WebM, AVI)" in c.value for c in at.caption)
    at.file_uploader(key="predict_video").set_value([("astronaut.mp4", tiny.read_bytes(), "video/mp4")])
    at.slider(key="predict_video_fps").set_value(2.0).run()
    at.button(key="predict_video_start").click().run()
    assert not at.exception, at.exception
    assert any(m.value.startswith("**astronaut.mp4: 1 face tracked** (MTCNN (finds faces and eyes; MIT)) in 6 frames "
                                  "(2 per second of a 3.0 s video") for m in at.markdown)
    # The face's verdict over the model's dominant emotion (its share of the frames), as the CLI prints it.
    assert any(m.value.startswith("**The model says ") for m in at.markdown)
    assert any(m.value.startswith("#### Face 1: seen from 0.0 s to 2.5 s in 6 frames") for m in at.markdown)
    (chart,) = at.get("plotly_chart")
    traces = json.loads(chart.proto.spec)["data"]
    assert [t["name"] for t in traces] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    csv = pd.read_csv(io.StringIO(downloads["predict_video_csv"]))
    assert len(csv) == 6 and list(csv["time (s)"]) == [0, .5, 1, 1.5, 2, 2.5] and (csv.face == 1).all()
    assert len(downloads["predict_video_download"]) > 1000  # the annotated video's bytes
    # The result is kept: another rerun shows it without analysing again.
    at.run()
    assert len(at.get("plotly_chart")) == 1 and not [b for b in at.button if b.key == "predict_video_start"]


def test_cli_scores_photos_with_references_alone_while_the_run_store_is_damaged(tiny, tmp_path, monkeypatch, capsys):
    """References live outside the run store: asking for them alone neither opens nor touches the store."""
    damaged = tmp_path / "mlflow.db"
    damaged.write_bytes(b"not a database" * 100)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{damaged}")
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR))
    assert main(["predict", str(photo), "--runs", "ref:tiny"]) == 0
    assert "astronaut.png: 1 face(s), mtcnn detector" in capsys.readouterr().out
    assert damaged.read_bytes() == b"not a database" * 100
