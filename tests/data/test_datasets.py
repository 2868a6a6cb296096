"""Loaders and their error messages, on files the tests create; the shared tf.data pipeline."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from core.configs import DataConfig
from core.configs.choices import FER_LABELS
from core.data import datasets
from core.data.dataset import SPLITS, Dataset, DatasetError, class_weights
from core.data.loaders import load_fer_csv, load_image_folders, load_synthetic
from core.data.pipeline import make_pipeline


def write_fer_csv(path: Path, rows_per_usage: int = 7, side: int = 48, usage: bool = True, bad_row: str | None = None):
    rng = np.random.default_rng(0)
    lines = ["emotion,pixels,Usage" if usage else "emotion,pixels"]
    for u in ("Training", "PublicTest", "PrivateTest"):
        for i in range(rows_per_usage):
            pixels = " ".join(map(str, rng.integers(0, 256, side * side)))
            lines.append(f"{i % 7},{pixels},{u}" if usage else f"{i % 7},{pixels}")
    if bad_row is not None:
        lines.insert(3, bad_row)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fer_csv_splits_and_labels(tmp_path):
    ds = load_fer_csv(write_fer_csv(tmp_path / "fer2013.csv"))
    assert ds.class_names == FER_LABELS
    for split in ("train", "val", "test"):
        x, y = ds.splits[split]
        assert x.shape == (7, 48, 48) and x.dtype == np.uint8
        assert sorted(y.tolist()) == list(range(7))
    counts = ds.counts()
    assert set(counts["split"]) == {"train", "val", "test"} and counts["count"].sum() == 21


def test_fer_csv_without_usage_carves_splits(tmp_path):
    ds = load_fer_csv(write_fer_csv(tmp_path / "train.csv", rows_per_usage=30, usage=False))
    sizes = {s: len(ds.splits[s][1]) for s in SPLITS}
    assert sum(sizes.values()) == 90 and sizes["test"] >= 7 and sizes["val"] >= 7


@pytest.mark.parametrize("bad_row, message", [
    # Line numbers count the header, as an editor does; data rows do not.
    ("3,1 2 3,Training", "line 4 (data row 3): pixels has 3 values; expected 2304 (48x48)"),
    ("3," + " ".join(["7"] * 2304) + ",Holdout", "line 4 (data row 3): Usage='Holdout'; expected one of"),
    ("9," + " ".join(["7"] * 2304) + ",Training", "line 4 (data row 3): emotion='9'; expected an integer 0-6"),
    ("3," + " ".join(["300"] * 2304) + ",Training", "line 4 (data row 3): pixel value 300 is outside 0-255"),
    ("3," + " ".join(["x"] * 2304) + ",Training", "line 4 (data row 3): pixels contains a non-integer value"),
])
def test_fer_csv_bad_rows_are_named(tmp_path, bad_row, message):
    path = write_fer_csv(tmp_path / "fer.csv", bad_row=bad_row)
    with pytest.raises(DatasetError) as info:
        load_fer_csv(path)
    assert "fer.csv" in str(info.value) and message in str(info.value)


def test_fer_csv_missing_columns_and_file(tmp_path):
    path = tmp_path / "wrong.csv"
    path.write_text("label,image\n1,2\n")
    with pytest.raises(DatasetError, match=r"wrong.csv: missing column\(s\) \['emotion', 'pixels'\]"):
        load_fer_csv(path)
    with pytest.raises(DatasetError, match="nope.csv: file not found"):
        load_fer_csv(tmp_path / "nope.csv")


def test_fer_csv_empty_split(tmp_path):
    path = tmp_path / "fer.csv"
    text = write_fer_csv(path).read_text().splitlines()
    path.write_text("\n".join(line for line in text if not line.endswith("PrivateTest")) + "\n")
    with pytest.raises(DatasetError, match="split 'test' is empty"):
        load_fer_csv(path)


def make_folders(root: Path, classes=("angry", "happy", "sad"), n=6, size=40, test_classes=None):
    rng = np.random.default_rng(1)
    for split, names in (("train", classes), ("test", test_classes or classes)):
        for c in names:
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                cv2.imwrite(str(d / f"{i}.png"), rng.integers(0, 256, (size, size), dtype=np.uint8))
    return root


def test_image_folders_map_aliases_onto_fer_order(tmp_path):
    root = make_folders(tmp_path / "rafdb", classes=("Happiness", "anger", "Contempt", "neutral"))
    ds = load_image_folders(root, val_fraction=0.25)
    # Canonical emotions keep FER2013 order; unknown classes are kept as found, after them.
    assert ds.class_names == ("angry", "happy", "neutral", "Contempt")
    x, y = ds.splits["train"]
    assert x.shape[1:] == (40, 40)
    # Stratified validation: every class appears in val.
    assert sorted(set(ds.splits["val"][1].tolist())) == [0, 1, 2, 3]
    assert len(ds.splits["train"][1]) + len(ds.splits["val"][1]) == 24


def test_image_folders_skipped_files_survive_the_decoded_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTION_LAB_DATA", str(tmp_path))
    monkeypatch.setenv("EMOTION_LAB_ARTIFACTS", str(tmp_path / "artifacts"))
    root = make_folders(tmp_path / "faces")
    (root / "train" / "happy" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (root / "test" / "sad" / "empty.jpg").write_bytes(b"")
    first = datasets.load_dataset("faces")
    assert first.skipped == ["train/happy/broken.png", "test/sad/empty.jpg"]
    # The second load comes from the decoded cache and still knows which files were skipped.
    assert list((tmp_path / "artifacts" / "cache" / "datasets").glob("faces-*.npz"))
    again = datasets.load_dataset("faces")
    assert again.skipped == first.skipped
    assert any("2 unreadable file(s) skipped, e.g. train/happy/broken.png" in w for w in again.warnings())


def test_one_class_dataset_is_refused_with_its_counts(tmp_path):
    root = make_folders(tmp_path / "smiles", classes=("happy",))
    with pytest.raises(DatasetError, match=r"smiles: 1 class\(es\) with training images \(happy\); "
                                           r"a classifier needs at least two classes"):
        load_image_folders(root)


def test_one_image_per_class_is_refused_naming_the_single_images_not_a_class(tmp_path):
    # One image per class and no val/ folder: no class can spare an image for validation. The
    # error says that; it never carves a class's only image off and then blames that class.
    root = make_folders(tmp_path / "few", classes=("angry", "happy", "sad"), n=1)
    with pytest.raises(DatasetError, match=r"few/train: cannot carve a validation split of 10% from 3 images: 3 of "
                                           r"its 3 classes have a single image \(angry, happy, sad\), which must stay "
                                           r"in training") as err:
        load_image_folders(root)
    assert "no training images" not in str(err.value)


def test_a_class_with_one_image_keeps_it_for_training(tmp_path):
    root = make_folders(tmp_path / "mixed", classes=("angry", "happy", "sad"), n=6)
    for extra in ("1", "2", "3", "4", "5"):
        (root / "train" / "happy" / f"{extra}.png").unlink()
    ds = load_image_folders(root, val_fraction=0.2)
    train, val = np.bincount(ds.splits["train"][1], minlength=3), np.bincount(ds.splits["val"][1], minlength=3)
    happy = ds.class_names.index("happy")
    assert train[happy] == 1 and val[happy] == 0, "happy's only image stays in training"
    assert (train >= 1).all() and train.sum() + val.sum() == 13 and val.sum() >= 2


def test_one_image_per_class_with_a_val_folder_keeps_every_training_image(tmp_path):
    root = make_folders(tmp_path / "tiny", classes=("angry", "happy", "sad"), n=1)
    for c in ("angry", "happy", "sad"):
        (root / "val" / c).mkdir(parents=True)
        (root / "val" / c / "v.png").write_bytes((root / "test" / c / "0.png").read_bytes())
    ds = load_image_folders(root)
    assert np.bincount(ds.splits["train"][1]).tolist() == [1, 1, 1]


def test_class_absent_from_training_is_refused_by_name(tmp_path):
    # A class folder in test/ with nothing in train/: the model could never predict it.
    root = make_folders(tmp_path / "gap", classes=("angry", "happy"), n=4, test_classes=("angry", "happy", "sad"))
    (root / "train" / "sad").mkdir()
    with pytest.raises(DatasetError, match=r"gap: class\(es\) sad have no training images \(sad: train 0, val 0, "
                                           r"test 4\); every class needs at least one training image"):
        load_image_folders(root)


def test_small_and_unbalanced_classes_warn():
    x = np.zeros((40, 32, 32), np.uint8)
    y = np.array([0] * 33 + [1] * 3 + [2] * 4)
    ds = Dataset("lopsided", "test", ("angry", "happy", "sad"),
                 {"train": (x, y), "val": (x[:3], y[:3]), "test": (x[:3], y[:3])})
    warnings = ds.warnings()
    assert warnings[0] == ("lopsided: fewer than 10 training images for happy (3), sad (4); "
                           "their per-class metrics rest on very few faces")
    assert "very unbalanced (angry 33 vs happy 3 training images)" in warnings[1]
    balanced = Dataset("even", "test", ("angry", "happy"),
                       {"train": (x[:20], np.array([0, 1] * 10)), "val": (x[:2], y[:2]),
                        "test": (x[:2], y[:2])})
    assert balanced.warnings() == []


def test_image_folders_all_corrupt_split_fails(tmp_path):
    root = make_folders(tmp_path / "faces", n=2)
    for f in (root / "test").rglob("*.png"):
        f.write_bytes(b"not an image")
    with pytest.raises(DatasetError, match=r"split 'test' is empty \(6 unreadable images skipped\)"):
        load_image_folders(root)


def test_image_folders_errors_name_the_folder(tmp_path):
    root = make_folders(tmp_path / "faces", test_classes=("angry", "grumpy"))
    with pytest.raises(DatasetError, match="class folder 'grumpy' matches no training class"):
        load_image_folders(root)
    (tmp_path / "empty" / "train").mkdir(parents=True)
    (tmp_path / "empty" / "test").mkdir()
    with pytest.raises(DatasetError, match="no class folders"):
        load_image_folders(tmp_path / "empty")
    with pytest.raises(DatasetError, match="missing test/ folder"):
        (tmp_path / "half" / "train").mkdir(parents=True)
        load_image_folders(tmp_path / "half")
    with pytest.raises(DatasetError, match="folder not found"):
        load_image_folders(tmp_path / "missing")


def test_resolve_by_name_under_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTION_LAB_DATA", str(tmp_path))
    write_fer_csv(tmp_path / "fer2013.csv")
    make_folders(tmp_path / "ckplus")
    names = {d["name"]: d["kind"] for d in datasets.available_datasets()}
    assert names["fer2013"] == "csv" and names["ckplus"] == "folders" and names["synthetic"] == "synthetic"
    assert datasets.load_dataset("fer2013").name == "fer2013"
    with pytest.raises(DatasetError, match="Unknown dataset 'affectnet'"):
        datasets.load_dataset("affectnet")


def test_synthetic_is_cached_and_subset_is_stratified(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTION_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("EMOTION_LAB_ARTIFACTS", str(tmp_path / "artifacts"))
    ds = load_synthetic("synthetic-tiny")
    # Cached with the other caches, never in the data folder (the user's own datasets live there).
    assert list((tmp_path / "artifacts" / "cache" / "datasets").glob("synthetic-tiny-*.npz"))
    assert not (tmp_path / "data").exists()
    again = load_synthetic("synthetic-tiny")
    assert again.fingerprint() == ds.fingerprint()
    sub = datasets.load_for_run(DataConfig(dataset="synthetic-tiny", max_train=14, max_eval=7))
    assert np.bincount(sub.splits["train"][1]).tolist() == [2] * 7
    assert len(sub.splits["test"][1]) == 7


def test_pipeline_preprocesses_like_the_backbone():
    import keras

    x = np.random.default_rng(0).integers(0, 256, (10, 48, 48), dtype=np.uint8)
    y = np.arange(10) % 7
    ds = make_pipeline(x, y, arch="vgg16", input_size=64, num_classes=7, batch_size=4, training=False)
    batches = list(ds)
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    img, label = batches[0]
    assert img.shape == (4, 64, 64, 3) and label.shape == (4, 7)
    # Gray tiled to 3 channels, then VGG's caffe preprocessing (BGR mean subtraction).
    expected = keras.applications.vgg16.preprocess_input(
        np.repeat(np.asarray(keras.ops.image.resize(x[:4, :, :, None].astype("float32"), (64, 64),
                                                    antialias=True)), 3, axis=-1))
    np.testing.assert_allclose(img.numpy(), expected, atol=1e-3)


def test_training_pipeline_augments_and_shuffles():
    x = np.tile(np.arange(48, dtype=np.uint8)[None, :, None], (16, 1, 48)) * 5
    y = np.arange(16) % 7
    kw = dict(arch="resnet50", input_size=48, num_classes=7, batch_size=16, seed=3)
    plain = next(iter(make_pipeline(x, y, training=False, **kw)))[0].numpy()
    aug = next(iter(make_pipeline(x, y, training=True, augment=True, **kw)))[0].numpy()
    assert aug.shape == plain.shape
    assert not np.allclose(np.sort(aug.ravel()), np.sort(plain.ravel()))


def test_training_and_evaluation_pipelines_run_without_tfdata_autotuning():
    # With autotuning on, discarding each epoch's iterator stalls for about a second in many epochs.
    x = np.zeros((8, 48, 48), dtype=np.uint8)
    y = np.arange(8) % 7
    kw = dict(arch="vgg16", input_size=48, num_classes=7, batch_size=4)
    for training in (True, False):
        assert make_pipeline(x, y, training=training, **kw).options().autotune.enabled is False
        assert make_pipeline(x, y, training=training, autotune=True, **kw).options().autotune.enabled in (
            None, True)


def test_class_weights_balance_rare_classes():
    y = np.array([0] * 90 + [1] * 10)
    w = class_weights(y, 3)
    assert w[1] == pytest.approx(9 * w[0])
    assert w[2] == 0.0


def test_decoded_datasets_are_cached_and_invalidated_on_change(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTION_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("EMOTION_LAB_ARTIFACTS", str(tmp_path / "artifacts"))
    (tmp_path / "data").mkdir()
    path = write_fer_csv(tmp_path / "data" / "fer2013.csv")
    first = datasets.load_dataset("fer2013")
    caches = list((tmp_path / "artifacts" / "cache" / "datasets").glob("*.npz"))
    assert len(caches) == 1
    again = datasets.load_dataset("fer2013")
    assert again.fingerprint() == first.fingerprint() and again.class_names == first.class_names
    # Editing the CSV gives a new key: stale decoded data is never served.
    import os
    write_fer_csv(path, rows_per_usage=8)
    os.utime(path, ns=(1, 1))
    assert len(datasets.load_dataset("fer2013").splits["train"][1]) == 8
