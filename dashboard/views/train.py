"""Train: configure runs, submit them to the worker, and watch them live."""
from __future__ import annotations

import json
import uuid

import streamlit as st

from dashboard import services, ui
from dashboard.charts.runs import curves_figure

st.title("Train")

# Every control is bound to the URL: a link such as
# ?profile=paper&dataset=synthetic&archs=vgg16&configs=scratch-adam&epochs=3 (lists repeat the parameter) pre-fills the
# form, so an instructor can hand a class the exact setup to run. Choices show their ids: a bound widget
# writes what it shows into the URL.
URL = "query-params"
# The budget fields start from the chosen profile's values; choosing another profile resets them.
BUDGET_KEYS = ("epochs", "size", "batch", "pretrained_size", "max_train", "max_eval", "early_stopping")


def _reset_budget() -> None:
    for key in BUDGET_KEYS:
        st.session_state.pop(key, None)
        if key in st.query_params:
            del st.query_params[key]


# Outside the form so the budget fields below switch to the chosen profile's values at once.
profile = st.selectbox("Profile", services.PROFILE_NAMES, index=services.PROFILE_NAMES.index("standard"),
                       key="profile", bind=URL, on_change=_reset_budget,
                       help="  \n".join(f"**{p}**: {d}" for p, d in services.PROFILE_DESCRIPTIONS.items()))
start = services.profile_defaults(profile)

if queued := st.session_state.pop("quick_queued", None):
    # Arriving from Overview's quick comparison: say what was queued, so the form below (a new run)
    # is not mistaken for it.
    st.success(f"Quick comparison queued: {queued}. Its progress is under **Jobs** below; the form starts "
               "new runs.", icon=":material/check:")

with st.form("train_form"):
    names = services.dataset_names()
    dataset = st.selectbox("Dataset", names, index=names.index("synthetic") if "synthetic" in names else 0,
                           key="dataset", bind=URL)
    archs = st.multiselect("Architectures", list(services.ARCHITECTURES), default=["resnet50"], key="archs", bind=URL)
    # Full width: five configuration tags do not fit half a row at 1000 px. Preset to the configurations
    # this machine can run (the quick comparison's choice): ImageNet ones without cached weights would fail.
    runnable = list(dict.fromkeys(c.variant for c in services.quick_comparison_configs(1)))
    config_ids = st.multiselect("Configurations", list(services.CONFIG_IDS), default=runnable,
                                help="  \n".join(f"**{c}**: {d}" for c, d in services.DESCRIPTIONS.items()),
                                key="configs", bind=URL)
    c1, c2, c3 = st.columns(3)
    sizes, batches = [32, 48, 64, 96, 128, 160, 224], [8, 16, 32, 48, 64, 128, 256]
    epochs = c1.number_input("Epochs", 1, 200, start["epochs"], key="epochs", bind=URL)
    input_size = c2.select_slider("Input size (px)", sizes, start["input_size"], key="size", bind=URL)
    batch_size = c3.select_slider("Batch size", batches, start["batch_size"], key="batch", bind=URL)
    pretrained_size = None
    if start["pretrained_input_size"] != start["input_size"]:
        pretrained_size = c2.select_slider("Input size of ImageNet configurations (px)", sizes,
                                           start["pretrained_input_size"], key="pretrained_size", bind=URL)
    with st.expander("Advanced"):
        a1, a2 = st.columns(2)
        max_train = a1.number_input("Cap training images (0 = all)", 0, 1_000_000, start["max_train"] or 0, step=100,
                                    key="max_train", bind=URL)
        max_eval = a2.number_input("Cap validation/test images (0 = all)", 0, 1_000_000, start["max_eval"] or 0,
                                   step=100, key="max_eval", bind=URL)
        augment = a1.checkbox("Augmentation (the profile's set: see Protocol below)", True, key="augment", bind=URL)
        class_weights = a2.checkbox("Class weights (rare classes such as disgust count more)", False,
                                    key="class_weights", bind=URL)
        early = a1.number_input("Early stopping patience (0 = off)", 0, 50, start["early_stopping"],
                                key="early_stopping", bind=URL)
        seed = a2.number_input("Seed (first seed)", 0, 2**31 - 1, 42, key="seed", bind=URL)
        n_seeds = a1.number_input("Seeds per configuration", 1, 20, 1, key="seeds", bind=URL,
                                  help="Repeat every configuration with consecutive training seeds (same data "
                                       "split): Compare then shows each configuration's mean with a 95% band and "
                                       "tests differences across seeds. 3 or more are needed for a paired test.")
    st.form_submit_button("Estimate")
    submitted = st.form_submit_button("Start training", type="primary")

data_overview = services.dataset_overview(dataset)
if "error" in data_overview:
    st.error(data_overview["error"], icon=":material/error:")
ui.dataset_warnings(data_overview)

configs = []
if archs and config_ids:
    configs = services.build_configs(dataset, archs, config_ids, profile, epochs=int(epochs),
                                     batch_size=int(batch_size), input_size=int(input_size),
                                     pretrained_input_size=pretrained_size, max_train=int(max_train) or None,
                                     max_eval=int(max_eval) or None, augment=augment,
                                     class_weights=class_weights, early_stopping=int(early), seed=int(seed),
                                     n_seeds=int(n_seeds))
    missing = services.missing_weights(configs)
    if missing:
        st.warning(f"ImageNet weights are not cached for {', '.join(missing)}: those runs will fail. Run "
                   "`python -m core fetch-weights` on a machine with internet, or pick `scratch-*` configurations.",
                   icon=":material/warning:")
    st.caption(f"Protocol ({profile}): {services.protocol_caption(configs)}")
    repeats = f" ({int(n_seeds)} seeds of each configuration)" if n_seeds > 1 else ""
    st.caption(f"{len(configs)} run(s){repeats}; estimated time on this machine: "
               f"**{services.format_duration(services.estimate_seconds(configs))}**.")
else:
    st.caption("Pick at least one architecture and one configuration.")

if submitted and configs:
    group = f"grid-{uuid.uuid4().hex[:6]}"
    ids = services.submit(configs, group=group,
                          key=json.dumps([c.to_dict() for c in configs], sort_keys=True) + st.session_state.get(
                              "train_nonce", ""))
    st.session_state.train_nonce = uuid.uuid4().hex
    st.success(f"Queued {len(ids)} job(s) as group {group}.", icon=":material/check:")


@st.fragment(run_every=2)
def live_jobs() -> None:
    st.subheader("Jobs")
    # Evolve jobs are searches, not single runs: the Evolve page shows their progress.
    table = services.job_table()
    table = table[table.kind != "evolve"]
    if table.empty:
        st.info("No jobs yet. Configure runs above and press **Start training**.")
        return
    worker = services.worker_status()
    active = table[table.state.isin(services.ACTIVE_STATES)]
    if len(active) and not worker.get("alive"):
        ui.worker_warning("Jobs are waiting but no worker is running.", "jobs_start_worker")
    finished = None  # the runs table, read once per refresh (not once per finished job)
    for job in table.head(12).itertuples():
        with st.container(border=True):
            ui.job_header(job, f"**#{job.id} {job.label}**", f"cancel_{job.id}",
                          f"group {job.group}" if job.group else "")
            if job.state == "running":
                p = job.progress
                text = ("loading data and building the model" if not p.started
                        else "all epochs done; evaluating on the test split" if p.done >= p.total
                        else f"epoch {p.done + 1}/{p.total}, batch {p.part_done}/{p.part_total}{ui.eta(job)}")
                st.progress(p.fraction, text=text)
                metrics = json.loads(job.metrics) if isinstance(job.metrics, str) and job.metrics else {}
                if metrics:
                    cols = st.columns(len(metrics))
                    for col, (k, v) in zip(cols, metrics.items()):
                        col.metric(k, f"{v:.3f}")
            if job.state == "interrupted":  # why it stopped, when its worker was last seen; no ETA
                st.caption(ui.md(job.note), help="It resumes from its last checkpoint when a worker starts.")
            if job.run_id and job.state in ("running", "done", "interrupted"):
                hist = services.history(job.run_id)
                if len(hist):
                    st.plotly_chart(curves_figure({job.label: hist}, "accuracy"), key=f"curve_{job.id}")
            if job.state == "done" and job.run_id:
                finished = services.runs().set_index("run_id") if finished is None else finished
                if job.run_id in finished.index and finished.loc[job.run_id, "test_accuracy"] == finished.loc[
                        job.run_id, "test_accuracy"]:
                    st.caption(f"Test accuracy {finished.loc[job.run_id, 'test_accuracy']:.1%}: "
                               "see it beside the others on **Compare**.")
            if job.state == "failed":
                st.error(job.error or "failed", icon=":material/error:")
                if job.log_tail:
                    with st.expander("Log tail"):
                        st.code(job.log_tail)


live_jobs()
