"""Scale-out on loopback: a 2-CPU local Ray instance and a real `mlflow server` process.

One module-wide Ray instance (started once: it takes several seconds) and one tracking
server serve every test: the queue's worker runs a tiny grid on Ray into the server, the
dashboard's services read the runs back from it, and a tiny GA generation trains on Ray
through ``core.cluster.evaluate_configs``.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, tiny_config

from core.configs import ConfigError

pytestmark = pytest.mark.timeout(600)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """`mlflow server` with a SQLite database backend and a served artifact folder, on 127.0.0.1."""
    base = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    log = open(base / "server.log", "wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri", f"sqlite:///{base}/mlflow.db",
         "--artifacts-destination", str(base / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    # Started first and waited for last: it boots while the Ray instance starts.
    yield {"url": url, "proc": proc, "log": base / "server.log", "artifacts": base / "artifacts"}
    os.killpg(proc.pid, 15)
    proc.wait(timeout=30)
    log.close()


def _wait_healthy(server: dict, timeout: float = 180.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server["proc"].poll() is None, server["log"].read_text()[-3000:]
        try:
            with urllib.request.urlopen(server["url"] + "/health", timeout=2) as r:
                if r.status == 200:
                    return server["url"]
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"mlflow server not healthy after {timeout} s:\n{server['log'].read_text()[-3000:]}")


@pytest.fixture(scope="module")
def ray_cluster(mlflow_server):
    """A local Ray instance with 2 CPUs, reachable on 127.0.0.1 only."""
    with pytest.MonkeyPatch.context() as mp:
        # On Linux Ray binds to the machine's outward address unless told it is not a cluster
        # node; it reads this when it is first imported.
        mp.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        import ray

        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 2**20, log_to_driver=False)
        try:
            address = ray.get_runtime_context().gcs_address
            assert address.startswith("127.0.0.1:"), address
            yield address
        finally:
            ray.shutdown()


@pytest.fixture
def shared_store(mlflow_server, ray_cluster, fresh_artifacts, monkeypatch):
    """Workers and the dashboard pointed at the tracking server; the queue in the test's own folder."""
    url = _wait_healthy(mlflow_server)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    return url


def _overlap(a: pd.Series, b: pd.Series) -> bool:
    return a.start_time < b.end_time and b.start_time < a.end_time


@pytest.mark.slow
def test_ray_worker_runs_a_grid_in_parallel_into_the_tracking_server_and_the_dashboard_reads_it(
        shared_store, ray_cluster, mlflow_server, fresh_artifacts):
    import streamlit as st

    from core import jobs
    from core.store import RunStore

    group = "ray-grid"
    ids = jobs.submit_grid([tiny_config("vgg16", "scratch-adam"), tiny_config("vgg16", "scratch-rmsprop")], group)
    # The worker joins the running cluster by address, as on a real one; MirroredStrategy
    # with the one CPU device still goes through the strategy's scope.
    worker = subprocess.Popen([sys.executable, "-m", "core", "worker", "--ray", ray_cluster, "--max-jobs", "2",
                               "--distribute", "mirrored"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    live = set()  # progress seen in the queue while the tasks ran (relayed from their nodes)
    while worker.poll() is None:
        for jid in ids:
            job = jobs.get_job(jid)
            if job["state"] == "running" and job["run_id"] and job["batches"]:
                live.add(jid)
        time.sleep(0.3)
    out = worker.stdout.read()
    assert worker.returncode == 0, out

    finals = [jobs.get_job(jid) for jid in ids]
    assert [j["state"] for j in finals] == ["done", "done"], out
    assert live == set(ids), out
    assert [(j["epoch"], j["epochs"]) for j in finals] == [(1, 1), (1, 1)]
    run_ids = [j["run_id"] for j in finals]
    assert all(j["result"]["run_id"] == rid for j, rid in zip(finals, run_ids))

    runs = RunStore(shared_store).list_runs()
    mine = runs[runs.group == group].set_index("run_id")
    assert sorted(mine.index) == sorted(run_ids)  # every run once, nothing else
    assert (mine.status == "FINISHED").all()
    assert _overlap(mine.loc[run_ids[0]], mine.loc[run_ids[1]]), mine[["start_time", "end_time"]]
    tags = RunStore(shared_store).client.get_run(run_ids[0]).data.tags
    assert (tags["distribute"], tags["replicas"]) == ("mirrored", "1")

    # The dashboard, unchanged, against the same server (as on a laptop pointed at it).
    from dashboard import services

    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        table = services.runs()
        assert set(run_ids) <= set(table.run_id)
        for rid in run_ids:
            hist = services.history(rid)
            assert list(hist.epoch) == [1] and 0.0 <= hist.val_accuracy.iloc[0] <= 1.0
            report = services.report(rid)
            assert report["accuracy"] == pytest.approx(mine.loc[rid].test_accuracy)
            assert len(report["confusion_matrix"]) == len(report["class_names"]) == 7
        # The model file comes over HTTP into the local cache and loads.
        model = services.store().load_model(run_ids[0])
        assert model.output_shape == (None, 7)
        assert str(services.store().model_path(run_ids[0])).startswith(str(fresh_artifacts / "cache"))
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()
    # The artifacts live where the server keeps them, not in the worker's folder.
    assert list(Path(mlflow_server["artifacts"]).rglob("model.keras"))
    assert not (fresh_artifacts / "mlruns").exists()


@pytest.mark.slow
def test_a_ga_generation_trains_its_individuals_in_parallel_on_ray(shared_store, ray_cluster):
    from core import cluster
    from core.data import datasets
    from core.data.dataset import Dataset
    from core.store import RunStore

    base = tiny_config("vgg16", "scratch-adam")
    configs = [replace(base, variant=f"ga-test-g0s{i}", group="ga-test",
                       optimizer=replace(base.optimizer, learning_rate=lr)) for i, lr in enumerate((1e-3, 3e-4))]
    ds = datasets.load_for_run(base.data)
    # As the GA does: score on the validation split, handed to train() as its "test" split.
    search_ds = Dataset(ds.name, ds.source, ds.class_names,
                        {"train": ds.splits["train"], "val": ds.splits["val"], "test": ds.splits["val"]})
    finished = []
    results = cluster.evaluate_configs(configs, dataset=search_ds, tags=[{"generation": 0, "slot": i} for i in (0, 1)],
                                       on_result=lambda i, ev: finished.append(i))
    assert sorted(finished) == [0, 1]
    assert [r.status for r in results] == ["FINISHED", "FINISHED"], [r.error for r in results]

    store = RunStore(shared_store)
    runs = store.list_runs()
    mine = runs[runs.group == "ga-test"].set_index("run_id")
    assert sorted(mine.index) == sorted(r.run_id for r in results)
    for i, r in enumerate(results):
        hist = store.history(r.run_id)
        assert r.fitness == pytest.approx(hist.val_accuracy.iloc[-1])
        assert r.test_accuracy == pytest.approx(r.fitness, abs=1e-6)  # scored on the same split
        assert mine.loc[r.run_id].variant == f"ga-test-g0s{i}"
        assert store.client.get_run(r.run_id).data.tags["slot"] == str(i)
    assert _overlap(mine.loc[results[0].run_id], mine.loc[results[1].run_id])


@pytest.mark.slow
def test_a_search_under_ray_trains_each_generation_in_parallel(shared_store, ray_cluster, monkeypatch):
    from core import cluster, evolution
    from core.store import RunStore

    monkeypatch.setenv(cluster.ADDRESS_ENV, ray_cluster)  # as inside a job run by `worker --ray`
    # Cheap genes pinned (as in test_page_evolve); seed 42 draws two distinct genomes in generation 0.
    fixed = {"arch": "vgg16", "weights": "none", "input_size": 32, "frozen_blocks": 0, "dense_units": 0,
             "augment_strength": 0.5, "batch_size": 16, "dropout": 0.2, "label_smoothing": 0.0}
    sid = evolution.run_search("synthetic-tiny", population=2, generations=1, strategy="random", seed=42,
                               budget=evolution.Budget(epochs=1, max_train=14, max_eval=14), fixed=fixed,
                               retrain_best=False)
    state = evolution.search_state(sid)
    assert state["status"] == "finished", state["error"]
    evals = state["evaluations"]
    genomes = {tuple(row[state["genes"]]) for _, row in state["population"].iterrows()}
    assert len(evals) == len(genomes) == state["cost"]["evaluations"] == state["generations"].evaluations.sum()
    assert (evals.status == "FINISHED").all() and (evals.seconds > 0).all()
    assert set(state["population"].run_id) == set(evals.run_id)

    store = RunStore(shared_store)
    runs = store.list_runs()
    mine = runs[runs.group == sid].set_index("run_id")
    assert sorted(mine.index) == sorted(evals.run_id)  # every genome's run once, nothing else
    assert (mine.status == "FINISHED").all()
    for _, e in evals.iterrows():
        assert float(store.client.get_run(e.run_id).data.tags["fitness"]) == pytest.approx(e.fitness)
    first = evals[evals.generation == 0].run_id.tolist()
    assert len(first) == 2 and _overlap(mine.loc[first[0]], mine.loc[first[1]]), mine[["start_time", "end_time"]]


@pytest.mark.slow
def test_cluster_options_are_checked_before_anything_runs(monkeypatch):
    from core import cluster
    from core.jobs import ray_worker
    from core.train import device

    with pytest.raises(ConfigError, match="Received: gpus_per_task=1.5"):
        cluster.check_fraction("gpus_per_task", 1.5)
    cluster.check_fraction("gpus_per_task", 0.25)
    cluster.check_fraction("gpus_per_task", 2)
    monkeypatch.setenv(device.DISTRIBUTE_ENV, "horovod")
    with pytest.raises(ConfigError, match="horovod"):
        device.distribute_mode()
    with pytest.raises(ConfigError, match="ray start"):
        ray_worker.run_ray_worker("ray://head:10001")
