"""How far a job has got, read from the four progress columns every kind shares."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.jobs.queue.registry import units


@dataclass(frozen=True)
class Progress:
    """How far a job has got, in its kind's units: epochs and batches, or generations and individuals.

    ``done`` counts finished units (``part_done`` the finished parts of the unit in
    progress); a count not reported yet is 0 and a total not known yet is None.
    """

    unit: str
    done: int
    total: int | None
    part_unit: str
    part_done: int
    part_total: int | None
    eta_s: float | None

    @classmethod
    def from_row(cls, kind: str, row: Any) -> Progress:
        """The progress stored in a job row (a ``sqlite3.Row`` or a dict) for a job of ``kind``."""
        unit, _, part, _ = units(kind)

        def count(key: str) -> int | None:
            return None if row[key] is None else int(row[key])

        eta = row["eta_s"]
        return cls(unit, count("epoch") or 0, count("epochs") or None, part, count("batch") or 0,
                   count("batches") or None, None if eta is None else float(eta))

    @property
    def started(self) -> bool:
        """True once the job has reported how many units it will run."""
        return bool(self.total)

    @property
    def fraction(self) -> float:
        """Share of the job done, in [0, 1]."""
        if not self.total:
            return 0.0
        part = self.part_done / self.part_total if self.part_total else 0.0
        return min(1.0, (self.done + part) / self.total)

    def describe(self) -> str:
        """``epoch 2/3, batch 14/88, about 40 s left`` (the unit in progress is counted from 1)."""
        if not self.total:
            return "starting"
        if self.done >= self.total:
            return f"all {self.unit}s done; finishing"
        parts = f", {self.part_unit} {self.part_done}/{self.part_total}" if self.part_total else ""
        eta = f", about {self.eta_s:.0f} s left" if self.eta_s else ""
        return f"{self.unit} {self.done + 1}/{self.total}{parts}{eta}"

