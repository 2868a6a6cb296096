"""Model building for both architectures and every weight source; freezing by block name."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from core.configs import ConfigError, ModelConfig
from core.configs.paths import imagenet_weights_cached
from core.train import models


def write_keras_notop_weights(arch: str, path, seed: int = 7):
    """An ImageNet-format notop weights file (Keras' legacy HDF5 layout) with known random values."""
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(seed)
    spec = models.get_spec(arch)
    backbone = spec.builder_fn()(include_top=False, weights=None, input_shape=(32, 32, 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, backbone)
    return backbone


def backbone_of(model, arch):
    return model.get_layer(arch)


@pytest.mark.parametrize("arch", ["resnet50", "vgg16"])
def test_imagenet_weights_are_loaded_from_the_keras_cache(arch, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert not imagenet_weights_cached(arch)
    path = tmp_path / "keras" / "models" / models.get_spec(arch).weights_file
    reference = write_keras_notop_weights(arch, path)
    assert imagenet_weights_cached(arch)
    model = models.build_model(ModelConfig(arch=arch, weights="imagenet", input_size=40), num_classes=7)
    loaded = backbone_of(model, arch).get_weights()
    expected = reference.get_weights()
    assert len(loaded) == len(expected)
    for a, b in zip(loaded, expected):
        np.testing.assert_array_equal(a, b)
    assert model.output_shape == (None, 7)
    assert model.get_layer("head_logits").units == 7


def test_weights_from_a_path_and_random_init_differ(tmp_path):
    path = tmp_path / "my_weights.h5"
    reference = write_keras_notop_weights("vgg16", path, seed=3)
    from_file = models.build_model(ModelConfig(arch="vgg16", weights=str(path), input_size=32), 3)
    scratch = models.build_model(ModelConfig(arch="vgg16", weights="none", input_size=32), 3, seed=1)
    np.testing.assert_array_equal(backbone_of(from_file, "vgg16").get_weights()[0], reference.get_weights()[0])
    assert not np.array_equal(backbone_of(scratch, "vgg16").get_weights()[0], reference.get_weights()[0])


def test_scratch_resnet50_blocks_start_as_the_identity():
    # Without this a random-init ResNet50 stayed at chance for 3 epochs on the synthetic set.
    import keras

    model = models.build_model(ModelConfig(arch="resnet50", weights="none", input_size=32), 7)
    backbone = backbone_of(model, "resnet50")
    closing = [layer for layer in backbone.layers if layer.name.endswith("_3_bn")]
    assert len(closing) == 16 and all(not np.any(layer.gamma.numpy()) for layer in closing)
    others = [layer for layer in backbone.layers if layer.name.endswith("_bn") and layer not in closing]
    assert others and all(np.all(layer.gamma.numpy() == 1) for layer in others)
    # An identity block (no projection shortcut) then passes its input through unchanged.
    probe = keras.Model(backbone.input, [backbone.get_layer("conv3_block1_out").output,
                                         backbone.get_layer("conv3_block2_out").output])
    before, after = probe(np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32"), training=True)
    np.testing.assert_allclose(after.numpy(), before.numpy(), atol=1e-5)


def test_missing_imagenet_weights_fail_before_training_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))
    with pytest.raises(models.WeightsMissingError) as info:
        models.build_model(ModelConfig(arch="resnet50", weights="imagenet", input_size=32), 7)
    msg = str(info.value)
    assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in msg
    assert str(tmp_path / "empty" / "models") in msg
    assert "python -m core fetch-weights" in msg


def test_missing_weights_path_and_unknown_arch():
    with pytest.raises(models.WeightsMissingError, match="/nowhere/w.h5 does not exist"):
        models.resolve_weights(ModelConfig(weights="/nowhere/w.h5"))
    with pytest.raises(ConfigError, match="Unknown model 'resnet18'"):
        models.get_spec("resnet18")


@pytest.mark.parametrize("arch, first_trainable", [("resnet50", "conv5_"), ("vgg16", "block5_")])
def test_freezing_is_by_block_name(arch, first_trainable):
    model = models.build_model(ModelConfig(arch=arch, weights="none", input_size=32, frozen_blocks=4), 7)
    layers = backbone_of(model, arch).layers
    trainable = [layer.name for layer in layers if layer.trainable and layer.weights]
    frozen = [layer.name for layer in layers if not layer.trainable and layer.weights]
    assert trainable and all(n.startswith(first_trainable) for n in trainable)
    assert frozen and not any(n.startswith(first_trainable) for n in frozen)
    # The head always trains.
    assert model.get_layer("head_logits").trainable
    counts = models.count_params(model)
    assert 0 < counts["params_trainable"] < counts["params_total"]


@pytest.mark.slow
def test_frozen_batchnorm_stays_in_inference_mode():
    model = models.build_model(ModelConfig(arch="resnet50", weights="none", input_size=32, frozen_blocks=4), 7)
    bn = model.get_layer("resnet50").get_layer("conv1_bn")
    before = [w.copy() for w in bn.get_weights()]
    x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32") * 50
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.train_on_batch(x, np.eye(7)[[0, 1, 2, 3]])
    for a, b in zip(before, bn.get_weights()):
        np.testing.assert_array_equal(a, b)  # moving mean/variance untouched


def test_preprocess_matches_for_gray_and_rgb():
    gray = np.random.default_rng(0).integers(0, 256, (2, 48, 48), dtype=np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    a = models.preprocess("resnet50", gray, 48)
    b = models.preprocess("resnet50", rgb, 48)
    assert a.shape == (2, 48, 48, 3)
    np.testing.assert_allclose(a, b)


@pytest.mark.parametrize("name", ["adam", "rmsprop", "sgd", "adamw"])
def test_optimizers_are_data(name):
    from core.configs import OptimizerConfig

    opt = models.make_optimizer(OptimizerConfig(name=name, learning_rate=0.01))
    assert float(np.asarray(opt.learning_rate)) == pytest.approx(0.01)
    assert name.replace("rmsprop", "rmsprop") in type(opt).__name__.lower()


def test_mixed_precision_uses_bfloat16_on_cpus_that_compute_it_natively(tmp_path):
    from core.train import device

    amx = tmp_path / "amx"
    amx.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n")
    plain = tmp_path / "plain"
    plain.write_text("processor\t: 0\nflags\t\t: fpu avx2 fma\n")
    assert device.cpu_has_bf16(str(amx)) and not device.cpu_has_bf16(str(plain))
    assert not device.cpu_has_bf16(str(tmp_path / "missing"))
    assert device.mixed_policy({"bf16": True}) == "mixed_bfloat16"
    assert device.mixed_policy({"bf16": False}) == "mixed_float16"
