"""Mode head: the same classifier head evolved by the GA and trained by gradient descent, side by side."""
from __future__ import annotations

import streamlit as st

from dashboard import services, ui
from dashboard.charts import runs as run_charts


def show(state: dict) -> None:
    """Each method's validation accuracy and training loss per step, and where each ended."""
    curves = state["curves"]
    if curves.empty:
        st.info("Computing backbone features; the curves appear as soon as the GA's first generation is scored.",
                icon=":material/hourglass_top:")
        return
    last = curves.sort_values("step").groupby("method").tail(1).set_index("method")
    methods = services.head_methods()
    cols = st.columns(len(methods) + 1)
    for col, method in zip(cols, methods):
        if method in last.index:
            col.metric(f"{methods[method]} val accuracy", f"{last.loc[method, 'val_accuracy']:.3f}",
                       help=f"after {int(last.loc[method, 'step'])} steps")
    cols[-1].metric("Time spent", services.format_duration(float(last.seconds.sum())))
    runs = {methods[m]: df.rename(columns={"step": "epoch", "train_loss": "loss"})
            for m, df in curves.groupby("method", sort=False)}
    acc, loss = st.tabs(["Validation accuracy", "Training loss"])
    step = "Step (GA generation / optimizer epoch)"
    acc.plotly_chart(ui.tight(run_charts.curves_figure({k: v[["epoch", "val_accuracy"]] for k, v in runs.items()},
                                                    "accuracy")).update_xaxes(title=step), key="evolve_head_accuracy")
    loss.plotly_chart(ui.tight(run_charts.curves_figure({k: v[["epoch", "loss"]] for k, v in runs.items()}, "loss"))
                      .update_xaxes(title=step), key="evolve_head_loss")
    h = state.get("head") or {}
    st.caption(f"The same dense softmax head on {h.get('arch')} features ({h.get('weights')} weights, "
               f"{h.get('input_size')} px, {h.get('feature_dim')} features; {h.get('n_train')} training and "
               f"{h.get('n_val')} validation images), started from zero: evolved by PyGAD (fitness = minus the "
               "training cross-entropy) or trained by Adam and RMSprop.")
    table = last.reset_index()[["method", "step", "val_accuracy", "train_loss", "forward_passes", "seconds"]]
    table["method"] = table.method.map(methods)
    three = st.column_config.NumberColumn(format="%.3f")
    st.dataframe(table, hide_index=True, key="evolve_head_table", column_config={
        "val_accuracy": three, "train_loss": three, "seconds": st.column_config.NumberColumn(format="%.1f")})
