"""The one atomic-write helper: a reader or a crash never sees half a file, and nothing is left behind."""
from __future__ import annotations

import numpy as np
import pytest

from core.configs import atomic_write


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "state.json"
    atomic_write(target, '{"epoch": 1}')
    assert target.read_text() == '{"epoch": 1}'

    def crash(tmp):
        tmp.write_text('{"ep')  # half written, then the writer dies
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, crash)
    assert target.read_text() == '{"epoch": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_writers_that_insist_on_an_extension_get_it(tmp_path):
    # np.savez appends ".npz" to a name without it: the temporary must already end so, or the rename misses it.
    target = tmp_path / "cache.npz"
    atomic_write(target, lambda tmp: np.savez(tmp, x=np.arange(3)), suffix=".npz")
    with np.load(target) as z:
        assert z["x"].tolist() == [0, 1, 2]
    atomic_write(tmp_path / "model.bin", b"\x00\x01")
    assert (tmp_path / "model.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.npz", "model.bin"]
