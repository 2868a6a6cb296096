"""Model registry: keras.applications backbones with a named classifier head.

Metadata that must travel with a model (its preprocessing, its block names, where its
ImageNet weights live) sits in the spec, so training and inference cannot disagree.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from core.config import ConfigError, ModelConfig, OptimizerConfig

_KERAS_WEIGHTS = "https://storage.googleapis.com/tensorflow/keras-applications/"


class WeightsMissingError(FileNotFoundError):
    """ImageNet weights are neither cached nor downloadable."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything the rest of the code needs to know about one backbone family."""

    name: str
    builder: str  # attribute of keras.applications
    preprocess_module: str  # keras.applications.<module>.preprocess_input
    # Layer-name prefixes of the backbone's blocks from input to output; freezing
    # counts blocks by these names so it survives changes in layer indices.
    blocks: tuple[str, ...]
    last_conv_layer: str  # Grad-CAM target
    weights_file: str
    weights_url: str
    weights_md5: str
    # Suffix of the BatchNorm that closes each residual branch (None: no residual blocks).
    # From random init these start at gamma=0, so every block begins as the identity.
    residual_bn_suffix: str | None = None

    def builder_fn(self) -> Callable:
        import keras

        return getattr(keras.applications, self.builder)

    def preprocess_fn(self) -> Callable:
        import keras

        return getattr(keras.applications, self.preprocess_module).preprocess_input


MODELS: dict[str, ModelSpec] = {
    "resnet50": ModelSpec(
        name="resnet50",
        builder="ResNet50",
        preprocess_module="resnet50",
        blocks=("conv1_", "conv2_", "conv3_", "conv4_", "conv5_"),
        last_conv_layer="conv5_block3_out",
        weights_file="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        weights_url=_KERAS_WEIGHTS + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        weights_md5="4d473c1dd8becc155b73f8504c6f6626",
        residual_bn_suffix="_3_bn",
    ),
    "vgg16": ModelSpec(
        name="vgg16",
        builder="VGG16",
        preprocess_module="vgg16",
        blocks=("block1_", "block2_", "block3_", "block4_", "block5_"),
        last_conv_layer="block5_conv3",
        weights_file="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        weights_url=_KERAS_WEIGHTS + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        weights_md5="6d6bbae143d832006294945121d1f1fc",
    ),
}


def get_spec(arch: str) -> ModelSpec:
    """The registered spec for ``arch``; unknown names list the known ones."""
    try:
        return MODELS[arch]
    except KeyError:
        raise ConfigError(f"Unknown model {arch!r}; expected one of {sorted(MODELS)}") from None


def keras_home() -> Path:
    """Keras' cache root: ``KERAS_HOME`` or ``~/.keras``, as Keras itself resolves it."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))


def imagenet_weights_path(arch: str) -> Path:
    """Where Keras caches the notop ImageNet weights of ``arch``."""
    return keras_home() / "models" / get_spec(arch).weights_file


def imagenet_weights_cached(arch: str) -> bool:
    """True when the ImageNet weights file for ``arch`` is already on disk."""
    return imagenet_weights_path(arch).is_file()


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


def to_model_input(x, arch: str, size: int):
    """Tensor version of :func:`preprocess`: float or uint8 (N,H,W,1|3) -> model input."""
    import tensorflow as tf

    x = tf.cast(x, tf.float32)
    if x.shape[1] != size or x.shape[2] != size:
        x = tf.image.resize(x, (size, size), method="bilinear", antialias=True)
    if x.shape[-1] == 1:
        # ImageNet backbones need 3 channels; tiling keeps the gray value in each.
        x = tf.repeat(x, 3, axis=-1)
    return get_spec(arch).preprocess_fn()(x)


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
    """A Keras optimizer from data; no per-name branching elsewhere."""
    import keras

    # Keras applies weight_decay decoupled from the gradient (as AdamW does) for every optimizer.
    wd = cfg.weight_decay or None
    kinds = {
        "adam": lambda: keras.optimizers.Adam(cfg.learning_rate, weight_decay=wd),
        "rmsprop": lambda: keras.optimizers.RMSprop(cfg.learning_rate, weight_decay=wd),
        "sgd": lambda: keras.optimizers.SGD(cfg.learning_rate, momentum=cfg.momentum, nesterov=True, weight_decay=wd),
        "adamw": lambda: keras.optimizers.AdamW(cfg.learning_rate, weight_decay=cfg.weight_decay or 1e-4),
    }
    return kinds[cfg.name]()


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
