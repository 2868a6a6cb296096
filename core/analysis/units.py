"""Numbers with their units for people: SI prefixes for FLOPs and parameter counts ("10.2 TFLOP",
"23.6 M"), seconds and milliseconds with a sensible number of digits. Shared by core's sentences
and the dashboard's tables and axes, so a cost reads the same everywhere."""
from __future__ import annotations

import math

_PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def si(value: float, unit: str = "", digits: int = 3) -> str:
    """``value`` with an SI prefix and ``digits`` significant figures: ``si(1.024e13, "FLOP")`` ->
    ``"10.2 TFLOP"``, ``si(23.6e6)`` -> ``"23.6 M"``. Not a number reads "not recorded"."""
    if value is None or not math.isfinite(value):
        return "not recorded"
    scale, prefix = next(((s, p) for s, p in _PREFIXES if abs(value) >= s), (1.0, ""))
    number = f"{value / scale:.{digits}g}"
    return f"{number} {prefix}{unit}".rstrip()


# How each cost of ``core.analysis.pareto.COSTS`` is written.
def format_cost(cost: str, value: float) -> str:
    """A cost's value with its unit: training time in s, latency in ms, FLOPs and parameters with SI prefixes."""
    if value is None or not math.isfinite(value):
        return "not recorded"
    if cost == "train_time_s":
        return f"{value:,.1f} s" if value < 1000 else f"{value:,.0f} s"
    if cost == "latency_ms_per_face":
        return f"{value:.3g} ms"
    if cost == "train_flops":
        return si(value, "FLOP")
    if cost == "params_total":
        return si(value) + " parameters" if value >= 1000 else f"{value:.0f} parameters"
    return f"{value:.4g}"
