"""The command line, run in-process through ``core.cli.main`` (cheap commands only)."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def options(command: str) -> dict:
    """``{dest: action}`` of one subcommand's options."""
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return {a.dest: a for a in sub.choices[command]._actions}


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    for command in ("datasets", "train", "compare", "evaluate", "runs", "fetch-weights", "predict", "register-model",
                    "evaluate-reference", "worker", "submit", "jobs", "cancel", "bench", "evolve"):
        assert command in out
    assert "--verbose" in out


def test_choices_come_from_the_registries():
    from core import evolution
    from core.configs import ARCHITECTURES
    from core.configs.presets import CONFIG_IDS
    from core.inference.faces import DETECTORS
    from core.train.device import DISTRIBUTE_MODES

    assert tuple(options("train")["arch"].choices) == ARCHITECTURES
    assert tuple(options("compare")["configs"].choices) == CONFIG_IDS
    assert tuple(options("train")["distribute"].choices) == DISTRIBUTE_MODES
    assert tuple(options("predict")["detector"].choices) == tuple(DETECTORS)
    evolve = options("evolve")
    assert tuple(evolve["strategy"].choices) == evolution.STRATEGIES
    assert tuple(evolve["mode"].choices) == evolution.MODES
    assert all(g.name in evolve["fix"].help for g in evolution.GENE_SPACE)
    budget = evolution.Budget()
    assert (evolve["eval_epochs"].default, evolve["eval_max_train"].default, evolve["eval_max_eval"].default,
            evolve["long_epochs"].default) == (budget.epochs, budget.max_train, budget.max_eval, budget.long_epochs)
    assert all(cost in evolve["objectives"].help for cost in list(evolution.OBJECTIVES)[1:])


def test_runs_and_jobs_on_an_empty_store(fresh_artifacts, capsys):
    assert main(["runs"]) == 0
    assert "No runs yet" in capsys.readouterr().out
    assert main(["jobs"]) == 0
    assert "No jobs yet" in capsys.readouterr().out


def test_not_found_errors_print_the_message_not_its_repr(fresh_artifacts, capsys):
    # These errors subclass KeyError, whose str() wraps the whole message in quotes.
    assert main(["jobs", "999"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: No job 999 in "), err
    assert main(["evaluate", "no-such-run", "--dataset", "synthetic-tiny"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: No run 'no-such-run' in the store"), err


def test_datasets_says_why_a_path_is_no_dataset(tmp_path, capsys):
    missing, empty = tmp_path / "nope", tmp_path / "empty"
    empty.mkdir()
    assert main(["datasets", str(missing), str(empty)]) == 1
    captured = capsys.readouterr()
    assert "No datasets found." not in captured.out
    lines = captured.err.splitlines()
    assert lines[0] == f"error: {missing}: no such file or folder (looked in . and {os.environ['EMOTION_LAB_DATA']})"
    assert lines[1].startswith(f"error: {empty}: missing train/ folder") and "test/<class>/" in lines[1]


def test_datasets_shows_a_dataset_given_by_path(tmp_path, capsys):
    import cv2
    import numpy as np

    root = tmp_path / "faces"
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("happy", "sad"):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                cv2.imwrite(str(root / split / cls / f"{i}.png"), np.full((48, 48), 40 * i, np.uint8))
    (root / "train" / "sad" / "broken.png").write_bytes(b"not a png")
    assert main(["datasets", str(root)]) == 0
    out = capsys.readouterr().out
    table, _, caveats = out.partition("\n\n")
    rows = [line.split() for line in table.splitlines()[1:]]
    assert [r[:2] for r in rows] == [[str(root), "happy"], [str(root), "sad"]]
    # Read from the decoded cache or not, the dataset says what it could not read and why it is weak.
    assert "warning: faces: fewer than 10 training images" in caveats
    assert "  skipped: train/sad/broken.png" in caveats.splitlines()


def test_datasets_without_own_data_says_where_it_looked(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EMOTION_LAB_DATA", str(tmp_path))
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "synthetic-tiny" in out  # the built-in sets are still listed
    assert f"No datasets of your own in {tmp_path};" in out and "train/<class>/" in out


@pytest.mark.parametrize("argv", [["runs"], ["--verbose", "runs"], ["runs", "--verbose"]])
def test_tensorflow_logging_is_quiet_unless_verbose(argv, fresh_artifacts, monkeypatch):
    import core.cli.runs

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    seen = {}

    def record(args):
        seen.update(env=os.environ["TF_CPP_MIN_LOG_LEVEL"], level=logging.getLogger("tensorflow").level)
        return 0

    monkeypatch.setattr(core.cli.runs, "cmd_runs", record)
    before = logging.getLogger("tensorflow").level
    assert main(argv) == 0
    if "--verbose" in argv:
        assert seen == {"env": "1", "level": before}
    else:
        assert seen == {"env": "3", "level": logging.ERROR}
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1" and logging.getLogger("tensorflow").level == before


@pytest.mark.slow
def test_tensorflow_start_up_lines_stay_off_the_terminal(tmp_path):
    # TensorFlow prints its oneDNN/CUDA notices from C++ while it loads, past sys.stderr and
    # (in TF 2.21) past TF_CPP_MIN_LOG_LEVEL, so only a real process shows them.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["EMOTION_LAB_ARTIFACTS"] = str(tmp_path)
    # train imports the training loop (and TensorFlow) before it validates the epochs.
    proc = subprocess.run([sys.executable, "-m", "core", "train", "--config", "scratch-adam", "--epochs", "0"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["error: epochs: expected an integer in [1, 1000]. Received: epochs=0"]


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` with its bytes and modification time, and every folder."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) if p.is_file() else (b"", 0)
            for p in sorted(folder.rglob("*"))}


def _lab_with_own_data(tmp_path: Path) -> tuple[dict, Path, Path]:
    """A data folder with a folder dataset (one truncated JPEG among its images) and a FER2013-style CSV."""
    import cv2
    import numpy as np

    data, artifacts = tmp_path / "data", tmp_path / "artifacts"
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("happy", "sad"):
            (data / "faces" / split / cls).mkdir(parents=True)
            for i in range(3):
                cv2.imwrite(str(data / "faces" / split / cls / f"{i}.png"), rng.integers(0, 256, (48, 48), np.uint8))
    ok, jpeg = cv2.imencode(".jpg", rng.integers(0, 256, (48, 48), np.uint8))
    # libjpeg prints "Premature end of JPEG file" past OpenCV's logger for this one.
    (data / "faces" / "train" / "happy" / "cut.jpg").write_bytes(jpeg.tobytes()[:300])
    rows = [f"{i % 7},{' '.join(['7'] * 2304)},{u}" for u in ("Training", "PublicTest", "PrivateTest") for i in range(7)]
    (data / "fer.csv").write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    env = {**os.environ, "EMOTION_LAB_DATA": str(data), "EMOTION_LAB_ARTIFACTS": str(artifacts)}
    for key in ("OPENCV_LOG_LEVEL", "OPENCV_FFMPEG_LOGLEVEL"):
        env.pop(key, None)
    return env, data, artifacts


def test_datasets_listing_leaves_the_data_folder_byte_identical_and_prints_no_codec_lines(tmp_path):
    env, data, artifacts = _lab_with_own_data(tmp_path)
    before = _snapshot(data)
    out = subprocess.run([sys.executable, "-m", "core", "datasets"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "faces" in out.stdout and "fer" in out.stdout and "synthetic" in out.stdout
    assert _snapshot(data) == before, "a listing wrote into the user's data folder"
    # What it did write (the synthetic sets, the decoded caches) is under artifacts/cache.
    cached = {p.name for p in (artifacts / "cache" / "datasets").iterdir()}
    assert {"synthetic-v1-seed0.npz", "synthetic-tiny-v1-seed0.npz"} <= cached
    assert any(n.startswith("faces-") for n in cached) and any(n.startswith("fer-") for n in cached)
    assert "JPEG" not in out.stderr and "[ WARN" not in out.stderr, out.stderr



@pytest.mark.parametrize("verbose", [False, True])
def test_codec_lines_of_a_first_decode_only_with_verbose(tmp_path, monkeypatch, capfd, verbose):
    env, data, artifacts = _lab_with_own_data(tmp_path)
    for key in ("EMOTION_LAB_DATA", "EMOTION_LAB_ARTIFACTS"):
        monkeypatch.setenv(key, env[key])
    for key in ("OPENCV_LOG_LEVEL", "OPENCV_FFMPEG_LOGLEVEL"):
        monkeypatch.delenv(key, raising=False)
    assert main([*(["--verbose"] if verbose else []), "datasets", "faces"]) == 0
    err = capfd.readouterr().err
    assert ("Premature end of JPEG file" in err) == verbose, err


def test_quiet_output_covers_opencvs_log_and_ffmpeg_unless_verbose(monkeypatch):
    from core.cli import common

    for key in common.NATIVE_QUIET_ENV:
        monkeypatch.delenv(key, raising=False)
    with common.tensorflow_output(verbose=False):
        assert os.environ["OPENCV_LOG_LEVEL"] == "OFF" and os.environ["OPENCV_FFMPEG_LOGLEVEL"] == "-8"
    assert "OPENCV_LOG_LEVEL" not in os.environ, "restored after the command"
    monkeypatch.setenv("OPENCV_LOG_LEVEL", "DEBUG")  # the user's own choice wins
    with common.tensorflow_output(verbose=False):
        assert os.environ["OPENCV_LOG_LEVEL"] == "DEBUG"
    with common.tensorflow_output(verbose=True):
        assert "OPENCV_FFMPEG_LOGLEVEL" not in os.environ


def test_runs_lists_the_newest_few_and_says_how_to_see_all(fresh_artifacts, capsys):
    import time

    from conftest import tiny_config

    from core.store import RunStore

    store = RunStore()
    ids = []
    for _ in range(3):
        ids.append(store.create_run(tiny_config(), {"name": "synthetic-tiny"}))
        time.sleep(0.01)  # distinct start times: newest first is unambiguous
    assert main(["runs", "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert ids[2] in out and ids[1] in out and ids[0] not in out
    assert "The 2 newest runs; --limit 0 lists every run" in out
    assert main(["runs", "--limit", "0"]) == 0
    out = capsys.readouterr().out
    assert all(i in out for i in ids) and "newest runs;" not in out
