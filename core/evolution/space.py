"""The hyperparameter search space: genes, pinning genes to one value, and decoding a genome.

A genome is one index per gene of ``GENE_SPACE``; decoding it over a base config gives an
ordinary ``RunConfig`` that ``core.train.training.train`` trains like any other run.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, Collection, Mapping, Sequence

from core.configs import ConfigError, ModelConfig, RunConfig

log = logging.getLogger(__name__)

HEAD_GENES = ("arch", "weights", "input_size")  # what mode head takes from ``fixed``


@dataclass(frozen=True)
class Gene:
    """One searchable choice: its name, the RunConfig field it sets, and its allowed values."""

    name: str
    field: str  # "<section>.<attribute>" of RunConfig
    choices: tuple


# The search space, declared once. Every value is valid for core.configs.config's validation.
GENE_SPACE: tuple[Gene, ...] = (
    Gene("arch", "model.arch", ("resnet50", "vgg16")),
    Gene("weights", "model.weights", ("imagenet", "none")),
    Gene("optimizer", "optimizer.name", ("adam", "rmsprop", "sgd", "adamw")),
    # Half-decade log grid: a learning rate matters by its order of magnitude.
    Gene("learning_rate", "optimizer.learning_rate", (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3)),
    Gene("batch_size", "train.batch_size", (16, 32, 64)),
    Gene("frozen_blocks", "model.frozen_blocks", (0, 1, 2, 3, 4)),
    Gene("dropout", "model.dropout", (0.0, 0.2, 0.35, 0.5)),
    Gene("dense_units", "model.dense_units", (0, 128, 256, 512)),
    Gene("label_smoothing", "train.label_smoothing", (0.0, 0.05, 0.1, 0.2)),
    Gene("augment_strength", "data.augment_strength", (0.0, 0.5, 1.0, 1.5)),
    Gene("input_size", "model.input_size", (32, 48, 64, 96)),
)


def plan_space(fixed: Mapping[str, Any] | None, cached: Collection[str],
               space: Sequence[Gene] = GENE_SPACE) -> tuple[tuple[Gene, ...], list[str], str | None]:
    """The space a search pinning ``fixed`` uses where ImageNet weights are cached for the architectures
    ``cached``; notes that say what else was pinned and why; and why it cannot start (None when it can).

    Its rules: without cached ImageNet weights for every candidate architecture the weights gene is
    pinned to ``'none'`` (they cannot be downloaded mid-search); freezing only keeps features that
    pretrained weights learned, so with weights ``'none'`` frozen_blocks is pinned to 0, and a pinned
    freeze pins weights to ``'imagenet'``. Pinning ``'imagenet'`` without its weights, or a freeze
    with weights ``'none'``, is the problem. Pure: the Evolve page shows these notes and the problem
    before it submits; ``resolve_space`` applies them on this machine and raises the problem.
    """
    fixed = dict(fixed or {})
    names = [g.name for g in space]
    unknown = sorted(set(fixed) - set(names))
    if unknown:
        raise ConfigError(f"Unknown gene(s) {unknown}; expected some of {names}")
    genes = [replace(g, choices=(fixed[g.name],)) if g.name in fixed else g for g in space]
    notes: list[str] = []
    weights = genes[names.index("weights")] if "weights" in names else None
    if weights is not None and "imagenet" in weights.choices:
        missing = [a for a in _candidate_archs(genes) if a not in cached]
        if missing and weights.choices == ("imagenet",):
            return tuple(genes), notes, (f"ImageNet weights are not cached for {', '.join(missing)}: pin weights "
                                         "to `none`, or run `python -m core fetch-weights` on a machine with internet.")
        if missing:
            genes[names.index("weights")] = replace(weights, choices=("none",))
            notes.append(f"ImageNet weights are not cached for {', '.join(missing)}, so weights stays `none`: run "
                         "`python -m core fetch-weights` to search over pretrained starts too.")
    problem = _constrain_freezing(genes, fixed, notes)
    return tuple(genes), notes, problem


def resolve_space(fixed: Mapping[str, Any] | None = None,
                  space: Sequence[Gene] = GENE_SPACE) -> tuple[tuple[Gene, ...], list[str]]:
    """The space a search uses on this machine (``plan_space`` with its weights cache), plus notes for the user.

    A space that cannot be searched raises before anything trains: ``WeightsMissingError`` naming the
    file when ImageNet weights are pinned but not cached, ``ConfigError`` for a freeze of random weights.
    """
    from core.configs import ARCHITECTURES
    from core.configs.paths import imagenet_weights_cached
    from core.train import models

    genes, notes, problem = plan_space(fixed, [a for a in ARCHITECTURES if imagenet_weights_cached(a)], space)
    if problem:
        if (fixed or {}).get("weights") == "imagenet":
            for arch in _candidate_archs(genes):
                models.resolve_weights(ModelConfig(arch=arch, weights="imagenet"))  # raises, naming the file
        raise ConfigError(problem)
    for note in notes:
        log.warning(note)
    return genes, notes


def _candidate_archs(genes: Sequence[Gene]) -> tuple[str, ...]:
    return next((g.choices for g in genes if g.name == "arch"), ("resnet50",))


def _constrain_freezing(genes: list[Gene], fixed: Mapping[str, Any], notes: list[str]) -> str | None:
    """Freezing only keeps features that pretrained weights learned: with random weights it
    freezes noise. When weights can only be ``none``, frozen_blocks is pinned to 0 (a pinned
    freeze is the problem returned); when a freeze is pinned, weights are pinned to ``imagenet``."""
    names = [g.name for g in genes]
    if "weights" not in names or "frozen_blocks" not in names:
        return None
    wi, fi = names.index("weights"), names.index("frozen_blocks")
    weights, frozen = genes[wi], genes[fi]
    if weights.choices == ("none",) and frozen.choices != (0,):
        if "frozen_blocks" in fixed:
            return (f"frozen_blocks={fixed['frozen_blocks']!r} freezes randomly initialised blocks: freezing needs "
                    "pretrained weights (weights=imagenet, cached with `python -m core fetch-weights`). Pin "
                    "frozen_blocks=0 or leave it free.")
        genes[fi] = replace(frozen, choices=(0,))
        notes.append("Freezing only makes sense for pretrained weights, so frozen_blocks stays 0 while weights is "
                     "`none` (no evaluation is spent on frozen random blocks).")
    elif "none" in weights.choices and 0 not in frozen.choices:
        genes[wi] = replace(weights, choices=tuple(c for c in weights.choices if c != "none"))
        notes.append(f"frozen_blocks is pinned to {frozen.choices[0]}, so weights stays `imagenet` (freezing needs "
                     "pretrained weights).")
    return None


def constrain(genome: Sequence[int], space: Sequence[Gene]) -> list[int]:
    """``genome`` with its freeze undone where its weights are random (frozen_blocks 0).

    Such genomes are the same training as their unfrozen twin, so the search's cache scores
    them once: neither the GA nor random search spends an evaluation on frozen noise.
    """
    out = [int(i) for i in genome]
    names = [g.name for g in space]
    if "weights" in names and "frozen_blocks" in names:
        wi, fi = names.index("weights"), names.index("frozen_blocks")
        frozen = space[fi].choices
        if space[wi].choices[out[wi]] == "none" and 0 in frozen:
            out[fi] = frozen.index(0)
    return out


def parse_fixed(items: Sequence[str], space: Sequence[Gene] = GENE_SPACE) -> dict[str, Any]:
    """``["arch=vgg16", "input_size=32"]`` -> ``{"arch": "vgg16", "input_size": 32}`` (CLI values)."""
    genes = {g.name: g for g in space}
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or name not in genes:
            raise ConfigError(f"--fix expects GENE=VALUE with GENE one of {list(genes)}. Received: {item!r}")
        choices = genes[name].choices
        match = [c for c in choices if str(c) == text]
        if match:
            out[name] = match[0]
            continue
        kind = type(choices[0])
        try:
            out[name] = kind(text) if kind is not int else int(text)
        except ValueError:
            raise ConfigError(f"--fix {name}: expected a {kind.__name__} such as {choices[0]!r}. "
                              f"Received: {text!r}") from None
    return out


def decode(genome: Sequence[int], base: RunConfig, space: Sequence[Gene] = GENE_SPACE) -> RunConfig:
    """The run config a genome stands for: ``base`` with every gene's chosen value applied."""
    if len(genome) != len(space):
        raise ConfigError(f"genome: expected {len(space)} genes ({', '.join(g.name for g in space)}). "
                          f"Received: genome={list(genome)!r}")
    sections: dict[str, dict[str, Any]] = {"data": {}, "model": {}, "optimizer": {}, "train": {}}
    for gene, index in zip(space, genome):
        index = int(index)
        if not 0 <= index < len(gene.choices):
            raise ConfigError(f"gene {gene.name}: expected an index in [0, {len(gene.choices) - 1}]. "
                              f"Received: {index}")
        section, attr = gene.field.split(".")
        sections[section][attr] = gene.choices[index]
    if "augment_strength" in sections["data"]:
        sections["data"]["augment"] = sections["data"]["augment_strength"] > 0
    cfg = replace(base, **{s: replace(getattr(base, s), **v) for s, v in sections.items() if v})
    return cfg.validate()


def genome_values(genome: Sequence[int], space: Sequence[Gene]) -> dict[str, Any]:
    """``{gene name: chosen value}`` for tables and reports."""
    return {g.name: g.choices[int(i)] for g, i in zip(space, genome)}


def genome_key(genome: Sequence[int]) -> str:
    """The cache key of a genome (``"1-0-3-..."``), also its run tag."""
    return "-".join(str(int(i)) for i in genome)


def space_to_json(space: Sequence[Gene]) -> list[dict]:
    """A space as a search state stores it."""
    return [{"name": g.name, "field": g.field, "choices": list(g.choices)} for g in space]


def space_from_json(items: list[dict]) -> tuple[Gene, ...]:
    """The space a search state stored (``space_to_json``'s inverse)."""
    return tuple(Gene(d["name"], d["field"], tuple(d["choices"])) for d in items)
