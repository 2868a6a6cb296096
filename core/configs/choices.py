"""The lab's choice lists, each defined once: labels, architectures, optimizers.

Validation, the CLI's ``choices=``, the dashboard's pickers and the optimizer playground all
read these tables, so adding an entry is one edit here. Nothing in this module imports
TensorFlow until a spec's builder is called.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# FER2013's label order (0 angry ... 6 neutral); the synthetic set, folder datasets and the
# published reference model all use it.
FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# Training augmentation sets, each with what it does in words (``core.data.pipeline.AUGMENTERS``
# builds them). "paper" is the FER2013 literature's set (Khaireddin & Chen 2021).
AUGMENT_SETS: dict[str, str] = {
    "basic": "flip, rotation, shift, zoom",
    "paper": "resized crop, shift, flip, rotation, erasing",
}

_KERAS_WEIGHTS = "https://storage.googleapis.com/tensorflow/keras-applications/"


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


ARCHITECTURES: tuple[str, ...] = tuple(MODELS)


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer name with one meaning, wherever the lab uses it (training, the playground, the classroom).

    ``options`` are the hyperparameters the optimizer has (the playground's sliders pass exactly
    these); ``defaults`` fill an option the caller leaves out or passes as None.
    """

    name: str
    label: str
    keras_class: str
    options: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)

    def build(self, learning_rate: float, **hyper: Any):
        """The Keras optimizer at ``learning_rate`` with ``hyper`` (options left out or None take ``defaults``)."""
        import keras

        kwargs = {**self.defaults, **{k: v for k, v in hyper.items() if v is not None}}
        return getattr(keras.optimizers, self.keras_class)(learning_rate, **kwargs)


OPTIMIZERS: dict[str, OptimizerSpec] = {spec.name: spec for spec in (
    OptimizerSpec("plain-sgd", "SGD (no momentum)", "SGD"),
    # The lab's SGD is the FER2013 literature's: Nesterov momentum (0.9 unless set).
    OptimizerSpec("sgd", "SGD + Nesterov momentum", "SGD", options=("momentum", "nesterov"),
                  defaults={"momentum": 0.9, "nesterov": True}),
    OptimizerSpec("rmsprop", "RMSprop", "RMSprop", options=("rho", "epsilon")),
    OptimizerSpec("adam", "Adam", "Adam", options=("beta_1", "beta_2", "epsilon")),
    # AdamW without weight decay would be Adam.
    OptimizerSpec("adamw", "AdamW", "AdamW", options=("weight_decay", "beta_1", "beta_2", "epsilon"),
                  defaults={"weight_decay": 1e-4}),
)}


def optimizer_label(name: str) -> str:
    """The display label of an optimizer name (the name itself when unknown, e.g. an old run's)."""
    return OPTIMIZERS[name].label if name in OPTIMIZERS else name
