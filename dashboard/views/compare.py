"""Compare runs: curves, test results with confidence intervals, confusion matrices,
per-class metrics, a significance test, misclassified images and an HTML export."""
from __future__ import annotations

from datetime import datetime
from itertools import combinations

import streamlit as st

from dashboard import services, ui
from dashboard.charts import runs as run_charts
from dashboard.charts.common import metric_label, run_colors
from dashboard.charts.report import report_html
from dashboard.views import compare_export, compare_seeds
from dashboard.views.compare_sections import cost as cost_section

ALL_RUNS = "All runs"
LATEST = 4  # runs picked by default when no comparison grid has finished runs
CM_PER_ROW = 2  # three 7x7 matrices in a row at 1000 px leave each ~180 px: labels and colour bar cut
STATUS_SUFFIX = {"RUNNING": " (training)", "SCHEDULED": " (queued)", "FAILED": " (failed)", "KILLED": " (cancelled)"}


def reset_selection() -> None:
    st.session_state.pop("compare_runs", None)


st.set_page_config(layout="wide")
st.title("Compare runs")
table = services.runs()
if table.empty:
    st.info("No runs yet. Train models on the **Train** page, or start the one-click **quick comparison** on "
            "the **Overview** page; their curves and results appear here while they train.")
    st.stop()

labels = services.run_labels(table)
status = dict(zip(table.run_id, table.status))
colors = run_colors(list(labels.values()))

# ------------------------------------------------------------------ selection
groups = [g for g in dict.fromkeys(table.group) if g]  # newest first, as runs() is
finished_groups = [g for g in groups if (table[table.group == g].status == "FINISHED").any()]
group_col, dataset_col, arch_col, variant_col = st.columns([2, 1, 1, 1])
group = group_col.selectbox(
    "Comparison grid", [ALL_RUNS, *groups], index=1 + groups.index(finished_groups[0]) if finished_groups else 0,
    format_func=lambda g: g if g == ALL_RUNS else f"{g} ({(table.group == g).sum()} runs)",
    key="compare_group", on_change=reset_selection, persist_state="session")
filters = {}
for col, column, label in ((dataset_col, "dataset", "Dataset"), (arch_col, "arch", "Architecture"),
                           (variant_col, "variant", "Configuration")):
    values = sorted(set(table[column]) - {""})
    ui.keep_valid(f"compare_{column}", values)
    filters[column] = col.multiselect(label, values, key=f"compare_{column}", placeholder="All",
                                      on_change=reset_selection, persist_state="session")

candidates = table if group == ALL_RUNS else table[table.group == group]
for column, chosen in filters.items():
    if chosen:
        candidates = candidates[candidates[column].isin(chosen)]
options = candidates.run_id.tolist()
ui.keep_valid("compare_runs", options)
if "compare_runs" not in st.session_state:
    finished = candidates[candidates.status == "FINISHED"].run_id.tolist()
    st.session_state.compare_runs = options if group != ALL_RUNS else (finished or options)[:LATEST]
selected = st.multiselect("Runs", options, key="compare_runs", persist_state="session",
                          format_func=lambda r: labels[r] + STATUS_SUFFIX.get(status[r], ""),
                          placeholder="Pick runs to compare")
if not selected:
    st.info("No runs match these filters. Clear a filter or pick another comparison grid." if not options
            else "Pick one or more runs above to compare them.")
    st.stop()

# ------------------------------------------------------------------ run states
rows = table.set_index("run_id").loc[selected]
reports = {r: services.report(r) for r in selected if status[r] == "FINISHED"}
done = [r for r, rep in reports.items() if rep]  # runs with test results, in selection order
notes = []  # one line per run without test results, shown here and in the report
for rid, row in rows.iterrows():
    name = labels[rid]
    if row.status in ("RUNNING", "SCHEDULED"):
        progress = f"epoch {row.epochs_done} of {row.epochs}" if row.epochs else f"{row.epochs_done} epochs done"
        st.info(f"**{ui.md(name)}** is still training ({progress}). Its curves so far are shown; its test "
                "results appear when it finishes.")
        notes.append(f"{name}: still training ({progress}); curves so far only.")
    elif row.status == "FAILED":
        error = (row.error or "no error message was recorded").strip()
        first, _, rest = error.partition("\n")
        st.error(f"**{ui.md(name)}** failed: {ui.md(first)}  \nIt has no test results; its curves up to the failure "
                 "are shown.")
        if rest.strip():
            st.expander(f"Full error of {name}").code(error, language=None)
        notes.append(f"{name}: failed: {error}")
    elif row.status == "KILLED":
        st.warning(f"**{ui.md(name)}** was cancelled after {row.epochs_done} epochs; it has no test results.")
        notes.append(f"{name}: cancelled after {row.epochs_done} epochs.")
    elif rid not in done:
        st.warning(f"**{ui.md(name)}** finished without a test report.")
        notes.append(f"{name}: finished without a test report.")
    if row.data_warnings:
        st.warning(f"**{ui.md(name)}** was trained on data with a caveat: {ui.md(row.data_warnings)}",
                   icon=":material/dataset:")
        notes.append(f"{name}: data caveat: {row.data_warnings}")

st.caption("Each run's optimizer and learning rate on 2-D loss surfaces: " + " · ".join(
    f"[{ui.md(labels[r])}]({href})" for r in selected if (href := services.optimizers_href(r))))

# ------------------------------------------------------------------ repeated seeds
repeats = services.has_repeats(selected)
if repeats and st.toggle("Group repeated seeds by configuration", True, key="compare_grouped",
                         help="Runs that differ only in their seed are shown as one configuration: mean, 95% band "
                              "and paired tests across seeds. Off: every run on its own."):
    compare_seeds.render(selected, live=any(status[r] in ("RUNNING", "SCHEDULED") for r in selected))
    st.stop()

# ------------------------------------------------------------------ curves
st.subheader("Training curves")
live = [r for r in selected if status[r] in ("RUNNING", "SCHEDULED")]


def curves(histories: dict, metric: str):
    # Each run's legend group (title, train, validation) needs about 55 px.
    return ui.tight(run_charts.curves_figure(histories, metric, colors), height=max(450, 55 * len(histories) + 80))


@st.fragment(run_every=5 if live else None)
def training_curves() -> None:
    # While a run trains, only this part refreshes; when it ends, the whole page
    # reruns so its test results appear.
    now = services.runs().set_index("run_id").status
    if any(now.get(r) not in ("RUNNING", "SCHEDULED") for r in live):
        st.rerun()
    histories = {labels[r]: services.history(r) for r in selected}
    acc_tab, loss_tab = st.tabs(["Accuracy", "Loss"])
    for tab, metric in ((acc_tab, "accuracy"), (loss_tab, "loss")):
        tab.plotly_chart(curves(histories, metric), key=f"compare_curves_{metric}")
    st.caption("Solid lines: training; dashed lines: validation. Click a legend group to hide a run.")


training_curves()

if not done:
    st.info("None of the selected runs has test results yet: the results table, confusion matrices and "
            "significance test appear here once a run finishes training.")
    st.stop()

# ------------------------------------------------------------------ results
st.subheader("Test results")
if split_note := services.split_warning(done):
    st.warning(ui.md(split_note), icon=":material/warning:")
results = services.results_table(done)
percent = st.column_config.NumberColumn(format="percent")
f1 = percent  # F1 in % like the accuracies beside it: one unit per table
st.dataframe(results, hide_index=True, column_order=[c for c in results.columns if c != "run_id"], column_config={
    "test accuracy": percent, "CI low": st.column_config.NumberColumn("95% CI low", format="percent"),
    "CI high": st.column_config.NumberColumn("95% CI high", format="percent"), "macro-F1": f1,
    "best val accuracy": percent, "parameters (M)": st.column_config.NumberColumn(format="%.2f"),
    "epoch time (s)": st.column_config.NumberColumn(format="%.1f"),
    "train images/s": st.column_config.NumberColumn(format="%.1f"),
    "total time (s)": st.column_config.NumberColumn(format="%.0f"),
    **{c: f1 for c in results.columns if c.startswith("F1 ")},
    **{c: percent for c in results.columns if c.endswith(" TTA")}})
with st.expander("Training protocol of each run (its profile's values)"):
    st.dataframe(services.protocol_table(done), hide_index=True)
stamp = datetime.now().strftime("%Y%m%d-%H%M")
st.download_button("Download table (CSV)", results.to_csv(index=False), file_name=f"comparison-{stamp}.csv",
                   mime="text/csv", icon=":material/download:", key="compare_csv")
accuracy_fig = ui.tight(run_charts.metric_bars_figure(results, "test accuracy", "CI low", "CI high", label="run",
                                                   colors=colors))
st.plotly_chart(accuracy_fig, key="compare_accuracy_bars")
st.caption(f"Measured on {ui.md(services.measured_on(done))}; one seed per run. Error bars: bootstrap 95% "
           "confidence interval of test accuracy (test images resampled). Overlapping intervals mean the test set "
           "cannot tell the runs apart with confidence.")

# ------------------------------------------------------------------ confusion matrices
st.subheader("Confusion matrices")
normalize = st.toggle("Row-normalised (each row shows recall fractions)", key="compare_cm_normalize")
confusion_figs = {r: ui.tight(run_charts.confusion_figure(reports[r]["confusion_matrix"], reports[r]["class_names"],
                                                       normalize, title=labels[r])) for r in done}
for start in range(0, len(done), CM_PER_ROW):
    for col, rid in zip(st.columns(CM_PER_ROW), done[start:start + CM_PER_ROW]):
        col.plotly_chart(confusion_figs[rid], key=f"compare_cm_{rid}")

# ------------------------------------------------------------------ per-class metrics
st.subheader("Per-class metrics")
metric = st.radio("Metric", ["f1", "precision", "recall"], format_func=metric_label, horizontal=True,
                  key="compare_class_metric")
per_class_fig = ui.tight(run_charts.per_class_figure({labels[r]: reports[r] for r in done}, metric, colors))
st.plotly_chart(per_class_fig, key="compare_per_class")

# ------------------------------------------------------------------ significance
st.subheader("Is the difference real?")
if len(done) < 2:
    st.info("Select two or more finished runs to test whether one model is really better than another.")
else:
    a_col, b_col = st.columns(2)
    ui.keep_valid("compare_sig_a", done)
    ui.keep_valid("compare_sig_b", done)
    run_a = a_col.selectbox("Model A", done, index=0, format_func=labels.get, key="compare_sig_a")
    run_b = b_col.selectbox("Model B", done, index=1, format_func=labels.get, key="compare_sig_b")
    if run_a == run_b:
        st.info("Pick two different runs.")
    elif (outcome := services.significance(run_a, run_b, (labels[run_a], labels[run_b]))) is None:
        st.warning("These two runs were not scored on the same test images (different datasets or test "
                   "splits), so they cannot be compared image by image. Compare their confidence intervals "
                   "above instead.")
    else:
        st.markdown(ui.md(outcome[1]))
        st.caption("McNemar's test looks only at the test images where exactly one of the two models is right "
                   "(exact binomial test when there are fewer than 25 such images).")
if not repeats:
    compare_seeds.single_seed_offer(done)

# ------------------------------------------------------------------ misclassified images
st.subheader("Misclassified test images")
ui.keep_valid("compare_gallery_run", done)
gallery_run = st.selectbox("Run", done, format_func=labels.get, key="compare_gallery_run")
gallery = services.misclassified_or_error(gallery_run)
if "error" in gallery:
    st.warning(f"Cannot show this run's test images: {ui.md(gallery['error'])}")
elif gallery.get("stale"):
    st.warning("The dataset has changed on disk since this run was evaluated, so its test images no longer "
               "match its predictions.")
elif not len(gallery["images"]):
    st.success("This run classified every test image correctly.")
else:
    st.caption(f"The {len(gallery['images'])} most confident mistakes, most confident first: true → predicted "
               "(confidence).")
    st.image([ui.enlarge(img) for img in gallery["images"]], width=144, caption=[
        f"{t} → {p} ({c:.0%})" for t, p, c in zip(gallery["true"], gallery["pred"], gallery["confidence"])])

# ------------------------------------------------------------------ accuracy against cost
cost_sections = cost_section.render(done, sorted(set(rows.loc[done, "dataset"])))

# ------------------------------------------------------------------ export
st.subheader("Export")
pair_texts = []
for a, b in combinations(done, 2):
    outcome = services.significance(a, b, (labels[a], labels[b]))
    pair_texts.append(outcome[1] if outcome else f"{labels[a]} and {labels[b]} were scored on different test "
                                                  "sets, so McNemar's test does not apply.")
sections = [
    ("Runs", "\n\n".join([f"{labels[r]}: finished" for r in done] + notes)),
    ("Test accuracy (bootstrap 95% CI)", accuracy_fig),
    ("Results", results.round(4)),
    *[(f"{metric_label(m)} curves", curves({labels[r]: services.history(r) for r in selected}, m))
      for m in ("accuracy", "loss")],
    *[(f"Confusion matrix: {labels[r]}", confusion_figs[r]) for r in done],
    (f"Per-class {metric_label(metric)}", per_class_fig),
    *cost_sections,
    *([("Significance (McNemar)", "\n\n".join(pair_texts))] if pair_texts else []),
]
st.download_button("Download comparison report (HTML)", lambda: report_html(f"Run comparison {stamp}", sections),
                   file_name=f"comparison-{stamp}.html", mime="text/html", icon=":material/description:",
                   key="compare_report")
st.caption("One self-contained file (charts included) that opens offline in any browser.")

compare_export.render(done, labels)
