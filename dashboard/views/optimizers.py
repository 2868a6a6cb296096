"""Optimizers: the lab's optimizers on 2-D loss surfaces, and a live race on faces.

Every control is bound to the URL (``bind="query-params"``): a link restores the whole
state, so an instructor can hand a class an exercise. Presentation mode tucks the
advanced controls away and enlarges charts and text.
"""
from __future__ import annotations

import streamlit as st

from dashboard import services, ui
from dashboard.charts import teaching as teaching_charts
from dashboard.charts.runs import curves_figure

URL = "query-params"
LEARNING_RATES = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3]

st.set_page_config(layout="wide")
st.title("Optimizers")
present = st.toggle("Presentation mode (larger charts and text, advanced controls tucked away)", key="present",
                    bind=URL)
font, height = (20, 680) if present else (None, 520)
# Streamlit's chart theme sets its own font sizes; presenting keeps the figures' larger ones.
theme = None if present else "streamlit"
if present:
    st.html("<style>.stMarkdown p, .stCaption, label p {font-size: 1.25rem !important}</style>")

defaults = services.playground_defaults()
# The picker has a row of its own: in a narrower column its tags overflowed and hid Adam and AdamW.
c2 = st.container()
c1, c3, c4 = st.columns(3)
# Choices show their ids, not titles: a bound widget writes what it shows into the URL.
surface = c1.selectbox("Loss surface", list(services.SURFACES), key="surface", bind=URL)
# Registry names, not labels: the URL keeps the names (a format_func would put labels in links).
names = c2.multiselect("Optimizers", list(services.OPTIMIZERS), default=list(services.OPTIMIZERS), key="opt",
                       bind=URL, help="; ".join(f"{n}: {label}" for n, label in services.OPTIMIZERS.items()))
rates = sorted(set(LEARNING_RATES) | {r for r in [services.parse_rate(st.query_params.get("lr"))] if r})
lr = c3.select_slider("Learning rate (all optimizers)", rates, value=defaults["learning_rate"],
                      format_func=services.format_rate, key="lr", bind=URL)
steps = c4.slider("Steps", 10, 500, 200, step=10, key="steps", bind=URL)

info = services.surface_info(surface)
advanced = st.expander("Advanced settings" + (" (hidden while presenting)" if present else ""), expanded=not present)
a1, a2, a3, a4 = advanced.columns(4)
(x0, x1), (y0, y1) = info["x_range"], info["y_range"]
# One start per surface: each has its own range, so the keys (and URL parameters) carry its name.
x = a1.slider("Start x", float(x0), float(x1), float(info["start"][0]), step=(x1 - x0) / 200, format="%.3f",
              key=f"{surface}_x", bind=URL)
y = a2.slider("Start y", float(y0), float(y1), float(info["start"][1]), step=(y1 - y0) / 200, format="%.3f",
              key=f"{surface}_y", bind=URL)
momentum = a3.slider("SGD momentum (Nesterov)", 0.0, 0.99, defaults["momentum"], 0.01, key="momentum", bind=URL)
rho = a4.slider("RMSprop rho", 0.0, 0.99, defaults["rho"], 0.01, key="rho", bind=URL)
beta_1 = a1.slider("Adam/AdamW beta 1", 0.0, 0.99, defaults["beta_1"], 0.01, key="beta1", bind=URL)
beta_2 = a2.select_slider("Adam/AdamW beta 2", [0.9, 0.99, 0.999, 0.9999], defaults["beta_2"], key="beta2", bind=URL)
decay = a3.select_slider("AdamW weight decay", [0.0, 1e-4, 1e-3, 1e-2, 0.1, 1.0], defaults["weight_decay"],
                         format_func=services.format_rate, key="wd", bind=URL)
seed = a4.number_input("Noise seed (noisy surface)", 0, 10_000, 0, key="noise_seed", bind=URL)

st.markdown(f"**{info['title']}.** {info['lesson']}")
if not names:
    st.info("Pick at least one optimizer.")
    st.stop()
settings = {**defaults, "learning_rate": lr, "momentum": momentum, "rho": rho, "beta_1": beta_1, "beta_2": beta_2,
            "weight_decay": decay}
paths = services.optimizer_paths(surface, settings, int(steps), (x, y), tuple(names), int(seed))
labels = [services.OPTIMIZERS[n] for n in paths.names]
if diverged := paths.diverged():
    st.warning(f"Diverged at learning rate {services.format_rate(lr)}: "
               f"{', '.join(services.OPTIMIZERS[n] for n in diverged)} (the path leaves the picture). "
               "Lower the learning rate to see it converge.", icon=":material/warning:")
xs, ys, z = services.surface_grid(surface)

plot, side = st.columns([3, 2]) if not present else (st.container(), st.container())
plot.plotly_chart(ui.tight(teaching_charts.optimizer_paths_figure(xs, ys, z, dict(zip(labels, paths.theta)),
                                                                  minimum=info["minimum"], font_size=font),
                           height=height + 80),  # the play row and slider take 80 px below the plot
                  key="optimizers_paths", theme=theme)
side.plotly_chart(ui.tight(teaching_charts.optimizer_loss_figure(dict(zip(labels, paths.loss)), font_size=font),
                           height=height // 2), key="optimizers_loss", theme=theme)
side.plotly_chart(ui.tight(teaching_charts.step_size_figure(dict(zip(labels, paths.step_size)), font_size=font),
                           height=height // 2 + 120), key="optimizers_step_size", theme=theme)  # two panels
st.caption(
    f"Each path: `keras.optimizers` applied to a two-element variable, {steps} steps from ({x:.3f}, {y:.3f}), all "
    f"optimizers together in one compiled loop ({paths.seconds:.2f} s on this machine; a first run also starts "
    "TensorFlow or compiles the loop for this surface and set of optimizers). Press ▶ Play to animate. "
    "Effective step size = |change of a parameter| / |its gradient|: plain SGD's is its learning rate on both "
    "parameters; RMSprop and Adam give each parameter its own."
    + (f" Noisy surface: every step sees a mini-batch whose minimum is shifted by N(0, {info['noise']}²) per "
       f"coordinate (seed {seed}); the loss shown is the full-data loss." if info["noise"] else ""))

# ------------------------------------------------------------------ classroom experiment
st.divider()
st.subheader("Classroom experiment: Adam vs RMSprop vs SGD on faces, live")
setup = services.classroom_defaults()
st.markdown(
    f"Trains **only a classifier head** (one dense softmax layer) on features from one pass of a frozen "
    f"**{setup['arch']}** backbone ({setup['weights']} weights when cached on this machine, otherwise a randomly "
    f"initialised backbone), {setup['input_size']} px faces of the **{setup['dataset']}** set. The three heads "
    f"start from the same random weights and see the same batches in the same order, for {setup['epochs']} epochs at "
    f"learning rate {setup['learning_rate']:g}. It runs here, in the dashboard: seconds once the features are "
    "cached; the first run also makes the one backbone pass over the data, which takes longer.")
if st.button("Run the experiment", type="primary", key="classroom_start"):
    with st.spinner("Computing backbone features (cached after the first run)…"):
        experiment = services.classroom_experiment()
    progress, chart = st.progress(0.0, text="Training the three heads…"), st.empty()
    for rows in experiment.epochs():
        done = int(rows.epoch.max())
        progress.progress(done / setup["epochs"], text=f"epoch {done} of {setup['epochs']}")
        chart.plotly_chart(ui.tight(curves_figure(services.classroom_histories(rows), "accuracy"),
                                    height=height), key=f"classroom_live_{done}")
    st.session_state.classroom = {"rows": rows, "details": experiment.details}
    st.rerun()
if result := st.session_state.get("classroom"):
    d = result["details"]
    if d["note"]:
        st.warning(d["note"], icon=":material/info:")
    acc, loss = st.tabs(["Accuracy", "Loss"])
    for tab, metric in ((acc, "accuracy"), (loss, "loss")):
        tab.plotly_chart(ui.tight(curves_figure(services.classroom_histories(result["rows"]), metric),
                                  height=height), key=f"classroom_{metric}")
    final = result["rows"][result["rows"].epoch == result["rows"].epoch.max()]
    st.dataframe(final, hide_index=True, key="classroom_table")
    st.caption(
        f"Trained: a dense head only, on {d['feature_dim']} pooled features of {d['arch']} with "
        f"{'ImageNet' if d['weights_used'] == 'imagenet' else 'random (seed ' + str(d['seed']) + ')'} weights; "
        f"{d['n_train']} training images, measured on {d['n_val']} validation images of {d['dataset']}"
        + (f" ({d['n_val']} of its {val_total}: the experiment caps evaluation as the quick profile does)"
           if (val_total := services.dataset_sizes(d["dataset"]).get("val", 0)) > d["n_val"] else "")
        + f" (seed {d['seed']}). Solid lines: training (mean over the epoch, as Keras reports it); dashed: validation.")
