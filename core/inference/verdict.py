"""A face's verdict: which models vote, which one leads, and the headline in words.

A raw majority lets many weak models outvote one good one: on scikit-image's astronaut,
seven runs trained on drawn faces (near-uniform outputs) said "disgust" while the published
FER2013 model said "happy" at 1.000. So the rule is:

- models trained on drawn faces, and models whose test accuracy is near chance (under
  NEAR_CHANCE times 1/classes), do not vote; they are still shown, with the reason;
- the leading voter is a reference model (an operator-trusted published model), else the
  real-data run with the best test accuracy; the verdict is what the leader says;
- when the voters do not all say the same, the headline says so plainly.

The Predict page, the CLI's summary line and the video's per-face summary all use
``decide`` and ``headline``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Test accuracy below this many times chance (1/number of classes) counts as near chance:
# 29% for FER2013's 7 classes, above a model that always answers the commonest class (25%).
NEAR_CHANCE = 2.0


@dataclass(frozen=True)
class Verdict:
    """One face's verdict. ``label`` and ``leader`` are None when no model votes."""

    label: str | None
    leader: str | None
    probability: float  # the leader's probability for ``label`` (0.0 without a leader)
    voters: tuple[str, ...]  # predictor ids that vote, leader first
    agree: tuple[str, ...]  # voters whose top label is ``label``
    abstain: dict[str, str] = field(default_factory=dict)  # predictor id -> why it does not vote

    @property
    def disagree(self) -> bool:
        """Whether some voter's top label differs from the verdict."""
        return len(self.agree) < len(self.voters)

    def to_dict(self) -> dict:
        """Plain values for results, CSVs and caches."""
        return {"label": self.label, "leader": self.leader, "probability": self.probability,
                "voters": list(self.voters), "agree": list(self.agree), "abstain": dict(self.abstain),
                "disagree": self.disagree}


def abstention(predictor: Mapping) -> str | None:
    """Why a model (a ``Predictor.to_dict()``) does not vote on photos, or None when it votes."""
    if not predictor.get("for_photos", True):
        return predictor.get("note") or "trained on drawn faces"
    accuracy, classes = predictor.get("test_accuracy"), len(predictor.get("class_names") or ())
    if accuracy is not None and classes and accuracy < NEAR_CHANCE / classes:
        return f"test accuracy {accuracy:.0%} is near chance ({1 / classes:.0%} for {classes} classes)"
    return None


def decide(tops: Mapping[str, tuple[str, float]], predictors: Mapping[str, Mapping]) -> Verdict:
    """The verdict on one face from each model's (top label, its probability); ``predictors`` maps
    each id to its ``Predictor.to_dict()`` (kind, for_photos, note, test_accuracy, class_names)."""
    abstain = {pid: why for pid in tops if (why := abstention(predictors.get(pid, {}))) is not None}
    voters = [pid for pid in tops if pid not in abstain]
    if not voters:
        return Verdict(None, None, 0.0, (), (), abstain)
    # References first (published, operator-trusted), then the best-tested run; the order given breaks ties.
    order = {pid: i for i, pid in enumerate(tops)}
    voters.sort(key=lambda pid: (predictors.get(pid, {}).get("kind") != "reference",
                                 -(predictors.get(pid, {}).get("test_accuracy") or 0.0), order[pid]))
    leader = voters[0]
    label, p = tops[leader]
    agree = tuple(pid for pid in voters if tops[pid][0] == label)
    return Verdict(label, leader, float(p), tuple(voters), agree, abstain)


def headline(verdict: Verdict, labels: Mapping[str, str], tops: Mapping[str, tuple[str, float]]) -> str:
    """The verdict in one plain sentence, naming the leading model and any disagreement."""
    if verdict.leader is None:
        return ("No verdict: none of these models is meaningful on photos "
                "(trained on drawn faces or near chance).")
    lead = f"{labels.get(verdict.leader, verdict.leader)}"
    said = f"{verdict.label[:1].upper()}{verdict.label[1:]} ({verdict.probability:.0%}, {lead})"
    n = len(verdict.voters)
    if n == 1 and not verdict.abstain:  # the only model there is
        return f"The model says {verdict.label} ({verdict.probability:.0%})."
    if n == 1:
        return f"{said}."
    if not verdict.disagree:
        return f"{said}; {'both' if n == 2 else f'all {n}'} voting models agree."
    others = ", ".join(f"{labels.get(pid, pid)} says {tops[pid][0]}" for pid in verdict.voters
                       if pid not in verdict.agree)
    return f"The models disagree: {lead} says {verdict.label} ({verdict.probability:.0%}); {others}."
