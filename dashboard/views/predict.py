"""Predict: upload photos (or take one), and see what every chosen model says about every face,
side by side, with Grad-CAM showing where each model looked."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import streamlit as st

from dashboard import services, ui
from dashboard.charts import predict as predict_charts
from dashboard.charts.common import run_colors
from dashboard.views.predict_sections import photo

TYPES = ["jpg", "jpeg", "png", "webp", "bmp"]
MAX_MODELS = 8  # core.inference keeps 8 models in memory; more would reload models on every photo
MAX_TRACKS = 6  # timelines shown per video


def set_whole(file_id: str, on: bool) -> None:
    st.session_state.predict_whole = (st.session_state.predict_whole | {file_id}) if on \
        else (st.session_state.predict_whole - {file_id})


def show_table(results: list[dict]) -> None:
    table = services.predictions_table(results, labels)
    if table.empty:
        return
    st.subheader("All predictions", anchor=False)
    percent = st.column_config.NumberColumn(format="percent")
    st.dataframe(table, hide_index=True, key="predict_table", column_config={
        "probability": percent, "model id": None, **{c: percent for c in table.columns if c.startswith("p(")}})
    stamp = datetime.now().strftime("%Y%m%d-%H%M")
    st.download_button("Download predictions (CSV)", table.to_csv(index=False), file_name=f"predictions-{stamp}.csv",
                       mime="text/csv", icon=":material/download:", key="predict_csv", on_click="ignore")


def video_panel() -> None:
    limits = services.video_limits()
    clip = st.file_uploader("Video", type=limits["types"], key="predict_video", max_upload_size=limits["max_mb"],
                            help=f"MP4, MOV, WebM or AVI, up to {limits['max_mb']} MB and {limits['max_s'] / 60:.0f} "
                                 "minutes.")
    fps = st.slider("Frames analysed per second", 0.5, limits["max_fps"], limits["default_fps"], step=0.5,
                    key="predict_video_fps", help=f"At most {limits['max_samples']} frames per video are analysed.")
    st.caption(f"Videos up to {limits['max_mb']} MB and {limits['max_s'] / 60:.0f} minutes (MP4, MOV, WebM, AVI). "
               "Faces are detected in the sampled frames and followed from frame to frame; Grad-CAM is not computed "
               "for videos.")
    if not chosen:
        st.info("Choose at least one model above.", icon=":material/arrow_upward:")
        return
    if not clip:
        st.info("Upload a short video: each face is followed through it and every chosen model's emotion is "
                "charted over time.", icon=":material/video_file:")
        return
    key = (clip.file_id, tuple(chosen), fps, detector)
    result = st.session_state.get("predict_video_result")
    if result is None or result["key"] != key:
        if st.session_state.get("predict_video_cancel"):
            st.info("Analysis cancelled.", icon=":material/cancel:")
        if not st.button("Analyse video", type="primary", key="predict_video_start", icon=":material/play_arrow:"):
            return
        # Clicking Cancel reruns the page, which stops this run at its next progress update.
        st.button("Cancel", key="predict_video_cancel", icon=":material/stop:")
        bar = st.progress(0.0, text="Reading the video…")
        result = services.analyse_video(clip.getvalue(), clip.name, chosen, fps, detector, progress=lambda done, total:
                                        bar.progress(done / total, text=f"Analysed {done} of {total} frames"))
        bar.empty()
        st.session_state.predict_video_result = {**result, "key": key}
        st.rerun()  # drops the Cancel button
    show_video(result)


def warn_skipped(skipped: dict[str, str]) -> None:
    """Chosen models that could not be loaded (a deleted or damaged file): the others' answers are shown."""
    if skipped:
        st.warning("Not scored by " + ui.plural(len(skipped), "chosen model") + ":  \n" + "  \n".join(
            f"**{ui.md(labels.get(pid, pid))}**: {ui.md(why)}" for pid, why in skipped.items()),
            icon=":material/error:")


def show_video(result: dict) -> None:
    if "error" in result:
        st.error(ui.md(result["error"]), icon=":material/broken_image:")
        return
    warn_skipped(result["skipped"])
    info, tracks = result["info"], result["tracks"]
    st.markdown(f"**{ui.md(result['name'])}: {ui.plural(len(tracks), 'face')} tracked** "
                f"({services.detector_label(result['detector'])}) in {info['analysed']} frames "
                f"({info['sample_fps']:g} per second of a {info['duration_s']:.1f} s video at {info['fps']:.0f} fps; "
                f"analysed in {result['seconds']:.0f} s).")
    ann = result["annotated"]
    left, right = st.columns(2)
    if ann and ann["browser"]:
        left.video(ann["data"], format="video/webm" if ann["file_name"].endswith(".webm") else "video/mp4")
    elif ann:
        left.caption(f"The annotated video is {ann['codec']}, which browsers cannot play; download it instead "
                     "(this OpenCV build writes neither H.264 nor VP8).")
    with right:
        if ann:
            # Short labels: the column is about 330 px at 1000 px wide; the icon says "download".
            st.download_button(f"Annotated video ({ann['codec']})", ann["data"], file_name=ann["file_name"],
                               icon=":material/download:", key="predict_video_download", on_click="ignore",
                               help="Download the video with each face's box and verdict drawn in")
        st.download_button("Per-frame predictions (CSV)", result["table"].to_csv(index=False),
                           help="Download every model's probabilities for every face in every analysed frame",
                           file_name=f"{Path(result['name']).stem}-frames.csv", mime="text/csv",
                           icon=":material/download:", key="predict_video_csv", on_click="ignore")
    if not tracks:
        st.warning("No face found in the sampled frames.", icon=":material/face_retouching_off:")
        return
    # The longest-seen faces first; brief detections (often false positives) are in the CSV.
    shown = sorted(tracks, key=lambda t: -len(t["times"]))[:MAX_TRACKS]
    if len(tracks) > len(shown):
        st.caption(f"The {MAX_TRACKS} faces seen longest are shown; the per-frame CSV has all {len(tracks)}.")
    for track in sorted(shown, key=lambda t: t["number"]):
        n, times = track["number"], track["times"]
        st.markdown(f"#### Face {n}: seen from {times[0]:.1f} s to {times[-1]:.1f} s in "
                    f"{ui.plural(len(times), 'frame')}")
        st.markdown(f"**{ui.md(services.track_verdict(track, labels))}**")
        cols = st.columns(min(2, len(track["models"])))
        for i, (pid, m) in enumerate(track["models"].items()):
            with cols[i % len(cols)]:
                changes = ", ".join(f"{a} → {b} at {t:.1f} s" for t, a, b in m["changes"][:4])
                why = track["verdict"].abstain.get(pid)
                st.markdown(f"**{ui.md(labels[pid])}**: mostly **{m['dominant']}** ({m['dominant_share']:.0%} of its "
                            f"frames), {ui.plural(len(m['changes']), 'change')}" + (f": {changes}" if changes else "")
                            + ("…" if len(m["changes"]) > 4 else "") + (f" *(does not vote: {ui.md(why)})*" if why else ""))
                timeline = predict_charts.emotion_timeline_figure(times, m["probs"], m["class_names"])
                st.plotly_chart(ui.tight(timeline, 260), key=f"predict_timeline_{n}_{i}")


st.set_page_config(layout="wide")
st.title("Predict")
st.caption("Upload photos or a video: every face is found and scored by each model you choose, side by side, "
           "with Grad-CAM heatmaps (photos) showing which part of the face drove each answer, or emotion timelines "
           "(videos) following each face.")

available, registry_error = services.predictors()
if registry_error:
    st.error(ui.md(registry_error), icon=":material/error:")
if not available:
    table = services.runs()
    busy = int(table.status.isin(["RUNNING", "SCHEDULED"]).sum()) if not table.empty else 0
    st.info("No trained models yet. Train some on the **Train** page, or start the one-click **quick comparison** "
            "on the **Overview** page: every finished run appears here as a model to predict with."
            + (f" {ui.plural(busy, 'run')} {'is' if busy == 1 else 'are'} training now." if busy else ""),
            icon=":material/model_training:")
    ui.reference_offer("predict_fetch_reference", "No models yet.")
    st.stop()

names = {p["id"]: p["label"] for p in available}  # the full label, with the training dataset
# Short labels for legends, captions and the table: architecture/configuration plus the run id.
labels = {p["id"]: p["label"].split(" (")[0] + (f" · {p['id'][:6]}" if p["kind"] == "run" else "") for p in available}
accuracy = {p["id"]: p["test_accuracy"] for p in available}
notes = {p["id"]: p["note"] for p in available if p.get("note")}
colors = run_colors(list(labels.values()))
st.session_state.setdefault("predict_whole", frozenset())

# ------------------------------------------------------------------ settings
# The toggle's column is wide enough for its label at 1000 px.
model_col, detector_col, cam_col = st.columns([3, 2, 2], vertical_alignment="bottom")
ui.keep_valid("predict_models", list(labels))
if "predict_models" not in st.session_state:
    st.session_state.predict_models = services.default_predictors(available)
chosen = model_col.multiselect(
    "Models", list(labels), key="predict_models", max_selections=MAX_MODELS, persist_state="session",
    format_func=lambda pid: names[pid] + (f" · test {accuracy[pid]:.0%}" if accuracy[pid] is not None else "")
    + (f" · {notes[pid]}" if pid in notes else ""),
    help="Finished runs and registered reference models. By default, the best run of each architecture and "
         "configuration, models trained on real faces and reference models first.")
detectors = [d for d in services.DETECTORS if d != "yunet" or services.yunet_model()]
detector = detector_col.selectbox("Face detector", detectors, format_func=services.detector_label,
                                  key="predict_detector", persist_state="session",
                                  help="MTCNN (the `mtcnn` package, MIT) also finds the eyes: each face is turned so "
                                       "they are level before scoring. Haar is the older fallback.")
if drawn := [pid for pid in chosen if pid in notes]:
    st.warning("  \n".join(f"**{ui.md(labels[pid])}**: {notes[pid]}" for pid in drawn), icon=":material/draw:")
ui.reference_offer("predict_fetch_reference", "Every model here was trained on drawn faces."
                   if not services.has_photo_model(available) else "")
# The mode radio is below; its last value (session state) says whether this run shows videos.
video_mode = st.session_state.get("predict_mode") == "Video"
gradcam = cam_col.toggle("Grad-CAM", value=True, key="predict_gradcam", persist_state="session", disabled=video_mode,
                         help="Photos only (not computed for videos): heatmaps of where each model looked; takes a "
                              "little longer.")
view = photo.View(labels, colors, gradcam, set_whole)

# ------------------------------------------------------------------ input
if st.radio("Analyse", ["Photos", "Video"], horizontal=True, key="predict_mode") == "Video":
    video_panel()
    st.stop()
files = st.file_uploader("Photos", type=TYPES, accept_multiple_files=True, key="predict_upload",
                         max_upload_size=services.MAX_PHOTO_MB,
                         help=f"JPEG, PNG, WebP or BMP, up to {services.MAX_PHOTO_MB} MB each and "
                              f"{services.MAX_PHOTOS} photos at a time.") or []
if len(files) > services.MAX_PHOTOS:
    st.error(f"{len(files)} photos were uploaded; one analysis takes at most {services.MAX_PHOTOS}. Remove "
             f"some, or score a whole folder with `python -m core predict FOLDER`.", icon=":material/error:")
    st.stop()
uploads = [(f, f.name) for f in files]
# Behind a toggle, so the browser asks for the camera only when someone wants it.
if st.toggle("Take a photo with the camera", key="predict_use_camera"):
    if shot := st.camera_input("Camera", key="predict_camera"):
        uploads.append((shot, "camera photo"))
if not chosen:
    st.info("Choose at least one model above.", icon=":material/arrow_upward:")
    st.stop()
if not uploads:
    st.info("Upload one or more photos above (or switch the camera on and take one). Each face is found, "
            "numbered and scored by every chosen model. For photos that are already face crops, choose "
            "**Whole image is one face** as the detector.", icon=":material/add_a_photo:")
    st.stop()

# ------------------------------------------------------------------ results
results = []
progress = st.progress(0.0) if len(uploads) > 1 else None
for n, (upload, name) in enumerate(uploads):
    with st.spinner(f"Analysing {name}…"):
        results.append(services.analyse_photo(
            upload.getvalue(), name, chosen,
            "whole" if upload.file_id in st.session_state.predict_whole else detector, gradcam))
    if progress:
        progress.progress((n + 1) / len(uploads), text=f"Analysed {n + 1} of {len(uploads)} photos")
if progress:
    progress.empty()

done = [r for r in results if "error" not in r]
n_faces = sum(len(r["faces"]) for r in done)
skipped = {pid: why for r in done for pid, why in r["skipped"].items()}
st.markdown(f"**{ui.plural(len(uploads), 'photo')}, {ui.plural(n_faces, 'face')} found**, each scored by "
            f"{ui.plural(len(chosen) - len(skipped), 'model')}."
            + (f" {ui.plural(len(results) - len(done), 'file')} could not be analysed." if len(done) < len(results)
               else ""))
warn_skipped(skipped)
if len(uploads) > 1:
    show_table(done)
for n, ((upload, _), result) in enumerate(zip(uploads, results)):
    photo.show_photo(n, upload.file_id, result, view, st.session_state.predict_whole)
if len(uploads) == 1:
    show_table(done)
if done:
    with st.expander("Timings", icon=":material/timer:"):
        st.dataframe(services.timings_table(done, labels).round(1), hide_index=True, key="predict_timings")
        st.caption("Milliseconds, measured when each photo was first analysed with these settings (results are "
                   "reused until a setting changes). Detection runs once per photo; loading happens once per "
                   "model and server.")
