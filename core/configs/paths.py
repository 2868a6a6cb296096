"""Where the lab keeps its files, and the one way it writes them.

Every file another process may read while it is being written (job state, checkpoints'
state, search state, caches, the reference list) goes through :func:`atomic_write`, so a
reader or a crash never leaves half a file behind.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from core.configs.choices import MODELS

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def artifacts_dir() -> Path:
    """Where run stores, checkpoints and job queues live (``EMOTION_LAB_ARTIFACTS`` overrides)."""
    return Path(os.environ.get("EMOTION_LAB_ARTIFACTS", PROJECT_ROOT / "artifacts")).resolve()


def data_dir() -> Path:
    """Where datasets live (``EMOTION_LAB_DATA`` overrides)."""
    return Path(os.environ.get("EMOTION_LAB_DATA", PROJECT_ROOT / "data")).resolve()


def atomic_write(path: Path, content: str | bytes | Callable[[Path], None], suffix: str = "") -> Path:
    """Write ``path`` whole or not at all: into a sibling temporary file, then rename over it.

    ``content`` is text, bytes, or a function that writes the temporary path it is given
    (for writers such as ``np.savez`` that take a file name; ``suffix`` keeps the extension
    they insist on). The temporary name carries the process id, so two writers never share it.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp{suffix}")
    try:
        if isinstance(content, str):
            tmp.write_text(content)
        elif isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            content(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def keras_home() -> Path:
    """Keras' cache root: ``KERAS_HOME`` or ``~/.keras``, as Keras itself resolves it."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))


def imagenet_weights_path(arch: str) -> Path:
    """Where Keras caches the notop ImageNet weights of ``arch``."""
    return keras_home() / "models" / MODELS[arch].weights_file


def imagenet_weights_cached(arch: str) -> bool:
    """True when the ImageNet weights file for ``arch`` is already on disk."""
    return imagenet_weights_path(arch).is_file()
