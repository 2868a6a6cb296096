"""Compare's grouped view: runs that repeat one configuration with different seeds, shown as one
configuration with a mean, a 95% band and paired tests across seeds; and, where every configuration
ran once, the offer to queue more seeds. Called by views/compare.py; not a page of its own."""
from __future__ import annotations

import math
import uuid
from datetime import datetime

import streamlit as st

from dashboard import services, ui
from dashboard.charts import runs as run_charts
from dashboard.charts import seeds as seed_charts
from dashboard.charts.common import metric_label, run_colors
from dashboard.charts.report import report_html
from dashboard.views.compare_sections import cost as cost_section

X_AXES = {"epoch": "Epoch", "wall-clock time": "Training time (s)"}
P_VALUE = st.column_config.NumberColumn(format="%.4f")


def _styled(table):
    """``table`` with every accuracy-like column in % (one unit per table) and a dash where a value cannot
    exist (a configuration with one seed has no interval; the captions say so), never "None" or "nan"."""
    percent = [c for c in table.columns if c.startswith(("test accuracy", "validation accuracy", "final val",
                                                         "best val accuracy", "macro-F1"))]
    formats = {c: "{:.1%}" for c in percent} | ({"best val epoch": "{:.0f}"} if "best val epoch" in table else {})
    return table.style.format(formats, na_rep="—")


def render(selected: list[str], live: bool) -> None:
    """The grouped Compare view for ``selected`` runs (some of which repeat a configuration)."""
    groups = services.repeat_groups(selected)
    colors = run_colors(list(groups))
    seeds_per = {name: len(rids) for name, rids in groups.items()}
    st.caption(f"{len(selected)} runs of {len(groups)} configuration(s), grouped by configuration: runs that differ "
               "only in their training seed (same data split, so the same validation and test images). Seeds per "
               "configuration: " + ", ".join(f"{ui.md(n)}: {k}" for n, k in seeds_per.items()) + ".")

    st.subheader("Training curves across seeds")
    c1, c2 = st.columns(2)
    smoothing = c1.slider("Smoothing (exponential moving average)", 0.0, 0.95, 0.0, 0.05, key="compare_smoothing",
                          help="0 shows the raw curves; higher values average over more epochs. The unsmoothed "
                               "mean stays faded behind.")
    x_axis = c2.radio("x-axis", list(X_AXES), horizontal=True, key="compare_x_axis")
    x = "epoch" if x_axis == "epoch" else "time"

    @st.fragment(run_every=5 if live else None)
    def curves() -> None:
        acc_tab, loss_tab = st.tabs(["Accuracy", "Loss"])
        for tab, metric in ((acc_tab, "accuracy"), (loss_tab, "loss")):
            fig = seed_charts.band_figure(services.seed_bands(groups, metric, x, smoothing), metric, colors,
                                          X_AXES[x_axis])
            tab.plotly_chart(ui.tight(fig, height=max(450, 55 * len(groups) + 80)), key=f"compare_band_{metric}")
        st.caption("Thick line: mean across seeds (solid training, dashed validation); shaded: 95% t-interval of "
                   "that mean across seeds (needs 2 or more seeds); faint lines: each seed; thin faded line: the "
                   "unsmoothed mean. Wall-clock time: each epoch at the seeds' mean elapsed training time.")

    curves()

    per_seed = services.per_seed_table(groups)
    if per_seed.empty:
        st.info("None of the selected runs has test results yet: the results across seeds and the paired tests "
                "appear here once runs finish.")
        return
    datasets = sorted(services.runs().set_index("run_id").loc[per_seed.run_id].dataset.unique())

    st.subheader("Results across seeds")
    summary = st.radio("Validation accuracy at", services.SEED_SUMMARIES, horizontal=True, key="compare_summary")
    per_seed = services.with_summary(per_seed, summary)
    table = services.aggregate_table(per_seed)
    st.dataframe(_styled(table), hide_index=True, key="compare_seed_table")
    st.caption(f"Mean across seeds with its 95% t-interval; test metrics on "
               f"{ui.md(services.measured_on(per_seed.run_id.tolist()))} (the model at the end of training), "
               "validation accuracy at the "
               f"{summary}. A configuration with one seed has no interval.")
    metric = st.radio("Metric", list(services.SEED_METRICS), horizontal=True, key="compare_seed_metric")
    strip = ui.tight(seed_charts.seed_strip_figure(per_seed, table, metric, colors))
    st.plotly_chart(strip, key="compare_seed_strip")
    with st.expander("Per-seed values"):
        st.dataframe(_styled(per_seed), hide_index=True, key="compare_per_seed")

    st.subheader("Confusion matrices (mean over seeds)")
    normalize = st.toggle("Row-normalised (each row shows recall fractions)", key="compare_seed_cm_normalize")
    finished = {name: per_seed[per_seed.configuration == name].run_id.tolist() for name in table.configuration}
    cms = {}
    for name, rids in finished.items():
        cm, classes = services.mean_confusion(rids)
        cms[name] = ui.tight(run_charts.confusion_figure(cm, classes, normalize, title=f"{name} ({len(rids)} seeds)"))
    names = list(cms)
    for start in range(0, len(names), 2):  # two per row: three leave each ~180 px at 1000 px, labels cut
        for i, (col, name) in enumerate(zip(st.columns(2), names[start:start + 2])):
            col.plotly_chart(cms[name], key=f"compare_seed_cm_{start + i}")

    st.subheader("Per-class F1 across seeds")
    per_class = ui.tight(seed_charts.per_class_band_figure({n: services.per_class_f1(r) for n, r in finished.items()},
                                                           colors))
    st.plotly_chart(per_class, key="compare_seed_per_class")
    st.caption("Bars: mean F1 across seeds on the test split; error bars: 95% t-interval across seeds.")

    cost_sections = cost_section.render(per_seed.run_id.tolist(), datasets, key="compare_seed")

    st.subheader("Is the difference real, across seeds?")
    verdicts, pairs = _significance(per_seed, names, metric)

    st.subheader("Export")
    stamp = datetime.now().strftime("%Y%m%d-%H%M")
    st.download_button("Download aggregated table (CSV)", table.to_csv(index=False),
                       file_name=f"comparison-seeds-{stamp}.csv", mime="text/csv", icon=":material/download:",
                       key="compare_seed_csv")
    def sections() -> list:  # built when the report is downloaded: the curves cost a query per run
        return [
            ("Configurations", "\n\n".join(f"{n}: seeds {s}" for n, s in zip(table.configuration, table["seed list"]))),
            ("Results across seeds (mean, 95% t-interval)", table.round(4)),
            ("Per-seed values", per_seed.round(4)),
            (f"{metric} per seed", strip),
            *[(f"{metric_label(m)} curves (mean, 95% band across seeds)", ui.tight(seed_charts.band_figure(
                services.seed_bands(groups, m, x, smoothing), m, colors, X_AXES[x_axis])))
              for m in ("accuracy", "loss")],
            *[(f"Confusion matrix (mean over seeds): {n}", fig) for n, fig in cms.items()],
            ("Per-class F1 across seeds", per_class),
            *cost_sections,
            *([(f"Is the difference real ({metric}, paired by seed)", "\n\n".join(verdicts))] if verdicts else []),
            *([("All pairs (paired t-test, Holm-corrected)", pairs.round(4))] if pairs is not None else []),
        ]

    st.download_button("Download comparison report (HTML)",
                       lambda: report_html(f"Seeded comparison {stamp}", sections()),
                       file_name=f"comparison-seeds-{stamp}.html", mime="text/html", icon=":material/description:",
                       key="compare_seed_report")


def _significance(per_seed, names: list[str], metric: str):
    """The paired tests for a chosen pair, per-seed McNemar, and the Holm table over all pairs.
    Returns the verdicts for every pair and the Holm table, for the report."""
    if len(names) < 2:
        st.info("Select runs of two or more configurations to test whether one is really better.")
        return [], None
    a_col, b_col = st.columns(2)
    ui.keep_valid("compare_seed_a", names)
    ui.keep_valid("compare_seed_b", names)
    name_a = a_col.selectbox("Configuration A", names, index=0, key="compare_seed_a")
    name_b = b_col.selectbox("Configuration B", names, index=1, key="compare_seed_b")
    if name_a == name_b:
        st.info("Pick two different configurations.")
    else:
        result, verdict = services.paired_test(per_seed, name_a, name_b, metric)
        st.markdown(ui.md(verdict))
        if result["n"] >= 2:
            cols = st.columns(4)
            cols[0].metric("seeds paired", result["n"])
            # A statistic that cannot be computed says why (in the tile's help and the caption), never "nan".
            reasons = {"paired t-test p": result["t_note"], "effect size d_z": result["t_note"],
                       "Wilcoxon p": result["wilcoxon_note"]}
            for col, name, value, fmt in ((cols[1], "paired t-test p", result["t_p"], ".3g"),
                                          (cols[2], "Wilcoxon p", result["wilcoxon_p"], ".3g"),
                                          (cols[3], "effect size d_z", result["d_z"], ".2f")):
                finite = math.isfinite(value)
                # A dash fits the tile at 1000 px; the words are in its help and in the caption below.
                col.metric(name, format(value, fmt) if finite else "—",
                           help=None if finite else f"Not computed: {reasons[name]}.")
            notes = [f"{name}: {why}" for name, why in (("t-test and d_z", result["t_note"]),
                                                        ("Wilcoxon", result["wilcoxon_note"])) if why]
            note = (" " + "; ".join(notes) + ".") if notes else ""
            st.caption(f"Differences are A − B of {metric}, paired by seed (same seed: same initial weights, data "
                       "order and augmentation draws for both). Paired t-test and Wilcoxon signed-rank test on those "
                       f"differences; d_z = mean difference / its standard deviation.{ui.md(note)}")
        mc = services.seed_mcnemar(per_seed, name_a, name_b)
        if len(mc):
            st.markdown("**Per seed, image by image (McNemar)**: does A beat B on the test images with each seed?")
            st.dataframe(mc, hide_index=True, key="compare_seed_mcnemar", column_config={"p (McNemar)": P_VALUE})
    pairs = services.pairs_table(per_seed, metric)
    st.markdown(f"**All pairs** ({metric}, paired t-test, p-values Holm-corrected over {len(pairs)} pair(s))")
    # A p-value that could not be computed shows a dash, and the note column says why (never "None").
    styled = pairs.style.format({"p (paired t)": "{:.4f}", "p (Holm)": "{:.4f}",
                                 **{c: "{:.1%}" for c in ("mean difference (A - B)", "CI low", "CI high")}},
                                na_rep="—")
    st.dataframe(styled, hide_index=True, key="compare_seed_pairs")
    st.caption("Holm's correction keeps the chance of any false 'different' across all pairs at 5%.")
    return services.pair_verdicts(per_seed, metric), pairs


def single_seed_offer(done: list[str]) -> None:
    """Where every selected configuration ran with one seed: say so in one line and offer more seeds."""
    st.info("Each configuration here ran with a single seed, and a single seed cannot separate two configurations: "
            "the gap could be that seed's luck. Queue more seeds of the same grid to find out." if len(done) > 1 else
            "This run used a single seed, so it shows nothing of how much another seed would change its results. "
            "Queue more seeds of it to see its spread.", icon=":material/casino:")
    c1, c2 = st.columns([1, 3])
    n = int(c1.number_input("New seeds per configuration", 1, 20, 2, key="compare_more_seeds"))
    plan, group = services.more_seeds_plan(done, n)
    seeds = sorted({c.train.seed for c in plan})
    if c2.button(f"Queue {len(plan)} run(s): seeds {', '.join(map(str, seeds))}", key="compare_queue_seeds"):
        ids, group = services.queue_more_seeds(done, n, key=st.session_state.setdefault("seeds_key", uuid.uuid4().hex))
        st.session_state.pop("seeds_key")
        st.success(f"Queued {len(ids)} job(s) in group {group}, same settings, new seeds only. Follow them on "
                   "**Train**; this page groups them by configuration once they run.", icon=":material/check:")
