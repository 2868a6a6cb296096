"""Models from the architecture registry: keras.applications backbones with a named classifier head.

Metadata that must travel with a model (its preprocessing, its block names, where its
ImageNet weights live) sits in its spec (``core.configs.choices.MODELS``), so training and
inference cannot disagree.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.configs import ConfigError, ModelConfig, OptimizerConfig
from core.configs.choices import MODELS, OPTIMIZERS, ModelSpec
from core.configs.paths import imagenet_weights_path, keras_home
from core.data.pipeline import to_model_input


class WeightsMissingError(FileNotFoundError):
    """ImageNet weights are neither cached nor downloadable."""


def get_spec(arch: str) -> ModelSpec:
    """The registered spec for ``arch``; unknown names list the known ones."""
    try:
        return MODELS[arch]
    except KeyError:
        raise ConfigError(f"Unknown model {arch!r}; expected one of {sorted(MODELS)}") from None


def fetch_weights(arch: str) -> Path:
    """Download (or verify) the ImageNet notop weights for ``arch`` into the Keras cache."""
    import keras

    spec = get_spec(arch)
    try:
        return Path(keras.utils.get_file(spec.weights_file, spec.weights_url, cache_subdir="models",
                                         file_hash=spec.weights_md5, cache_dir=str(keras_home())))
    except Exception as exc:  # network errors come in many types; the advice is the same
        raise WeightsMissingError(_missing_message(arch) + f"\nDownload failed: {exc}") from exc


def _missing_message(arch: str) -> str:
    spec = get_spec(arch)
    return (
        f"ImageNet weights for {arch} are not cached: {imagenet_weights_path(arch)} is missing. "
        f"Run `python -m core fetch-weights` on a machine with internet access, or download "
        f"{spec.weights_url} and put it at that path (set KERAS_HOME to use another cache folder). "
        f"Configurations starting with 'scratch-' need no weights."
    )


def resolve_weights(cfg: ModelConfig) -> str | None:
    """The weights file to load for ``cfg``, or None for random init.

    Raises WeightsMissingError before any training starts, naming the missing file.
    """
    if cfg.weights == "none":
        return None
    if cfg.weights == "imagenet":
        path = imagenet_weights_path(cfg.arch)
        if not path.is_file():
            raise WeightsMissingError(_missing_message(cfg.arch))
        return str(path)
    path = Path(cfg.weights)
    if not path.is_file():
        raise WeightsMissingError(f"weights file {path} does not exist (model.weights={cfg.weights!r})")
    return str(path)


def preprocess(arch: str, images: np.ndarray, size: int) -> np.ndarray:
    """uint8 grayscale or RGB images (N,H,W[,C]) -> float32 batch the ``arch`` model expects.

    The same function feeds training (inside tf.data) and inference, so a photo is seen
    exactly as the training data was.
    """
    import tensorflow as tf

    x = tf.convert_to_tensor(images)
    if x.shape.rank == 3:
        x = x[..., None]
    return to_model_input(x, arch, size).numpy()


def build_model(cfg: ModelConfig, num_classes: int, seed: int = 0):
    """Backbone (include_top=False) + named head (pooling, dropout, optional dense, softmax)."""
    import keras

    cfg.validate()
    spec = get_spec(cfg.arch)
    weights = resolve_weights(cfg)
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((cfg.input_size, cfg.input_size, 3), name="image")
    backbone = spec.builder_fn()(include_top=False, weights=None, input_shape=(cfg.input_size, cfg.input_size, 3))
    if weights is not None:
        try:
            backbone.load_weights(weights)
        except Exception as exc:
            raise ConfigError(f"could not load backbone weights from {weights}: {exc}") from exc
    else:
        zero_residual_gammas(backbone, spec)
    frozen = freeze_blocks(backbone, spec, cfg.frozen_blocks)
    # A frozen BatchNorm must keep its ImageNet statistics: run the backbone in inference mode.
    x = backbone(inputs, training=False) if frozen else backbone(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    if cfg.dense_units:
        x = keras.layers.Dense(cfg.dense_units, activation="relu", name="head_dense")(x)
    x = keras.layers.Dropout(cfg.dropout, name="head_dropout")(x)
    # float32 softmax keeps probabilities stable under mixed precision.
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="head_logits")(x)
    return keras.Model(inputs, outputs, name=f"{cfg.arch}_emotion")


def zero_residual_gammas(backbone, spec: ModelSpec) -> int:
    """Start every residual branch at zero (Goyal et al., 2017); return how many were zeroed.

    Keras' ResNet50 initialises these gammas to 1, so at random init 16 blocks add up
    their variance: logits start large, the loss starts far above log(7), and on the
    synthetic set a scratch ResNet50 stayed at chance for 3 epochs (test 16.9%). Zeroed,
    the same run reaches 33% train and 29.4% test accuracy (chance: 14.3%).
    """
    if spec.residual_bn_suffix is None:
        return 0
    zeroed = 0
    for layer in backbone.layers:
        if layer.name.endswith(spec.residual_bn_suffix):
            layer.gamma.assign(np.zeros(layer.gamma.shape, dtype=layer.gamma.dtype))
            zeroed += 1
    return zeroed


def freeze_blocks(backbone, spec: ModelSpec, n_blocks: int) -> int:
    """Freeze every backbone layer before block ``n_blocks`` (by name); return the count frozen."""
    if n_blocks == 0:
        return 0
    boundary = spec.blocks[n_blocks] if n_blocks < len(spec.blocks) else None
    frozen = 0
    for layer in backbone.layers:
        if boundary is not None and layer.name.startswith(boundary):
            break
        layer.trainable = False
        frozen += 1
    return frozen


def build_train_state(model) -> None:
    """Create a compiled model's optimizer slots and metric variables now, before its first train step.

    Keras otherwise creates them inside the first traced step, and TensorFlow, seeing
    variables created during a trace, traces the whole step a second time: about half of
    a ResNet50's first step on a CPU (``python -m core bench`` reports start-up by phase).
    """
    import keras

    if not model.optimizer.built:  # a model loaded from a checkpoint brings its optimizer's state
        model.optimizer.build(model.trainable_variables)
    out = model.outputs[0]
    for metric in model.metrics:  # the loss tracker is built already; the compiled metrics are not
        if not getattr(metric, "built", True):
            metric.build(keras.KerasTensor(out.shape, out.dtype), out)


def make_optimizer(cfg: OptimizerConfig):
    """A Keras optimizer from data (``core.configs.choices.OPTIMIZERS``); no per-name branching elsewhere."""
    spec = OPTIMIZERS[cfg.name]
    # Keras applies weight_decay decoupled from the gradient (as AdamW does) for every optimizer;
    # 0 means none, and AdamW then takes its registry default.
    hyper = {"weight_decay": cfg.weight_decay or None}
    if "momentum" in spec.options:
        hyper["momentum"] = cfg.momentum
    return spec.build(cfg.learning_rate, **hyper)


def count_params(model) -> dict[str, int]:
    """Total and trainable parameter counts."""
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    total = int(sum(np.prod(w.shape) for w in model.weights))
    return {"params_total": total, "params_trainable": trainable}


def forward_flops(model) -> float:
    """Multiply-adds x2 of every Conv2D and Dense layer for one image (nested models included)."""
    import keras

    total = 0.0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            total += 2.0 * h * w * c_out * kh * kw * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            total += 2.0 * layer.input.shape[-1] * layer.units
    return total
