"""Train: configure runs, submit them to the worker, and watch them live."""
from __future__ import annotations

import json
import uuid

import streamlit as st

from dashboard import charts, services, ui

st.title("Train")

# A link such as ?profile=paper&dataset=synthetic&archs=vgg16&configs=scratch-adam&epochs=3 pre-fills the form,
# so an instructor can hand a class the exact setup to run.
params = st.query_params


def _param_list(name: str, allowed, default):
    values = [v for v in params.get(name, "").split(",") if v in allowed]
    return values or default


def _param_int(name: str, allowed, default: int) -> int:
    try:
        value = int(params.get(name, default))
    except ValueError:
        return default
    return value if value in allowed else default


# Outside the form so the budget fields below switch to the chosen profile's values at once.
wanted_profile = params.get("profile", "standard")
profile = st.selectbox("Profile", services.PROFILE_NAMES, key="train_profile",
                       index=services.PROFILE_NAMES.index(
                           wanted_profile if wanted_profile in services.PROFILE_NAMES else "standard"),
                       format_func=lambda p: f"{p}: {services.PROFILE_DESCRIPTIONS[p]}")
start = services.profile_defaults(profile)

with st.form("train_form"):
    names = services.dataset_names()
    wanted = params.get("dataset", "synthetic")
    dataset = st.selectbox("Dataset", names, index=names.index(wanted) if wanted in names else 0,
                           key="train_dataset")
    c1, c2 = st.columns(2)
    archs = c1.multiselect("Architectures", list(services.ARCHITECTURES),
                           default=_param_list("archs", services.ARCHITECTURES, ["resnet50"]), key="train_archs")
    config_ids = c2.multiselect("Configurations", list(services.CONFIG_IDS),
                                default=_param_list("configs", services.CONFIG_IDS, list(services.CONFIG_IDS)),
                                format_func=lambda c: f"{c} — {services.DESCRIPTIONS[c]}", key="train_configs")
    c1, c2, c3 = st.columns(3)
    sizes, batches = [32, 48, 64, 96, 128, 160, 224], [8, 16, 32, 48, 64, 128, 256]
    # Keys carry the profile: switching profiles starts these fields from the new profile's values.
    epochs = c1.number_input("Epochs", 1, 200, _param_int("epochs", range(1, 201), start["epochs"]),
                             key=f"train_epochs_{profile}")
    input_size = c2.select_slider("Input size (px)", sizes, _param_int("size", sizes, start["input_size"]),
                                  key=f"train_size_{profile}")
    batch_size = c3.select_slider("Batch size", batches, _param_int("batch", batches, start["batch_size"]),
                                  key=f"train_batch_{profile}")
    pretrained_size = None
    if start["pretrained_input_size"] != start["input_size"]:
        pretrained_size = c2.select_slider("Input size of ImageNet configurations (px)", sizes,
                                           start["pretrained_input_size"], key=f"train_pretrained_size_{profile}")
    with st.expander("Advanced"):
        a1, a2 = st.columns(2)
        max_train = a1.number_input("Cap training images (0 = all)", 0, 1_000_000, start["max_train"] or 0, step=100,
                                    key=f"train_max_{profile}")
        max_eval = a2.number_input("Cap validation/test images (0 = all)", 0, 1_000_000, start["max_eval"] or 0,
                                   step=100, key=f"train_max_eval_{profile}")
        augment = a1.checkbox("Augmentation (the profile's set: see Protocol below)", True, key="train_augment")
        class_weights = a2.checkbox("Class weights (rare classes such as disgust count more)", False,
                                    key="train_cw")
        early = a1.number_input("Early stopping patience (0 = off)", 0, 50, start["early_stopping"],
                                key=f"train_early_{profile}")
        seed = a2.number_input("Seed", 0, 2**31 - 1, 42, key="train_seed")
    st.form_submit_button("Estimate")
    submitted = st.form_submit_button("Start training", type="primary")

configs = []
if archs and config_ids:
    configs = services.build_configs(dataset, archs, config_ids, profile, epochs=int(epochs),
                                     batch_size=int(batch_size), input_size=int(input_size),
                                     pretrained_input_size=pretrained_size, max_train=int(max_train) or None,
                                     max_eval=int(max_eval) or None, augment=augment,
                                     class_weights=class_weights, early_stopping=int(early), seed=int(seed))
    missing = services.missing_weights(configs)
    if missing:
        st.warning(f"ImageNet weights are not cached for {', '.join(missing)}: those runs will fail. Run "
                   "`python -m core fetch-weights` on a machine with internet, or pick `scratch-*` configurations.",
                   icon=":material/warning:")
    st.caption(f"Protocol ({profile}): {services.protocol_caption(configs)}")
    st.caption(f"{len(configs)} run(s); estimated time on this machine: "
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
            if job.run_id and job.state in ("running", "done", "interrupted"):
                hist = services.history(job.run_id)
                if len(hist):
                    st.plotly_chart(charts.curves_figure({job.label: hist}, "accuracy"), key=f"curve_{job.id}")
            if job.state == "done" and job.run_id:
                finished = services.runs().set_index("run_id")
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
