"""core.inference.faces: safe decoding of untrusted photos and face detection on real photos."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from core.inference import faces
from core.inference.faces import Face, ImageError, crop_face, detect_faces, load_image, to_gray

# Verified by eye on a saved crop: her face from hairline to chin, ear to ear.
ASTRONAUT_FACE = Face(177, 65, 95, 95, 1.0)


def _encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _rgb_pattern(width: int = 32, height: int = 24) -> Image.Image:
    """Left half red, right half blue: survives JPEG and shows which way it turned."""
    arr = np.zeros((height, width, 3), np.uint8)
    arr[:, : width // 2] = (255, 0, 0)
    arr[:, width // 2 :] = (0, 0, 255)
    return Image.fromarray(arr)


def _iou(a: Face, b: Face) -> float:
    iw = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    ih = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = iw * ih
    return inter / (a.w * a.h + b.w * b.h - inter)


def _png_with_size(width: int, height: int) -> bytes:
    """A small valid PNG whose header claims width x height (a decompression bomb)."""
    raw = bytearray(_encode(Image.new("L", (8, 8)), "PNG"))
    raw[16:24] = struct.pack(">II", width, height)
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    return bytes(raw)


# --- load_image: every accepted format and mode -------------------------------------

@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP"])
def test_accepted_formats_decode_to_rgb_uint8(fmt):
    out = load_image(_encode(_rgb_pattern(), fmt), name=f"x.{fmt.lower()}")
    assert out.shape == (24, 32, 3) and out.dtype == np.uint8
    # Lossy formats may shift colours a little; the halves must stay red and blue.
    assert np.allclose(out[12, 4], (255, 0, 0), atol=40)
    assert np.allclose(out[12, 28], (0, 0, 255), atol=40)


@pytest.mark.parametrize(
    ("mode", "fmt", "value", "expected"),
    [
        ("L", "PNG", 77, (77, 77, 77)),
        ("L", "JPEG", 77, (77, 77, 77)),
        ("L", "BMP", 77, (77, 77, 77)),
        ("1", "PNG", 1, (255, 255, 255)),
        ("RGB", "PNG", (10, 200, 30), (10, 200, 30)),
        ("CMYK", "JPEG", (0, 255, 255, 0), (255, 0, 0)),  # pure red in CMYK
        ("RGBA", "PNG", (255, 0, 0, 0), (255, 255, 255)),  # fully transparent -> white
        ("RGBA", "PNG", (255, 0, 0, 255), (255, 0, 0)),
        ("RGBA", "WEBP", (0, 0, 0, 0), (255, 255, 255)),
        ("LA", "PNG", (0, 0), (255, 255, 255)),
        ("LA", "PNG", (0, 255), (0, 0, 0)),
    ],
)
def test_modes_convert_to_rgb(mode, fmt, value, expected):
    img = Image.new(mode, (10, 6), value)
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    out = load_image(_encode(img, fmt, **kwargs), name="m")
    assert out.shape == (6, 10, 3) and out.dtype == np.uint8
    assert np.allclose(out[3, 5], expected, atol=3), out[3, 5]


def test_palette_and_palette_transparency():
    img = Image.new("P", (8, 8), 1)
    img.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    assert tuple(load_image(_encode(img, "PNG"))[0, 0]) == (0, 255, 0)
    assert tuple(load_image(_encode(img, "BMP"))[0, 0]) == (0, 255, 0)
    # Palette index 1 marked transparent: composited on white.
    assert tuple(load_image(_encode(img, "PNG", transparency=1))[0, 0]) == (255, 255, 255)


def test_16bit_keeps_contrast_instead_of_clipping():
    ramp = np.linspace(0, 65535, 256).round().astype(np.uint16)[None, :].repeat(4, axis=0)
    img = Image.fromarray(ramp)
    assert img.mode == "I;16"
    out = load_image(_encode(img, "PNG"), name="depth.png")
    row = out[0, :, 0].astype(int)
    assert out.dtype == np.uint8 and (out[..., 0] == out[..., 2]).all()
    assert row[0] == 0 and row[-1] == 255
    assert np.all(np.diff(row) >= 0) and len(np.unique(row)) > 200
    assert abs(row[128] - 128) <= 1  # mid-gray stays mid-gray (clipping gives 255)


def test_32bit_integer_mode_is_scaled_as_16bit():
    # Older Pillow versions open 16-bit PNGs as mode "I".
    img = Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.int32))
    assert img.mode == "I"
    assert list(faces._to_rgb(img)[0, :, 0]) == [0, 128, 255]


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    out = load_image(_encode(_rgb_pattern(32, 24), "JPEG", exif=exif.tobytes()))
    assert out.shape == (32, 24, 3)
    # Turning clockwise brings the left (red) half to the top.
    assert np.allclose(out[4, 12], (255, 0, 0), atol=40)
    assert np.allclose(out[28, 12], (0, 0, 255), atol=40)


def test_path_input_uses_the_file_name(tmp_path):
    path = tmp_path / "portrait.png"
    path.write_bytes(_encode(_rgb_pattern(), "PNG"))
    assert load_image(path).shape == (24, 32, 3)
    assert load_image(str(path)).shape == (24, 32, 3)
    with pytest.raises(ImageError, match=r"^missing\.jpg: cannot read"):
        load_image(tmp_path / "missing.jpg")


# --- load_image: everything else is an ImageError naming the file ----------------------

def test_unsupported_format_is_named():
    gif = _encode(Image.new("RGB", (8, 8)), "GIF")
    with pytest.raises(ImageError) as err:
        load_image(gif, name="photo.gif")
    assert str(err.value) == "photo.gif: unsupported format GIF; expected JPEG, PNG, WebP or BMP"


def test_format_is_sniffed_not_taken_from_the_name(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(_encode(Image.new("RGB", (8, 8)), "GIF"))
    with pytest.raises(ImageError, match=r"^photo\.jpg: unsupported format GIF"):
        load_image(path)
    path.write_bytes(_encode(_rgb_pattern(), "PNG"))
    assert load_image(path).shape == (24, 32, 3)


@pytest.mark.parametrize(
    ("payload", "pattern"),
    [
        (b"", r"^empty\.png: the file is empty"),
        (b"name,emotion\nalice,happy\n", r"^notes\.txt: not a recognized image file; expected JPEG"),
    ],
)
def test_empty_and_non_image(payload, pattern):
    name = "empty.png" if not payload else "notes.txt"
    with pytest.raises(ImageError, match=pattern):
        load_image(payload, name=name)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(fmt):
    noisy = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    full = _encode(Image.fromarray(noisy), fmt)
    with pytest.raises(ImageError, match=r"^cut\.img: the file is corrupt or truncated"):
        load_image(full[: len(full) // 2], name="cut.img")


def test_too_many_pixels(monkeypatch):
    monkeypatch.setattr(faces, "MAX_PIXELS", 100)
    with pytest.raises(ImageError) as err:
        load_image(_encode(Image.new("RGB", (20, 10)), "PNG"), name="big.png")
    assert str(err.value) == "big.png: image is 20x10 (200 pixels); the limit is 100 pixels"


@pytest.mark.parametrize("side", [7_000, 10_000, 20_000])
def test_decompression_bomb_is_stopped_from_the_header(side):
    # 49 MP: our limit; 100 MP: Pillow's warning; 400 MP: Pillow's error.
    bomb = _png_with_size(side, side)
    assert len(bomb) < 200
    with pytest.raises(ImageError, match=r"^bomb\.png: image is .*the limit is 40,000,000 pixels"):
        load_image(bomb, name="bomb.png")


def test_too_many_bytes(monkeypatch, tmp_path):
    monkeypatch.setattr(faces, "MAX_BYTES", 50)
    payload = _encode(_rgb_pattern(), "BMP")
    with pytest.raises(ImageError, match=r"^huge\.bmp: file is [\d,]+ bytes; the limit is 50 bytes"):
        load_image(payload, name="huge.bmp")
    path = tmp_path / "huge.bmp"
    path.write_bytes(payload)
    with pytest.raises(ImageError, match=r"^huge\.bmp: file is"):
        load_image(path)


def test_default_byte_limit_message():
    assert faces._mb(faces.MAX_BYTES) == "20.0 MB"


# --- detection --------------------------------------------------------------------------

def test_haar_finds_the_astronaut():
    found = detect_faces(skdata.astronaut(), "haar")
    assert len(found) == 1
    face = found[0]
    assert _iou(face, ASTRONAUT_FACE) > 0.6, face
    assert 170 <= face.x + face.w / 2 <= 260 and 60 <= face.y + face.h / 2 <= 160
    assert face.score > 0 and face.box == (face.x, face.y, face.w, face.h)


def test_haar_finds_no_face_in_coffee():
    assert detect_faces(skdata.coffee(), "haar") == []


def test_haar_large_photo_is_searched_downscaled_and_mapped_back():
    import cv2

    big = cv2.resize(skdata.astronaut(), (2048, 2048), interpolation=cv2.INTER_CUBIC)
    scaled = Face(*(4 * v for v in ASTRONAUT_FACE.box), 1.0)
    assert any(_iou(f, scaled) > 0.6 for f in detect_faces(big, "haar"))


def test_large_photo_boxes_match_the_full_resolution_search():
    import cv2

    # 12.8 MP; the minimum face size keeps the full-resolution search affordable.
    big = cv2.resize(skdata.astronaut(), (3584, 3584), interpolation=cv2.INTER_CUBIC)
    full = detect_faces(big, "haar", min_size=280, work_pixels=None)
    fast = detect_faces(big, "haar", min_size=280)
    assert len(full) == len(fast) == 1
    assert _iou(fast[0], full[0]) > 0.8
    assert _iou(fast[0], Face(*(7 * v for v in ASTRONAUT_FACE.box), 1.0)) > 0.6
    with pytest.raises(ValueError, match="work_pixels"):
        detect_faces(big[:8, :8], work_pixels=0)


def test_faces_are_sorted_left_to_right_and_duplicates_dropped():
    astro = skdata.astronaut()
    pair = np.concatenate([astro, astro[:, ::-1]], axis=1)  # mirrored twin on the right
    found = detect_faces(pair, "haar", min_size=48)  # skip a 25 px false positive in the suit
    assert len(found) == 2
    assert found[0].x < 512 <= found[1].x
    assert faces._drop_overlaps([Face(0, 0, 100, 100, 2.0), Face(10, 10, 60, 60, 5.0)]) == [
        Face(10, 10, 60, 60, 5.0)
    ]


def test_min_size_filters_small_faces():
    assert detect_faces(skdata.astronaut(), "haar", min_size=200) == []
    assert detect_faces(skdata.astronaut(), "mtcnn", min_size=200) == []


def test_whole_image_detector():
    img = np.zeros((48, 40), np.uint8)
    assert detect_faces(img, detector="whole") == [Face(0, 0, 40, 48, 1.0)]


def test_yunet_needs_an_existing_model(tmp_path, monkeypatch):
    monkeypatch.delenv(faces.YUNET_ENV, raising=False)
    img = skdata.astronaut()
    with pytest.raises(ValueError, match="yunet_model"):
        detect_faces(img, detector="yunet")
    missing = tmp_path / "face_detection_yunet_2023mar.onnx"
    with pytest.raises(FileNotFoundError, match=r"face_detection_yunet_2023mar\.onnx does not exist"):
        detect_faces(img, detector="yunet", yunet_model=missing)
    missing.write_bytes(b"not an onnx model")
    with pytest.raises(ValueError, match="not a valid YuNet ONNX model"):
        detect_faces(img, detector="yunet", yunet_model=missing)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"detector": "retinaface"}, "Unknown detector 'retinaface'"),
        ({"min_size": 0}, "min_size=0"),
    ],
)
def test_bad_detector_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        detect_faces(np.zeros((8, 8, 3), np.uint8), **kwargs)


@pytest.mark.parametrize("bad", [np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 4), np.uint8)])
def test_bad_arrays_are_rejected(bad):
    with pytest.raises(ValueError, match="expected"):
        detect_faces(bad)


# --- crop and gray ---------------------------------------------------------------------

def test_crop_adds_margin_and_is_square():
    img = skdata.astronaut()
    crop = crop_face(img, Face(200, 200, 50, 50, 1.0), margin=0.2)
    assert crop.shape == (70, 70, 3) and crop.dtype == np.uint8
    assert np.array_equal(crop, img[190:260, 190:260])
    tall = crop_face(img, Face(200, 200, 40, 60, 1.0), margin=0.0)
    assert tall.shape == (60, 60, 3)
    crop[:] = 0
    assert img[200, 200].any()  # a copy, not a view


def test_crop_is_clipped_at_the_border():
    img = np.zeros((100, 120, 3), np.uint8)
    crop = crop_face(img, Face(0, 0, 40, 40, 1.0), margin=0.5)
    assert crop.shape == (60, 60, 3)  # the 80x80 square cut at the top-left corner
    assert crop_face(img, Face(0, 0, 120, 100, 1.0)).shape == (100, 120, 3)
    with pytest.raises(ValueError, match="outside"):
        crop_face(img, Face(500, 500, 10, 10, 1.0))


def test_to_gray():
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 1] = 255
    gray = to_gray(rgb)
    assert gray.shape == (4, 5) and gray.dtype == np.uint8
    assert abs(int(gray[0, 0]) - 150) <= 1  # ITU-R 601 luma of pure green
    assert to_gray(gray) is gray


def test_bench_reports_detection_before_and_after_on_the_same_photo():
    from core.bench import inference

    got = inference.bench_detection(megapixels=(0.25, 2.0), repeats=1)
    assert got["work_pixels"] == faces.DETECT_PIXELS
    small, large = got["rows"]
    assert small["side"] == 500 and large["side"] == 1414 and small["photo"] == "astronaut"
    assert all(r["before_ms"] > 0 and r["after_ms"] > 0 for r in got["rows"])
    assert small["faces_before"] == small["faces_after"] == 1  # under 1 MP both searches are the same
