"""Configs round-trip and reject bad values by name; the five presets differ only where their names say."""
from __future__ import annotations

from dataclasses import replace

import pytest

from core import presets
from core.config import ConfigError, DataConfig, ModelConfig, RunConfig, TrainConfig


def test_config_round_trips_through_dict():
    cfg = presets.preset("imagenet-frozen-adam", presets.base_config("vgg16", "synthetic-small", epochs=3))
    again = RunConfig.from_dict(cfg.to_dict())
    assert again == cfg
    assert again.flat()["model.arch"] == "vgg16"
    assert again.flat()["train.epochs"] == 3


@pytest.mark.parametrize("bad, field, value", [
    (lambda c: replace(c, model=replace(c.model, arch="resnet18")), "arch", "'resnet18'"),
    (lambda c: replace(c, model=replace(c.model, input_size=16)), "input_size", "16"),
    (lambda c: replace(c, train=replace(c.train, epochs=0)), "epochs", "0"),
    (lambda c: replace(c, optimizer=replace(c.optimizer, name="adagrad")), "optimizer", "'adagrad'"),
    (lambda c: replace(c, data=replace(c.data, val_fraction=0.9)), "val_fraction", "0.9"),
])
def test_bad_values_are_named_in_the_error(bad, field, value):
    with pytest.raises(ConfigError) as info:
        bad(RunConfig()).validate()
    assert f"{field}={value}" in str(info.value)


def test_from_dict_rejects_unknown_fields():
    d = RunConfig().to_dict()
    d["model"]["depth"] = 50
    with pytest.raises(ConfigError, match="depth"):
        RunConfig.from_dict(d)


def test_five_presets_for_both_architectures():
    assert presets.CONFIG_IDS == ("imagenet-adam", "imagenet-rmsprop", "scratch-adam", "scratch-rmsprop",
                                  "imagenet-frozen-adam")
    for arch in ("resnet50", "vgg16"):
        configs = presets.all_presets(presets.base_config(arch))
        assert [c.variant for c in configs] == list(presets.CONFIG_IDS)
        by_id = {c.variant: c for c in configs}
        assert by_id["imagenet-adam"].model.weights == "imagenet"
        assert by_id["scratch-rmsprop"].model.weights == "none"
        assert by_id["imagenet-rmsprop"].optimizer.name == "rmsprop"
        assert by_id["imagenet-frozen-adam"].model.frozen_blocks == 4
        assert all(c.model.arch == arch for c in configs)


def test_presets_keep_everything_else_equal():
    base = presets.base_config("resnet50", "synthetic", epochs=7, batch_size=16)
    configs = presets.all_presets(base)
    # Data, training loop and head are identical across the five.
    assert len({c.data for c in configs}) == 1
    assert len({c.train for c in configs}) == 1
    assert len({(c.model.input_size, c.model.dropout, c.model.dense_units) for c in configs}) == 1
    # Learning rate differs only between pretrained and scratch.
    rates = {c.variant: c.optimizer.learning_rate for c in configs}
    assert rates["imagenet-adam"] == rates["imagenet-rmsprop"] == rates["imagenet-frozen-adam"]
    assert rates["scratch-adam"] == rates["scratch-rmsprop"] > rates["imagenet-adam"]


def test_unknown_preset():
    with pytest.raises(KeyError, match="Unknown configuration 'imagenet-sgd'"):
        presets.preset("imagenet-sgd")


def test_defaults_are_valid():
    for part in (DataConfig(), ModelConfig(), TrainConfig()):
        part.validate()
