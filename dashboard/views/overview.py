"""Overview: what data and weights are here, whether the worker runs, and a one-click comparison."""
from __future__ import annotations

import uuid

import numpy as np
import streamlit as st

from dashboard import services, ui
from dashboard.charts.data import dataset_counts_figure

st.title("Facial emotion recognition lab")
st.caption("Train ResNet50 and VGG16 in five configurations, evolve variants, and compare them side by side.")

# ---------------------------------------------------------------- quick comparison
with st.container(border=True):
    st.subheader("Quick comparison")
    n_seeds = int(st.number_input("Seeds per configuration", 1, 10, 1, key="quick_seeds",
                                  help="One seed trains each configuration once. Three or more show each "
                                       "configuration's mean with a 95% band on Compare and test differences "
                                       "across seeds; each seed costs another full set of runs."))
    quick = services.quick_comparison_configs(n_seeds)
    names = ", ".join(dict.fromkeys(c.variant for c in quick))
    seeds = f", each with {n_seeds} seeds ({len(quick)} runs)" if n_seeds > 1 else ""
    st.write(f"ResNet50 on the embedded synthetic faces, {quick[0].train.epochs} epochs on up to "
             f"{quick[0].data.max_train} training images: **{names}**{seeds}.")
    if len(quick) < len(services.CONFIG_IDS) * n_seeds:
        st.info("The ImageNet configurations are left out: their weights are not cached on this machine "
                "(see *ImageNet weights* below).", icon=":material/info:")
    st.write(f"Estimated time on this machine: **{services.format_duration(services.estimate_seconds(quick))}**.")
    if st.button("Start quick comparison", type="primary", key="quick_start"):
        group = f"quick-{uuid.uuid4().hex[:6]}"
        services.submit(quick, group=group, key=st.session_state.setdefault("quick_key", uuid.uuid4().hex))
        st.session_state.pop("quick_key")
        st.session_state.quick_queued = f"{len(quick)} run(s) of {names} in group {group}"
        st.switch_page("views/train.py")

# ---------------------------------------------------------------- worker, runs, jobs
left, right = st.columns(2)
with left:
    st.subheader("Worker")
    status = services.worker_status()
    if status.get("alive"):
        job = status.get("job_id")
        st.success(f"Worker running (pid {status.get('pid')})" + (f", on job {job}." if job else ", idle."),
                   icon=":material/memory:")
    elif services.job_table().state.isin(["queued", "interrupted"]).any():
        ui.worker_warning("Jobs are waiting but no worker is running.", "start_worker", rerun=True)
    else:
        st.info("Idle: a worker starts by itself when you queue a job, trains in the background (closing "
                "the browser does not stop it) and exits after 10 idle minutes.", icon=":material/memory:")
with right:
    st.subheader("ImageNet weights")
    weights = services.weights_status()
    # A list, not a table: a table's path column was cut at half the page's width; these lines wrap.
    st.markdown("\n".join(f"- **{w.architecture}**: {'cached' if w.cached else 'not cached'} at `{w.path}`"
                           for w in weights.itertuples()))
    if not weights.cached.all():
        st.caption("Offline? Run `python -m core fetch-weights` on a machine with internet access and copy the "
                   "files to the paths above. The `scratch-*` configurations need no weights.")

if not services.photo_model_on_offer():
    ui.reference_offer("overview_fetch_reference", "No model here has learnt from real photos yet (the quick "
                       "comparison trains on drawn faces).")

st.subheader("Recent runs")
table = services.runs()
if table.empty:
    st.info("No runs yet: start the quick comparison above, or configure runs on the **Train** page.",
            icon=":material/arrow_upward:")
else:
    st.dataframe(table[["label", "dataset", "status", "epochs_done", "epochs", "test_accuracy", "test_macro_f1",
                        "start_time"]].head(10), hide_index=True, key="recent_runs",
                 column_config={"test_accuracy": st.column_config.NumberColumn("test accuracy", format="%.3f"),
                                "test_macro_f1": st.column_config.NumberColumn("macro-F1", format="%.3f")})

# ---------------------------------------------------------------- datasets
st.subheader("Datasets")
name = st.selectbox("Dataset", services.dataset_names(), key="overview_dataset")
overview = services.dataset_overview(name)
if "error" in overview:
    st.error(overview["error"], icon=":material/error:")
else:
    counts = overview["counts"]
    totals = counts.groupby("split")["count"].sum()
    cols = st.columns(4)
    for col, split in zip(cols, ("train", "val", "test")):
        col.metric(f"{split} images", int(totals.get(split, 0)))
    cols[3].metric("image size", f"{overview['image_size']} px")
    for note in overview["notes"]:
        st.caption(note)
    ui.dataset_warnings(overview)
    st.plotly_chart(dataset_counts_figure(counts), key="dataset_counts")
    st.markdown("**Samples per class**")
    for cls, images in overview["samples"].items():
        if len(images):
            strip = np.hstack(list(images))
            st.image(np.kron(strip, np.ones((2, 2), dtype=np.uint8)), caption=cls)
