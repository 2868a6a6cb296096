"""Configs round-trip and reject bad values by name; the five presets differ only where their names say."""
from __future__ import annotations

from dataclasses import replace

import pytest

from core.configs import ConfigError, DataConfig, ModelConfig, RunConfig, TrainConfig, presets


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


def test_presets_are_a_table_with_descriptions():
    assert tuple(presets.PRESETS) == presets.CONFIG_IDS
    assert set(presets.DESCRIPTIONS) == set(presets.CONFIG_IDS) and all(presets.DESCRIPTIONS.values())
    for cid, row in presets.PRESETS.items():
        cfg = presets.preset(cid)
        assert (cfg.model.weights, cfg.optimizer.name, cfg.optimizer.learning_rate, cfg.model.frozen_blocks) == \
            (row.weights, row.optimizer, row.learning_rate, row.frozen_blocks)
    assert presets.PRESETS["scratch-adam"].learning_rate == presets.SCRATCH_LR
    assert presets.PRESETS["imagenet-rmsprop"].learning_rate == presets.PRETRAINED_LR


def test_grid_is_architecture_major_and_shares_the_form():
    configs = presets.grid("synthetic-small", ["vgg16", "resnet50"], ["scratch-adam", "imagenet-frozen-adam"],
                           epochs=2, batch_size=16, input_size=64, max_train=100, max_eval=20, augment=False,
                           class_weights=True, early_stopping=3, seed=7, group="g1")
    assert [(c.model.arch, c.variant) for c in configs] == [
        ("vgg16", "scratch-adam"), ("vgg16", "imagenet-frozen-adam"),
        ("resnet50", "scratch-adam"), ("resnet50", "imagenet-frozen-adam")]
    for c in configs:
        assert (c.data.dataset, c.data.max_train, c.data.max_eval, c.data.augment, c.data.class_weights) == \
            ("synthetic-small", 100, 20, False, True)
        assert (c.train.epochs, c.train.batch_size, c.train.seed, c.train.early_stopping_patience) == (2, 16, 7, 3)
        assert c.model.input_size == 64 and c.group == "g1"
    assert configs[1].model.frozen_blocks == 4 and configs[0].model.weights == "none"


def test_quick_profile_leaves_out_imagenet_runs_without_weights():
    everything = presets.quick_configs(lambda arch: True)
    assert [c.variant for c in everything] == list(presets.CONFIG_IDS)
    assert all(c.train.epochs == presets.QUICK["epochs"] and c.data.max_train == presets.QUICK["max_train"]
               and c.data.dataset == "synthetic" and c.model.arch == "resnet50" for c in everything)
    offline = presets.quick_configs(lambda arch: arch != "resnet50")
    assert [c.variant for c in offline] == ["scratch-adam", "scratch-rmsprop"]
    assert presets.missing_weights(everything, lambda arch: arch == "vgg16") == ["resnet50"]
    assert presets.missing_weights(offline, lambda arch: False) == []


def test_quick_profile_asks_the_keras_cache_by_default(tmp_path, monkeypatch):
    from core.configs.paths import imagenet_weights_cached, imagenet_weights_path

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert not imagenet_weights_cached("resnet50")
    assert [c.variant for c in presets.quick_configs()] == ["scratch-adam", "scratch-rmsprop"]
    path = imagenet_weights_path("resnet50")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    assert imagenet_weights_cached("resnet50")
    assert len(presets.quick_configs()) == 5
