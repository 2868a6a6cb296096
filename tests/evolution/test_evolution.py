"""Genetic search: gene space and decoding, a killed-and-resumed search, random baseline, head mode.

Training individuals is the expensive part (~8 s each for VGG16 at 32x32 on this CPU), so
searches pin the genes that only change cost (architecture, input size; no freezing, which
needs pretrained weights) and leave optimizer, learning rate, dropout and label smoothing to evolve.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import write_imagenet_file

from core import evolution
from core.configs import ConfigError, DataConfig, RunConfig

ROOT = Path(__file__).resolve().parents[2]

# Cheap individuals: VGG16 (few layers to trace) at 32x32, random weights (so nothing frozen).
FIXED = {"arch": "vgg16", "weights": "none", "input_size": 32, "frozen_blocks": 0, "dense_units": 0,
         "augment_strength": 0.5, "batch_size": 16}
BUDGET = evolution.Budget(epochs=1, max_train=14, max_eval=14)
SEED = 3


def _base() -> RunConfig:
    """The full budget of the five configurations in these tests (what `--epochs 1 --batch-size 8
    --input-size 32 --seed 3 --dataset synthetic-tiny` gives on the command line)."""
    from core.configs import presets

    base = presets.base_config("resnet50", "synthetic-tiny", epochs=1, batch_size=8, seed=SEED)
    return replace(base, model=replace(base.model, input_size=32))


# ---------------------------------------------------------------- gene space


def test_reading_searches_loads_neither_tensorflow_nor_pygad():
    # The dashboard reads searches through this module; its pages must stay free of both.
    code = ("import sys, core.evolution as e; e.list_searches(); "
            "print(sorted(m for m in ('tensorflow', 'keras', 'pygad', 'mlflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_decoding_covers_every_choice_of_every_gene():
    base = _base()
    space = evolution.GENE_SPACE
    assert {g.name for g in space} == {"arch", "weights", "optimizer", "learning_rate", "batch_size",
                                      "frozen_blocks", "dropout", "dense_units", "label_smoothing",
                                      "augment_strength", "input_size"}
    lrs = dict((g.name, g.choices) for g in space)["learning_rate"]
    assert np.allclose(np.diff(np.log10(lrs)), 0.5, atol=0.03), "learning rates: a half-decade log grid"
    assert min(dict((g.name, g.choices) for g in space)["input_size"]) >= 32
    for j, gene in enumerate(space):
        for i, value in enumerate(gene.choices):
            genome = [0] * len(space)
            genome[j] = i
            cfg = evolution.decode(genome, base)
            section, attr = gene.field.split(".")
            assert getattr(getattr(cfg, section), attr) == value
            # Everything the genome does not name comes from the base, unchanged.
            assert cfg.data.dataset == "synthetic-tiny" and cfg.train.epochs == 1 and cfg.train.seed == SEED
            if gene.name == "augment_strength":
                assert cfg.data.augment == (value > 0)
    with pytest.raises(ConfigError, match="learning_rate"):
        evolution.decode([0, 0, 0, 99, 0, 0, 0, 0, 0, 0, 0], base)
    with pytest.raises(ConfigError, match="expected 11 genes"):
        evolution.decode([0, 0], base)


def test_fixed_genes_and_missing_imagenet_weights(tmp_path, monkeypatch):
    from core.train import models

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    space, notes = evolution.resolve_space()
    genes = {g.name: g for g in space}
    assert genes["weights"].choices == ("none",)
    assert "fetch-weights" in notes[0] and "resnet50" in notes[0]
    assert len(genes["optimizer"].choices) == 4
    with pytest.raises(models.WeightsMissingError, match="not cached"):
        evolution.resolve_space({"weights": "imagenet"})
    with pytest.raises(ConfigError, match="Unknown gene"):
        evolution.resolve_space({"momentum": 0.9})

    assert evolution.parse_fixed(["arch=vgg16", "input_size=32", "learning_rate=1e-3", "dropout=0.5"]) == {
        "arch": "vgg16", "input_size": 32, "learning_rate": 1e-3, "dropout": 0.5}
    with pytest.raises(ConfigError, match="input_size"):
        evolution.parse_fixed(["input_size=big"])
    with pytest.raises(ConfigError, match="GENE=VALUE"):
        evolution.parse_fixed(["colour=red"])
    with pytest.raises(ConfigError, match="input_size"):  # a pinned value is validated before any training
        evolution.run_search("synthetic-tiny", 2, 1, fixed={"input_size": 16}, base=_base())


def test_freezing_is_searched_only_with_pretrained_weights(tmp_path, monkeypatch):
    """Frozen random blocks are not a configuration: no evaluation is spent on them."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    # No ImageNet weights on this machine: weights is 'none', so frozen_blocks is pinned to 0.
    space, notes = evolution.resolve_space()
    genes = {g.name: g.choices for g in space}
    assert genes["weights"] == ("none",) and genes["frozen_blocks"] == (0,)
    assert any("Freezing only makes sense for pretrained weights" in n for n in notes)
    with pytest.raises(ConfigError, match="frozen_blocks=4 freezes randomly initialised blocks"):
        evolution.resolve_space({"weights": "none", "frozen_blocks": 4})
    with pytest.raises(ConfigError, match="freezing needs pretrained weights"):
        evolution.run_search("synthetic-tiny", 2, 1, fixed={**FIXED, "frozen_blocks": 2}, base=_base())

    # With weights for VGG16 cached, both starts are searched and a freeze is only kept with ImageNet.
    write_imagenet_file("vgg16")
    space, _ = evolution.resolve_space({"arch": "vgg16"})
    genes = {g.name: g.choices for g in space}
    assert genes["weights"] == ("imagenet", "none") and genes["frozen_blocks"] == (0, 1, 2, 3, 4)
    names = [g.name for g in space]
    w, f = names.index("weights"), names.index("frozen_blocks")
    rng = np.random.default_rng(0)
    for _ in range(200):
        genome = evolution.constrain([int(rng.integers(len(g.choices))) for g in space], space)
        values = evolution.genome_values(genome, space)
        assert values["weights"] == "imagenet" or values["frozen_blocks"] == 0
    scratch_frozen = [0] * len(space)
    scratch_frozen[w], scratch_frozen[f] = genes["weights"].index("none"), 3
    assert evolution.genome_values(evolution.constrain(scratch_frozen, space), space)["frozen_blocks"] == 0
    pretrained_frozen = [*scratch_frozen]
    pretrained_frozen[w] = genes["weights"].index("imagenet")
    assert evolution.constrain(pretrained_frozen, space) == pretrained_frozen
    # A pinned freeze pins the pretrained start.
    space, notes = evolution.resolve_space({"arch": "vgg16", "frozen_blocks": 3})
    assert {g.name: g.choices for g in space}["weights"] == ("imagenet",) and "imagenet" in notes[-1]



def test_plan_space_states_the_rules_without_raising():
    """The Evolve page shows what the search would make of its pins before it submits (``plan_space``)."""
    # Nothing cached: weights stays none, so frozen_blocks stays 0; both say why.
    space, notes, problem = evolution.plan_space({"arch": "vgg16"}, cached=[])
    genes = {g.name: g.choices for g in space}
    assert genes["weights"] == ("none",) and genes["frozen_blocks"] == (0,) and problem is None
    assert "so weights stays `none`" in notes[0] and "vgg16" in notes[0]
    assert "Freezing only makes sense for pretrained weights, so frozen_blocks stays 0" in notes[1]
    # A freeze of random blocks, and ImageNet weights that are not there, are problems with their reasons.
    _, _, problem = evolution.plan_space({"weights": "none", "frozen_blocks": 2}, cached=["vgg16", "resnet50"])
    assert problem.startswith("frozen_blocks=2 freezes randomly initialised blocks")
    _, _, problem = evolution.plan_space({"arch": "resnet50", "weights": "imagenet"}, cached=["vgg16"])
    assert "not cached for resnet50" in problem and "fetch-weights" in problem
    # Cached for every candidate: both starts stay open, and a pinned freeze pins the pretrained one.
    space, notes, problem = evolution.plan_space({}, cached=["vgg16", "resnet50"])
    assert {g.name: g.choices for g in space}["weights"] == ("imagenet", "none") and not notes and problem is None
    space, notes, _ = evolution.plan_space({"frozen_blocks": 3}, cached=["vgg16", "resnet50"])
    assert {g.name: g.choices for g in space}["weights"] == ("imagenet",) and "imagenet" in notes[0]


# ---------------------------------------------------------------- search spec and saved searches


def _spec_payload(**changes) -> dict:
    payload = {"search_id": "evo-spec", "dataset": "synthetic-tiny", "population": 3, "generations": 2, "seed": SEED,
               "fixed": FIXED, "budget": {"epochs": 1, "max_train": 14, "max_eval": 14, "long_epochs": 2},
               "base": _base().to_dict()}
    return {**payload, **changes}


def test_search_spec_validates_once_and_round_trips(fresh_artifacts, tmp_path, monkeypatch):
    from core.configs import presets

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no ImageNet weights cached
    spec = evolution.SearchSpec.from_payload(_spec_payload())
    assert (spec.action, spec.strategy, spec.mode, spec.retrain_best) == ("start", "ga", "hyper", True)
    assert spec.budget == evolution.Budget(epochs=1, max_train=14, max_eval=14, long_epochs=2)
    assert spec.base == _base() and spec.fixed == FIXED
    payload = spec.to_payload()
    assert json.loads(json.dumps(payload)) == payload
    assert evolution.SearchSpec.from_payload(payload) == spec
    assert spec.label() == "GA evo-spec on synthetic-tiny: population 3, 2 generations"

    minimal = evolution.SearchSpec.from_payload({"search_id": "evo-min", "dataset": "synthetic-tiny"})
    assert (minimal.population, minimal.generations, minimal.seed, minimal.budget) == (8, 5, 42, evolution.Budget())
    assert minimal.base == presets.base_config(dataset="synthetic-tiny", seed=42)
    head = evolution.SearchSpec.from_payload(_spec_payload(mode="head", generations=1,
                                                           fixed={"arch": "vgg16", "input_size": 32}))
    assert not head.retrain_best  # a head has no genome to retrain
    assert head.label() == "head weights evo-spec on synthetic-tiny: population 3, 1 generation"
    random = evolution.SearchSpec.from_payload(_spec_payload(strategy="random"))
    assert random.label().startswith("random search evo-spec")

    bad = [({"search_id": "../elsewhere"}, "search_id='../elsewhere'"), ({"search_id": ".hidden"}, "search_id"),
           ({"search_id": ""}, "search_id"), ({"search_id": None}, "search_id"), ({"action": "pause"}, "action='pause'"),
           ({"dataset": ""}, "dataset=''"), ({"strategy": "grid"}, "strategy='grid'"), ({"mode": "w"}, "mode='w'"),
           ({"population": 1}, "population=1"), ({"population": True}, "population=True"),
           ({"generations": 0}, "generations=0"), ({"seed": -1}, "seed=-1"),
           ({"retrain_best": "yes"}, "retrain_best='yes'"), ({"fixed": ["arch"]}, "fixed=['arch']"),
           ({"budget": {"epochs": 0}}, "epochs=0"), ({"budget": {"epochs": 2, "long_epochs": 2}}, "long_epochs=2"),
           ({"budget": {"epoch": 1}}, "epoch"), ({"fixed": {"input_size": 16}}, "input_size=16"),
           ({"fixed": {"momentum": 0.9}}, "momentum=0.9"), ({"mode": "head", "strategy": "random"}, "mode head"),
           ({"mode": "head", "fixed": {"optimizer": "adam"}}, "mode head"),
           ({"fixed": {"arch": "vgg16", "weights": "imagenet"}}, "not cached"),
           ({"mode": "head", "fixed": {"arch": "vgg16", "weights": "imagenet"}}, "not cached")]
    for change, message in bad:
        with pytest.raises(ConfigError, match=re.escape(message)):
            evolution.SearchSpec.from_payload(_spec_payload(**change))
    with pytest.raises(ConfigError, match="expected a dict"):
        evolution.SearchSpec.from_payload(["evo-spec"])
    # run_search takes the same road: one search-id rule, one set of checks.
    with pytest.raises(ConfigError, match="search_id"):
        evolution.run_search("synthetic-tiny", 2, 1, base=_base(), fixed=FIXED, search_id="a/b")
    assert evolution.list_searches().empty


def _save_search(sid: str, *, mode: str = "hyper", status: str = "finished", trained: bool = True) -> dict:
    """A saved search as ``start_search`` writes it, with one genome trained (or none)."""
    space, notes = evolution.resolve_space(FIXED)
    genome = [0] * len(space)
    evaluations = {f"{evolution.genome_key(genome)}@short": {
        "genome": genome, "fidelity": "short", "generation": 0, "slot": 0, "run_id": "run-a",
        "status": "FINISHED", "fitness": 0.4, "seconds": 1.0}} if trained else {}
    state = {"search_id": sid, "mode": mode, "strategy": "ga", "dataset": "synthetic-tiny", "population": 2,
             "generations": 1, "seed": SEED, "budget": {"epochs": 1, "max_train": 14, "max_eval": 14, "long_epochs": 0},
             "fixed": FIXED, "base": _base().to_dict(), "retrain_best": False,
             "space": evolution.space_to_json(space), "notes": notes, "status": status, "error": "",
             "generation": 1, "history": [], "evaluations": evaluations, "final": None, "head": None,
             "created": evolution.timestamp(), "updated": evolution.timestamp()}
    evolution.save_state(state)
    return state


def test_saved_searches_resume_retrain_and_exist(fresh_artifacts):
    with pytest.raises(ConfigError, match="no saved search 'evo-none' to resume"):
        evolution.SearchSpec.from_payload({"search_id": "evo-none", "action": "resume"})
    assert evolution.search_exists("evo-none") is None
    with pytest.raises(evolution.SearchNotFound):
        evolution.load_state("evo-none")

    _save_search("evo-done")
    assert evolution.search_exists("evo-done")["best"]["fitness"] == 0.4
    with pytest.raises(ConfigError, match="already exists"):
        evolution.SearchSpec.from_payload(_spec_payload(search_id="evo-done"))
    resume = evolution.SearchSpec.from_payload({"search_id": "evo-done", "action": "resume"})
    # The saved search's own settings, not defaults.
    assert (resume.population, resume.generations, resume.fixed, resume.base) == (2, 1, FIXED, _base())
    assert resume.to_payload() == {"search_id": "evo-done", "action": "resume"} and not resume.retrain_best
    assert evolution.SearchSpec.from_payload(resume.to_payload()) == resume
    assert resume.label() == "resume search evo-done"
    retrain = evolution.SearchSpec.from_payload({"search_id": "evo-done", "action": "retrain"})
    assert retrain.retrain_best and retrain.label() == "retrain best of evo-done"
    with pytest.raises(ConfigError, match="start_search starts new searches"):
        evolution.start_search(retrain)

    # Retraining a finished search: resume_search then runs exactly the retrain step.
    evolution.enable_retrain("evo-done")
    state = evolution.load_state("evo-done")
    assert state["retrain_best"] and state["status"] == "stopped"
    # ... unless its retrain already finished.
    state.update(status="finished", final={"run_id": "run-final", "status": "FINISHED"})
    evolution.save_state(state)
    evolution.enable_retrain("evo-done")
    assert evolution.load_state("evo-done")["status"] == "finished"

    _save_search("evo-young", status="running", trained=False)
    with pytest.raises(ConfigError, match="no finished genome"):
        evolution.SearchSpec.from_payload({"search_id": "evo-young", "action": "retrain"})
    _save_search("head-done", mode="head")
    with pytest.raises(ConfigError, match="no genome to retrain"):
        evolution.SearchSpec.from_payload({"search_id": "head-done", "action": "retrain"})


def test_slots_per_generation_adds_the_promoted_third():
    assert evolution.slots_per_generation(8, 0) == 8
    assert [evolution.slots_per_generation(n, 3) for n in (2, 3, 4, 8, 9)] == [3, 4, 6, 11, 12]


@pytest.mark.slow
def test_every_decoded_config_builds_and_trains_a_step(tmp_path, monkeypatch):
    """A covering set: every choice of every gene appears in at least one of six genomes."""
    import keras

    from core.data import datasets
    from core.data.pipeline import make_pipeline
    from core.train import models

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    weights_file = write_imagenet_file("vgg16")
    # With the file cached, a VGG16-only search may start from ImageNet weights.
    space, notes = evolution.resolve_space({"arch": "vgg16"})
    assert dict((g.name, g.choices) for g in space)["weights"] == ("imagenet", "none") and not notes

    full = evolution.GENE_SPACE
    rows = max(len(g.choices) for g in full)
    genomes = []
    for i in range(rows):
        genome = [i % len(g.choices) for g in full]
        genome[0] = 0 if i == 4 else 1  # one ResNet50 row (tracing it is slow), VGG16 otherwise
        genome[1] = (i + 1) % 2  # ImageNet weights on odd rows, all VGG16: the file this test wrote
        genomes.append(genome)
    for j, gene in enumerate(full):
        assert {g[j] for g in genomes} == set(range(len(gene.choices))), f"{gene.name} not covered"

    ds = datasets.load_for_run(DataConfig("synthetic-tiny"))
    x, y = ds.splits["train"]
    k = len(ds.class_names)
    saved_kernel = _first_vgg16_kernel(weights_file)
    for genome in genomes:
        cfg = evolution.decode(genome, _base())
        model = models.build_model(cfg.model, k, seed=SEED)
        backbone = model.get_layer(cfg.model.arch)
        if cfg.model.weights == "imagenet":
            np.testing.assert_array_equal(backbone.get_layer("block1_conv1").get_weights()[0], saved_kernel)
        frozen = [layer for layer in backbone.layers if layer.weights and not layer.trainable]
        assert bool(frozen) == (cfg.model.frozen_blocks > 0)
        model.compile(optimizer=models.make_optimizer(cfg.optimizer),
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.train.label_smoothing))
        batch = next(iter(make_pipeline(
            x, y, arch=cfg.model.arch, input_size=cfg.model.input_size, num_classes=k,
            batch_size=cfg.train.batch_size, training=True, augment=cfg.data.augment,
            augment_strength=cfg.data.augment_strength, seed=SEED)))
        assert batch[0].shape[1:] == (cfg.model.input_size, cfg.model.input_size, 3)
        loss = float(model.train_on_batch(*batch))
        assert np.isfinite(loss), f"{evolution.genome_values(genome, full)} gave loss {loss}"
        keras.backend.clear_session()


def _first_vgg16_kernel(path: Path) -> np.ndarray:
    """The first conv kernel stored in a VGG16 weights file (to check that it was loaded)."""
    import h5py

    with h5py.File(path, "r") as f:
        group = f["block1_conv1"]
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
        return np.asarray(group[names[0]])


# ---------------------------------------------------------------- mode hyper


def _poll_generation(path: Path, proc: subprocess.Popen, log: Path, at_least: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"search exited before it could be killed:\n{log.read_text()[-5000:]}")
        try:
            state = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            state = None
        if state and state["generation"] >= at_least:
            return state
        time.sleep(0.2)
    pytest.fail(f"generation {at_least} was not saved within {timeout} s")


@pytest.mark.slow
def test_search_killed_between_generations_resumes_to_the_uninterrupted_result(fresh_artifacts, monkeypatch):
    from core.data import datasets
    from core.data.dataset import Dataset
    from core.store import RunStore
    from core.train.runs import dataset_identity

    # Frozen pretrained blocks without augmentation: individuals train on cached features, which keeps
    # three generations, twice over, affordable (the weights file is made here, in Keras' format, in a
    # Keras home of this test's own: other tests in this process rely on there being no ImageNet weights).
    monkeypatch.setenv("KERAS_HOME", str(fresh_artifacts.parent / "keras"))
    write_imagenet_file("vgg16")
    fixed = {**FIXED, "weights": "imagenet", "frozen_blocks": 4, "augment_strength": 0.0}
    # 1. A real CLI search, killed (SIGKILL) once generation 1's state is on disk.
    cmd = [sys.executable, "-m", "core", "evolve", "--dataset", "synthetic-tiny", "--population", "3",
           "--generations", "2", "--seed", str(SEED), "--name", "killed",
           "--fix", *[f"{k}={v}" for k, v in fixed.items()],
           "--eval-epochs", "1", "--eval-max-train", "14", "--eval-max-eval", "14",
           "--epochs", "1", "--batch-size", "8", "--input-size", "32"]
    env = {**os.environ, "EMOTION_LAB_ARTIFACTS": str(fresh_artifacts)}
    log = fresh_artifacts.parent / "evolve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            _poll_generation(fresh_artifacts / "searches" / "killed" / "state.json", proc, log, 1, timeout=300)
        finally:
            proc.kill()
            proc.wait()
    killed = json.loads((fresh_artifacts / "searches" / "killed" / "state.json").read_text())
    assert killed["status"] == "running" and killed["generation"] >= 1  # killed, not finished

    # 2. Resumed in this process, 3. and the same search from the same seed without a kill.
    assert evolution.resume_search("killed") == "killed"
    evolution.run_search("synthetic-tiny", 3, 2, budget=BUDGET, base=_base(), fixed=fixed, seed=SEED,
                         search_id="straight", retrain_best=False)
    resumed, straight = evolution.search_state("killed"), evolution.search_state("straight")

    # Reproducible from the seed, and the kill changed nothing: same genomes, same fitness.
    assert resumed["status"] == "finished"
    assert list(resumed["generations"]["generation"]) == [0, 1, 2]
    cols = [*resumed["genes"], "fitness", "cached"]
    assert resumed["population"][cols].equals(straight["population"][cols])
    assert resumed["generations"].equals(straight["generations"])
    assert resumed["cost"]["evaluations"] == straight["cost"]["evaluations"]

    # One child run per distinct genome: nothing was trained twice, the interrupted run was resumed.
    pop = resumed["population"]
    distinct = {tuple(row) for row in pop[resumed["genes"]].itertuples(index=False)}
    assert len(resumed["evaluations"]) == len(distinct) == resumed["cost"]["evaluations"]
    assert resumed["cost"]["cache_hits"] == len(pop) - len(distinct) > 0  # the GA's elite at least
    store = RunStore()
    runs = store.list_runs()
    children = runs[(runs.group == "killed") & (runs.variant != "ga-killed")]
    assert sorted(children.run_id) == sorted(resumed["evaluations"].run_id)
    assert set(children.status) == {"FINISHED"}
    assert set(pop.run_id) == set(children.run_id)

    # Fitness is validation accuracy; the test split was never handed to a child run.
    search_data = datasets.load_for_run(DataConfig("synthetic-tiny", max_train=14, max_eval=14))
    seen = Dataset(search_data.name, search_data.source, search_data.class_names,
                   {"train": search_data.splits["train"], "val": search_data.splits["val"],
                    "test": search_data.splits["val"]})
    child = children.run_id.iloc[0]
    tags = store.get(child).data.tags
    assert tags["dataset.fingerprint"] == seen.fingerprint() != search_data.fingerprint()
    assert tags["kind"] == "ga-individual" and tags["search_id"] == "killed"
    row = resumed["evaluations"].set_index("run_id").loc[child]
    assert row.fitness == pytest.approx(store.history(child)["val_accuracy"].iloc[-1])

    # The best genome, retrained with the full budget and tested, sits in the comparison table.
    best = resumed["best"]
    assert best["fitness"] == resumed["evaluations"].fitness.max()
    final = runs[runs.variant == "ga-killed"]
    assert len(final) == 1 and final.status.iloc[0] == "FINISHED"
    assert final.run_id.iloc[0] == resumed["final_run_id"]
    assert final.test_accuracy.iloc[0] == pytest.approx(resumed["final_test_accuracy"])
    assert final.dataset.iloc[0] == "synthetic-tiny" and final.arch.iloc[0] == "vgg16"
    cfg = store.config(resumed["final_run_id"])
    assert cfg.data.max_train is None and cfg.data.max_eval is None and cfg.train.epochs == 1  # full budget
    section_attr = [g.field.split(".") for g in evolution.GENE_SPACE]
    assert [getattr(getattr(cfg, sec), attr) for sec, attr in section_attr] == list(best["genes"].values())
    report = store.report(resumed["final_run_id"])
    assert report["n"] == len(datasets.load_for_run(cfg.data).splits["test"][1])  # the real test split
    assert dataset_identity(datasets.load_for_run(cfg.data))["fingerprint"] == \
        store.get(resumed["final_run_id"]).data.tags["dataset.fingerprint"]

    listed = evolution.list_searches().set_index("search_id")
    assert listed.loc["killed", "status"] == "finished"
    assert listed.loc["killed", "final_run_id"] == resumed["final_run_id"]
    assert listed.loc["straight", "evaluations"] == straight["cost"]["evaluations"]


@pytest.mark.slow
def test_random_baseline_multi_fidelity_cancel_and_resume(fresh_artifacts):
    """All genes pinned: one genome, so every slot after the first is a cache hit."""
    from core.data import datasets
    from core.store import RunStore
    from core.train.runs import open_run

    fixed = {g.name: g.choices[0] for g in evolution.GENE_SPACE}
    fixed.update(FIXED)
    calls = []

    def stop_in_first_training() -> bool:
        calls.append(1)
        return len(calls) >= 2  # the search's own check passes; train() then stops after a batch

    budget = replace(BUDGET, long_epochs=2)  # the best third (here: the one genome) also trains 2 epochs
    sid = evolution.run_search("synthetic-tiny", 2, 1, strategy="random", budget=budget, base=_base(),
                               fixed=fixed, seed=SEED, retrain_best=False, should_stop=stop_in_first_training)
    assert sid.startswith("random-")
    state = evolution.search_state(sid)
    assert state["status"] == "stopped" and state["generation"] == -1
    store = RunStore()
    (killed_run,) = state["evaluations"].run_id
    assert store.list_runs().set_index("run_id").loc[killed_run, "status"] == "KILLED"
    # A run opened by a search killed before it could record the run id: resuming discards it.
    orphan = open_run(_base(), datasets.load_for_run(_base().data), store=store, tags={"search_id": sid})

    seen = []
    assert evolution.resume_search(sid, progress=seen.append) == sid
    state = evolution.search_state(sid)
    assert state["status"] == "finished"
    # Same budget as a GA of this size: (generations + 1) x population slots, scored alike.
    assert state["cost"]["evaluations"] == 2 and state["cost"]["cache_hits"] == 3  # short + long training
    assert [p.done for p in seen] == [1, 2, 3, 4, 5, 6] and seen[-1].total == 6  # 2 slots + 1 promotion a generation
    # What a job shows: generations fully scored (of 2) and slots scored in the one in progress (of 3).
    assert [(p.generations_done, p.individual) for p in seen] == [(0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0)]
    assert {(p.generations_total, p.individuals) for p in seen} == {(2, 3)}
    means = list(state["generations"]["mean"])
    assert [p.mean_fitness for p in seen] == [None, None, means[0], means[0], means[0], means[1]]
    runs = store.list_runs().set_index("run_id")
    assert orphan not in runs.index
    children = runs[runs.group == sid]
    assert sorted(children.index) == sorted(state["evaluations"].run_id)  # the cancelled run was resumed
    assert set(children.status) == {"FINISHED"} and killed_run in children.index
    # The genome is ranked by its longer run: 2 epochs, and that run's validation accuracy.
    long = state["evaluations"].set_index("fidelity").loc["long"]
    assert len(store.history(long.run_id)) == 2
    assert set(state["population"].fidelity) == {"long"} and set(state["population"].run_id) == {long.run_id}
    assert (state["population"].fitness == long.fitness).all()
    assert evolution.resume_search(sid) == sid  # finished: nothing left to do


# ---------------------------------------------------------------- mode head


@pytest.mark.slow
def test_head_mode_evolves_a_head_that_beats_its_start(fresh_artifacts, monkeypatch):
    import keras
    import pygad.kerasga

    from core.configs import presets
    from core.train import models

    # No ImageNet weights offline: a fixed, seeded random VGG16 is the backbone. Its pooled
    # features are weak (Adam's head reaches ~0.24 here), so the GA gets enough steps to
    # rise clearly above chance: +0.04 to +0.10 over GA seeds 1-6 on this backbone.
    generations, population = 150, 60
    base = presets.base_config("vgg16", "synthetic-small", seed=0)
    head_args = dict(mode="head", seed=1, base=base, fixed={"arch": "vgg16", "weights": "none", "input_size": 48},
                     budget=evolution.Budget(max_train=None, max_eval=None))
    sid = evolution.run_search("synthetic-small", population, generations, **head_args)
    state = evolution.search_state(sid)
    assert state["status"] == "finished" and state["mode"] == "head"
    curves = state["curves"]
    assert set(curves.method) == {"ga", "adam", "rmsprop"}
    assert curves.groupby("method").step.max().eq(generations).all()
    start = curves[curves.step == 0]
    # One start for all three (an all-zero head: chance level on the balanced synthetic set).
    assert start.val_accuracy.nunique() == 1 and start.val_accuracy.iloc[0] == pytest.approx(1 / 7)
    ga = curves[curves.method == "ga"].set_index("step")
    assert ga.val_accuracy[generations] > ga.val_accuracy[0]
    assert ga.train_loss.diff().dropna().le(1e-6).all()  # elitism: the best head is never lost
    assert ga.forward_passes[generations] == population * (generations + 1)
    for method in ("adam", "rmsprop"):
        m = curves[curves.method == method].set_index("step")
        assert m.train_loss[generations] < m.train_loss[0]

    # The batched forward pass used for fitness is the kerasga head's own prediction.
    head = keras.Sequential([keras.Input((5,)), keras.layers.Dense(7, activation="softmax")])
    w = np.random.default_rng(0).normal(size=pygad.kerasga.model_weights_as_vector(head).size)
    x = np.random.default_rng(1).normal(size=(4, 5)).astype(np.float32)
    np.testing.assert_allclose(evolution.head_probs(w, x, 7)[0], pygad.kerasga.predict(head, w, x), rtol=1e-5)

    # Features are computed once: a second comparison on the same backbone never builds it.
    def no_build(*a, **k):
        raise AssertionError("backbone rebuilt although its features are cached")

    monkeypatch.setattr(models, "build_model", no_build)
    again = evolution.run_search("synthetic-small", 4, 2, **head_args)
    assert evolution.search_state(again)["curves"].query("step == 0").val_accuracy.iloc[0] == pytest.approx(1 / 7)
    assert set(evolution.list_searches().search_id) == {sid, again}
