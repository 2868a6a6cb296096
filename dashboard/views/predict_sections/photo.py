"""One analysed photo on the Predict page: the photo with numbered boxes, a numbered face gallery
under it, then per face the verdict, every model's probabilities and its Grad-CAM heatmaps."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from dashboard import services, ui
from dashboard.charts import predict as predict_charts

COARSE_CAM = 4  # Grad-CAM maps with fewer cells per side than this say little about *where*
GALLERY_WIDTH = 110
NATURAL_WIDTH = 480  # photos up to this wide are shown at their own size; wider ones fill the container


@dataclass(frozen=True)
class View:
    """What every photo section needs from the page: model labels and colours, the Grad-CAM switch,
    and the callback that switches a photo to (or back from) whole-image scoring."""

    labels: dict[str, str]
    colors: dict[str, str]
    gradcam: bool
    set_whole: Callable[[str, bool], None]


def probability_chart(face: dict, key: str, view: View) -> None:
    """One face's class probabilities, one bar colour per model."""
    # Models trained on different datasets may know different classes: a class a model
    # does not know gets no bar (NaN) rather than a made-up 0%.
    classes = list(dict.fromkeys(c for p in face["predictions"].values() for c in p["probs"]))
    probs = {view.labels[pid]: [p["probs"].get(c, math.nan) for c in classes] for pid, p in face["predictions"].items()}
    fig = predict_charts.probability_figure(probs, classes, view.colors)
    fig.update_layout(height=140 + len(classes) * (8 + 10 * len(probs)), margin=dict(t=10, b=10, l=10, r=10),
                      legend=dict(orientation="h", yanchor="top", y=-0.2, x=0, title=None))
    st.plotly_chart(fig, key=key)


def grad_cams(face: dict, view: View) -> None:
    """Each model's Grad-CAM overlay on the face, with a warning for maps too coarse to localise."""
    cams, labels = face["gradcam"], view.labels
    if not cams:
        st.caption("Grad-CAM is switched off above." if not view.gradcam else
                   "None of these models has a convolutional layer for Grad-CAM to explain.")
        return
    st.image([c["overlay"] for c in cams.values()], width=150, caption=[
        f"{labels[pid]}: {face['predictions'][pid]['top_label']}" for pid in cams])
    coarse = []
    for pid, c in cams.items():
        h, w = c["resolution"]
        if min(h, w) < COARSE_CAM:
            coarse.append(f"**{ui.md(labels[pid])}**: " + ("1×1, a single cell that cannot show where the model looked"
                                                        if h * w == 1 else f"{h}×{w}, which part of the face at most"))
    if coarse:
        st.warning("Coarse heatmaps: " + "; ".join(coarse) + ". Models trained at a larger input size give finer "
                   "maps.", icon=":material/blur_on:")
    if missing := [labels[pid] for pid in face["predictions"] if pid not in cams]:
        st.caption(f"No Grad-CAM for {', '.join(missing)}: no convolutional layer to explain.")


def show_photo(i: int, file_id: str, result: dict, view: View, whole_files: frozenset) -> None:
    """One photo's results, or its error."""
    name = result["name"]
    if "error" in result:
        st.error(ui.md(result["error"]), icon=":material/broken_image:")
        return
    faces = result["faces"]
    whole = result["detector"] == "whole"
    with st.container(border=True):
        st.subheader(ui.md(name), anchor=False)
        height, width = result["image_shape"]
        levelled = " · eyes levelled" if result.get("aligned") and any(f["landmarks"] for f in faces) else ""
        st.caption(f"{ui.plural(len(faces), 'face')} · detector: {services.detector_label(result['detector'])}"
                   f"{levelled} · {width}×{height} px")
        if not faces:
            st.warning(f"No face found in **{ui.md(name)}**. If the photo is a face already cropped (like FER2013 "
                       "images), score the whole image as one face.", icon=":material/face_retouching_off:")
            st.button("Score the whole image as one face", key=f"predict_whole_{i}", on_click=view.set_whole,
                      args=(file_id, True), icon=":material/crop_free:")
            st.image(result["annotated"], width=360)
            return
        if file_id in whole_files:
            st.button("Detect faces again", key=f"predict_detect_{i}", on_click=view.set_whole,
                      args=(file_id, False), icon=":material/face:")
        if not whole:
            # The photo, then the numbered faces under it: no side column to squeeze (or cut) the text.
            # A photo wider than the container is fitted to it: at its own width it overflowed a 1000 px window,
            # and the page then scrolled sideways, cutting the text below at the left edge.
            wide = result["annotated"].shape[1] > NATURAL_WIDTH
            st.image(result["annotated"], width="stretch" if wide else result["annotated"].shape[1],
                     caption="Faces are numbered left to right.")
            st.image([face["crop"] for face in faces], width=GALLERY_WIDTH,
                     caption=[f"{face['index'] + 1} · {services.verdict_label(face)}" for face in faces])
        for face in faces:
            n = face["index"] + 1
            x, y, w, h = face["box"]
            head, abstained = services.agreement(face, view.labels)
            st.markdown(f"#### Face {n}")
            st.markdown(f"**{ui.md(head)}**")
            st.caption(" · ".join([f"Box x={x}, y={y}, {w}×{h} px", *(ui.md(line) for line in abstained)]))
            crop_col, chart_col, cam_col = st.columns([1, 3, 3])
            crop_col.image(face["crop"], width=150)
            with chart_col:
                probability_chart(face, f"predict_probs_{i}_{n}", view)
            with cam_col:
                grad_cams(face, view)
