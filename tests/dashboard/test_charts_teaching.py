"""Figure builders of the optimizer playground: what a class sees when the animation plays."""
from __future__ import annotations

import numpy as np

from dashboard.charts import teaching as teaching_charts


def _surface():
    xs, ys = np.linspace(-1, 1, 20), np.linspace(-1, 1, 15)
    gx, gy = np.meshgrid(xs, ys)
    return xs, ys, 0.5 * (gx ** 2 + 50 * gy ** 2)


def _paths(steps=250):
    t = np.linspace(0, 1, steps + 1)[:, None]
    return {"SGD": np.hstack([-0.8 + 0.2 * t, 0.5 - 0.5 * t]), "Adam": np.hstack([-0.8 + 0.8 * t, 0.5 - 0.5 * t])}


def test_paths_figure_animates_every_path_in_sync_with_play_pause_and_a_step_slider():
    xs, ys, z = _surface()
    fig = teaching_charts.optimizer_paths_figure(xs, ys, z, _paths(), minimum=(0.0, 0.0), max_frames=50)
    assert fig.data[0].type == "contour" and np.asarray(fig.data[0].z).shape == (15, 20)
    names = [t.name for t in fig.data]
    assert names[1] == "minimum" and names[2:] == ["SGD", "Adam"]
    # The opening frame shows both optimizers at the shared start.
    assert [len(t.x) for t in fig.data[2:]] == [1, 1]
    assert len(fig.frames) == 50
    last = fig.frames[-1]
    assert last.name == "250" and list(last.traces) == [2, 3]
    assert [len(t.x) for t in last.data] == [251, 251]
    assert last.data[1].x[-1] == 0.0  # Adam's path ends where it ended
    middle = fig.frames[25]
    assert len({len(t.x) for t in middle.data}) == 1  # in sync: same step for every optimizer
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["▶ Play", "❚❚ Pause"] and buttons[0].method == "animate"
    slider = fig.layout.sliders[0]
    assert [s.label for s in slider.steps] == [f.name for f in fig.frames]
    assert list(slider.steps[-1].args[0]) == ["250"]


def test_paths_figure_shows_every_step_when_there_are_few_and_enlarges_fonts_for_presenting():
    xs, ys, z = _surface()
    fig = teaching_charts.optimizer_paths_figure(xs, ys, z, _paths(steps=10), font_size=22)
    assert [f.name for f in fig.frames] == [str(s) for s in range(11)]
    assert fig.layout.font.size == 22
    assert teaching_charts.optimizer_paths_figure(xs, ys, z, {}).layout.annotations[0].text == "No optimizer selected"


def test_loss_figure_uses_a_log_axis_only_when_every_loss_is_positive():
    fig = teaching_charts.optimizer_loss_figure({"SGD": [1.0, 0.5, 0.25], "Adam": [1.0, 0.1, 0.01]})
    assert [t.name for t in fig.data] == ["SGD", "Adam"] and list(fig.data[1].x) == [0, 1, 2]
    assert fig.layout.yaxis.type == "log"
    saddle = teaching_charts.optimizer_loss_figure({"Adam": [0.1, 0.0, -0.2]})
    assert saddle.layout.yaxis.type == "linear"
    # One colour per optimizer, the same in every playground chart.
    steps = teaching_charts.step_size_figure({"SGD": np.ones((2, 2)), "Adam": np.ones((2, 2))})
    assert fig.data[0].line.color == steps.data[0].line.color


def test_step_size_figure_has_one_panel_per_parameter():
    sizes = {"SGD": np.full((4, 2), 1e-3), "RMSprop": np.array([[1e-2, 1e-4]] * 4)}
    fig = teaching_charts.step_size_figure(sizes, font_size=20)
    assert len(fig.data) == 4
    by_axis = {(t.name, t.xaxis): list(t.y) for t in fig.data}
    assert by_axis[("RMSprop", "x")] == [1e-2] * 4 and by_axis[("RMSprop", "x2")] == [1e-4] * 4
    assert [t.showlegend for t in fig.data] == [False] * 4  # the paths figure's legend names the colours
    assert fig.layout.yaxis.type == "log" and fig.layout.annotations[0].text == "parameter x"
    assert fig.layout.font.size == 20


def test_a_diverged_loss_stops_at_a_cut_off_marker_instead_of_flattening_the_others():
    losses = {"SGD": [1.0, 0.5, 0.25], "RMSprop": [1.0, 50.0, 6e68], "Adam": [1.0, float("inf"), float("nan")]}
    fig = teaching_charts.optimizer_loss_figure(losses)
    lines = {t.name: t for t in fig.data}
    assert list(lines["SGD"].y) == [1.0, 0.5, 0.25] and list(lines["RMSprop"].y) == [1.0, 50.0]
    assert list(lines["RMSprop diverged"].x) == [2] and lines["RMSprop diverged"].y[0] == 1e3
    assert list(lines["Adam"].y) == [1.0] and list(lines["Adam diverged"].x) == [1]
    assert fig.layout.yaxis.type == "log"
