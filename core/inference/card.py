"""Model cards: what a run's exported model is, how to feed it and how well it did, as JSON and Markdown.

Everything on a card is read from what the run recorded in the store (config, dataset
identity tags, test report, cost metrics, environment); nothing is re-measured here except
the export check the caller passes in.
"""
from __future__ import annotations

import importlib.metadata as md
import time
from typing import Any

from core.data.loaders import SYNTHETIC_SIZES
from core.store import RunStore

CARD_VERSION = 1
COST_KEYS = ("train_time_s", "train_time_per_epoch_s", "train_flops", "forward_flops_per_image", "images_seen",
             "params_total", "params_trainable", "latency_ms_per_face", "model_size_mb")
# Licence notes by where the training data or the starting weights came from.
DATA_NOTES = {
    "fer2013": "FER2013 (ICML 2013 challenge, Kaggle): faces collected from web image search; the dataset's "
               "terms allow research use. Check them before any other use of a model trained on it.",
    "synthetic": "The lab's generated drawn faces (no third-party images): not meaningful on photographs.",
    "folder": "An image folder the operator supplied: its images' licences apply to this model.",
}
WEIGHTS_NOTE = ("Started from Keras Applications' ImageNet weights (Keras: Apache 2.0); ImageNet's own terms "
                "restrict its images to non-commercial research, which some read as covering weights learnt from it.")
LAB_NOTE = "Exported by the emotion-lab; the lab grants no licence of its own for trained weights."


def lab_version() -> str:
    """The installed emotion-lab version (pyproject.toml), or 'unknown' when it is not installed."""
    try:
        return md.version("emotion-lab")
    except md.PackageNotFoundError:
        return "unknown"


def _data_kind(dataset: str, source: str) -> str:
    if dataset in SYNTHETIC_SIZES:
        return "synthetic"
    if "fer2013" in dataset.lower() or source.lower().endswith(".csv"):
        return "fer2013"
    return "folder"


def build_card(store: RunStore, run_id: str, spec, fmt: str | None = None, check: dict | None = None) -> dict:
    """The card of a finished run's exported model (``spec``: ``core.inference.export.FaceSpec``).

    ``fmt`` and ``check`` (the export's comparison with the Keras model) are recorded when given.
    """
    run = store.get(run_id)
    tags, metrics = run.data.tags, run.data.metrics
    cfg = store.config(run_id)
    report = store.report(run_id) or {}
    env = store.read_json(run_id, "environment.json") or {}
    dataset = {k[len("dataset."):]: v for k, v in tags.items() if k.startswith("dataset.")}
    dataset["name"] = cfg.data.dataset
    per_class = report.get("per_class", {})
    kind = _data_kind(cfg.data.dataset, dataset.get("source", ""))
    licence = [DATA_NOTES[kind]]
    if cfg.model.weights == "imagenet":
        licence.append(WEIGHTS_NOTE)
    licence.append(LAB_NOTE)
    return {
        "card_version": CARD_VERSION,
        "run_id": run_id,
        "label": tags.get("label", run.info.run_name),
        "arch": cfg.model.arch, "variant": cfg.variant, "weights": cfg.model.weights,
        "format": fmt,
        "input": spec.to_dict(),
        "dataset": dataset,
        "split": {"val_fraction": cfg.data.val_fraction, "split_seed": cfg.data.split_seed,
                  "max_train": cfg.data.max_train, "max_eval": cfg.data.max_eval, "scheme": dataset.get("split", "")},
        "profile": cfg.train.profile,
        "seeds": {"train": cfg.train.seed, "split": cfg.data.split_seed},
        "epochs": cfg.train.epochs,
        "test": {"accuracy": report.get("accuracy"), "accuracy_ci95": report.get("accuracy_ci"),
                 "macro_f1": report.get("macro_f1"), "loss": report.get("loss"),
                 "per_class_f1": dict(zip(report.get("class_names", spec.labels), per_class.get("f1", []))),
                 "support": dict(zip(report.get("class_names", spec.labels), per_class.get("support", [])))},
        "cost": {k: metrics[k] for k in COST_KEYS if k in metrics},
        "check": check,
        "lab_version": lab_version(),
        "trained_with": {k: env[k] for k in ("tensorflow", "keras", "python") if k in env},
        "licence_notes": licence,
        "warning": "Trained on drawn faces: not meaningful on photographs." if kind == "synthetic" else "",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _num(value: Any, fmt: str = ".4f") -> str:
    return "n/a" if value is None else format(value, fmt)


def card_markdown(card: dict) -> str:
    """The card as Markdown (MODEL_CARD.md, and the description of a registered MLflow model)."""
    inp, test, check = card["input"], card["test"], card.get("check") or {}
    ci = test.get("accuracy_ci95") or [None, None]
    lines = [f"# Model card: {card['label']} (run {card['run_id']})", ""]
    if card.get("warning"):
        lines += [f"**{card['warning']}**", ""]
    lines += [
        "## How to feed it",
        f"- Input `{inp['input_name']}`: float32 {inp['input_shape']}: one grayscale face per row, "
        f"{inp['input_size']}x{inp['input_size']} px, pixel values 0-255 (the model scales them itself: "
        f"`--channels 1 --scaling none`).",
        f"- Faces were {inp['source_size']} px in training; bring a crop to that size, then to "
        f"{inp['input_size']} px (bilinear, antialiased).",
        f"- Output: {inp['output']}: {', '.join(inp['labels'])}.",
        f"- Architecture: {card['arch']} ({card['variant']}, weights: {card['weights']})"
        + (f"; format: {card['format']}" if card.get("format") else "") + ".",
        "",
        "## Data and protocol",
        f"- Dataset: {card['dataset'].get('name')} (source {card['dataset'].get('source', 'n/a')}, "
        f"fingerprint {card['dataset'].get('fingerprint', 'n/a')}, image size {card['dataset'].get('image_size', 'n/a')}).",
        f"- Split: {card['split']['scheme'] or 'n/a'}; validation fraction {card['split']['val_fraction']}, "
        f"split seed {card['split']['split_seed']}; caps train={card['split']['max_train']}, "
        f"eval={card['split']['max_eval']}; test images {card['dataset'].get('n_test', 'n/a')}.",
        f"- Profile: {card['profile']}; epochs {card['epochs']}; training seed {card['seeds']['train']}.",
        "",
        "## How well it did (test split)",
        f"- Accuracy {_num(test['accuracy'])} (95% bootstrap interval {_num(ci[0])}-{_num(ci[1])}); "
        f"macro-F1 {_num(test['macro_f1'])}; loss {_num(test['loss'])}.",
        "",
        "| class | F1 | support |", "|---|---|---|",
        *(f"| {name} | {_num(f1, '.3f')} | {test['support'].get(name, 'n/a')} |"
          for name, f1 in test["per_class_f1"].items()),
        "",
        "## Cost",
        *([f"- {k}: {_num(v, '.4g')}" for k, v in card["cost"].items()] or ["- not recorded for this run"]),
        "",
    ]
    if check:
        lines += ["## Export check",
                  f"- Largest absolute probability difference vs {check['against']}: {check['max_abs_prob_diff']:.3g} "
                  f"over {check['images']} test images.", ""]
    lines += ["## Licence notes", *(f"- {note}" for note in card["licence_notes"]), "",
              f"emotion-lab {card['lab_version']}; trained with "
              + ", ".join(f"{k} {v}" for k, v in card["trained_with"].items()) + f"; card written {card['created']}.",
              ""]
    return "\n".join(lines)
