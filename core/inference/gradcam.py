"""Grad-CAM: where in a face a model looked for the class it chose.

Owns splitting a model at its target convolution (also inside a nested backbone, as in
trained runs), the pre-softmax class score the gradient is taken of, the maps themselves
(eager, or traced once per model for the Predict page), and drawing a map over the crop.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np


@dataclass
class CamGraph:
    """A model split at its Grad-CAM target layer."""

    inner: Any  # model input -> target feature maps
    rest: list  # the layers that turn those maps into the classifier layer's input, in order
    last: Any  # the classifier layer; its pre-softmax output is the class score


def cam_graph(model, target: str, nested: str | None = None) -> CamGraph:
    """Split ``model`` after layer ``target`` (inside the nested backbone ``nested`` if given).

    The maps and the class score must come from one computation for the gradient to
    exist, so the layers after the target are re-applied to the maps one by one.
    """
    import keras

    scope = model.get_layer(nested) if nested else model
    names = [layer.name for layer in scope.layers]
    if target not in names:
        raise ValueError(f"Grad-CAM target layer {target!r} not found in {scope.name}")
    i = names.index(target)
    rest = list(scope.layers[i + 1:])
    if nested:
        # Trained runs: image -> backbone (a nested Functional model) -> head layers.
        rest += model.layers[model.layers.index(scope) + 1:]
    return CamGraph(keras.Model(scope.input, scope.layers[i].output), rest[:-1], rest[-1])


def class_scores(last, h):
    """Pre-softmax class scores from the classifier layer's input (Grad-CAM uses y^c, not p^c)."""
    import keras
    from keras import ops

    act = getattr(last, "activation", None)
    if getattr(act, "__name__", "") == "softmax":
        if isinstance(last, keras.layers.Dense):
            z = ops.matmul(h, last.kernel)
            return z + last.bias if last.bias is not None else z
        if isinstance(last, keras.layers.Activation):
            return h
    if isinstance(last, keras.layers.Softmax):
        return h
    return last(h, training=False)


def grad_cam(model, x: np.ndarray, class_indices: Sequence[int], target_layer: str,
             nested: str | None = None) -> np.ndarray:
    """Grad-CAM maps (N, h, w) in [0, 1] at the target layer's resolution, one batched pass.

    ``nested`` names the backbone layer holding ``target_layer`` (trained runs); None
    for flat models. A map is all zero when no region raises the class score.
    """
    graph = cam_graph(model, target_layer, nested)
    return normalise(cam_maps(graph, x, np.asarray(class_indices, dtype=np.int32)))


def traced_grad_cam(model, target_layer: str, nested: str | None,
                    image_shape: Sequence[int]) -> Callable[[np.ndarray, np.ndarray], Any]:
    """``grad_cam`` without the normalising, traced once for images of ``image_shape`` (H, W, C):
    ``fn(images float32, class_indices int32)`` -> unnormalised maps (pass them to ``normalise``)."""
    import tensorflow as tf

    graph = cam_graph(model, target_layer, nested)
    # Traced once: eager Grad-CAM through ResNet50 costs several times more.
    return tf.function(lambda images, idx: cam_maps(graph, images, idx),
                       input_signature=[tf.TensorSpec((None, *image_shape), tf.float32),
                                        tf.TensorSpec((None,), tf.int32)])


def cam_maps(graph: CamGraph, x, class_indices):
    """Unnormalised Grad-CAM (tensors in, tensor out; traceable by tf.function)."""
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        conv = graph.inner(x, training=False)
        h = conv
        for layer in graph.rest:
            h = layer(h, training=False)
        scores = class_scores(graph.last, h)
        # Faces are independent in inference mode, so one summed score gives per-face gradients.
        total = tf.reduce_sum(tf.gather(scores, class_indices, axis=1, batch_dims=1))
    grads = tape.gradient(total, conv)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    return tf.nn.relu(tf.reduce_sum(weights * conv, axis=-1))


def normalise(cam) -> np.ndarray:
    """Each map divided by its peak, so maps are in [0, 1]; an all-zero map stays zero."""
    cam = np.asarray(cam, dtype=np.float32)
    peak = cam.reshape(len(cam), -1).max(axis=1)
    return np.where(peak[:, None, None] > 0, cam / np.maximum(peak, 1e-12)[:, None, None], 0.0).astype(np.float32)


def overlay_heatmap(crop: np.ndarray, cam: np.ndarray, alpha: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """Resize a Grad-CAM map onto the crop -> (heatmap float32 (H,W) in [0,1], RGB uint8 overlay (H,W,3))."""
    height, width = crop.shape[:2]
    heat = np.clip(cv2.resize(cam.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
    colour = cv2.cvtColor(cv2.applyColorMap(np.round(heat * 255).astype(np.uint8), cv2.COLORMAP_JET),
                          cv2.COLOR_BGR2RGB)
    base = np.repeat(crop[..., None], 3, axis=2) if crop.ndim == 2 else crop
    return heat, cv2.addWeighted(base, 1.0 - alpha, colour, alpha, 0.0)
