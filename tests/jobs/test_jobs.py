"""core.jobs with real processes: concurrent submits, crash and resume, cancel, failures.

Trainings use VGG16 on the tiny synthetic set (6 batches an epoch): the suite runs two
of them to the end (one killed and resumed) and two only until they are cancelled.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import ROOT, tiny_config

from core import jobs
from core.configs import ConfigError


def _wait(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    table = jobs.list_jobs()[["id", "state", "progress", "attempts", "note", "error"]]
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{table.to_string()}")


class Workers:
    """`python -m core worker` processes started by a test, killed (by pid) if still alive at its end."""

    def __init__(self, folder: Path):
        self.folder, self.procs = folder, []

    def start(self, *args: str) -> subprocess.Popen:
        out = open(self.folder / f"worker-{len(self.procs)}.out", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "core", "worker", *args], cwd=ROOT, env=dict(os.environ),
                                stdout=out, stderr=subprocess.STDOUT)
        out.close()
        self.procs.append(proc)
        return proc

    def output(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.folder.glob("worker-*.out")))

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def workers(tmp_path):
    w = Workers(tmp_path)
    yield w
    w.close()


def _kill_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------- no processes


def test_submit_validates_reads_and_cancels_without_tensorflow(fresh_artifacts):
    code = textwrap.dedent("""
        import json, sys
        from conftest import tiny_config
        from core import jobs
        job_id = jobs.submit_train(tiny_config("vgg16"))
        table = jobs.list_jobs()
        print(json.dumps({"id": job_id, "rows": len(table), "worker": jobs.worker_status()["alive"],
                          "heavy": sorted(m for m in ("tensorflow", "keras", "mlflow") if m in sys.modules)}))
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": "tests"}, capture_output=True,
                         text=True, timeout=60, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"id": 1, "rows": 1, "worker": False, "heavy": []}, "the dashboard's job API must not load TF"

    with pytest.raises(jobs.JobError, match=r"Unknown job kind 'paint'.*evaluate.*train"):
        jobs.submit("paint", {})
    with pytest.raises(ConfigError, match="alexnet"):
        jobs.submit("train", {"config": {"model": {"arch": "alexnet"}}})
    with pytest.raises(jobs.JobError, match="dataset"):
        jobs.submit("evaluate", {"run_id": "abc"})

    cfg = tiny_config("vgg16")
    first = jobs.submit_train(cfg, key="tab-1")
    assert jobs.submit_train(cfg, key="tab-1") == first, "a double-click must not queue a second job"
    assert jobs.submit_train(cfg, key="tab-2") != first
    grid = jobs.submit_grid([tiny_config("vgg16", c) for c in ("scratch-adam", "scratch-rmsprop")], group="g1")
    table = jobs.list_jobs()
    assert table.columns.tolist() == jobs.JOB_COLUMNS
    assert table.id.tolist() == [*reversed(grid), first + 1, first, 1]
    assert set(table[table.group == "g1"].label) == {"vgg16/scratch-adam on synthetic-tiny",
                                                      "vgg16/scratch-rmsprop on synthetic-tiny"}
    assert jobs.get_job(grid[0])["payload"]["config"]["group"] == "g1"
    assert (table.state == "queued").all()

    assert jobs.cancel(first) == "cancelled"
    job = jobs.get_job(first)
    assert job["state"] == "cancelled" and job["note"] == "cancelled before it started"
    with pytest.raises(jobs.JobNotFound):
        jobs.get_job(999)
    for job_id in jobs.list_jobs().id:
        jobs.cancel(int(job_id))
    assert jobs.ensure_worker() is None, "no worker is started when nothing waits"


def _submit_together(n: int, body: str, env: dict, folder: Path) -> list[str]:
    """Start ``n`` processes that import core.jobs, release them at one instant, return each one's
    last line of output. ``body`` runs after the release with ``jobs`` and a tiny ``cfg`` at hand."""
    go = folder / "go"
    code = textwrap.dedent(f"""
        import json, os, sys, time
        from conftest import tiny_config
        from core import jobs
        cfg = tiny_config("vgg16")
        while not os.path.exists({str(go)!r}):
            time.sleep(0.001)
    """) + textwrap.dedent(body)
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**env, "PYTHONPATH": "tests"}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]
    time.sleep(2.0)  # all have imported core.jobs and are polling for the go file
    go.touch()
    lines = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        lines.append(out.strip().splitlines()[-1])
    return lines


def test_a_bad_job_priority_setting_stops_the_worker_before_it_claims_a_job(fresh_artifacts, monkeypatch):
    job_id = jobs.submit_train(tiny_config("vgg16"))
    monkeypatch.setenv("EMOTION_LAB_JOB_NICE", "low")
    said = []
    assert jobs.run_worker(max_jobs=1, echo=said.append) == 2
    assert said == ["error: EMOTION_LAB_JOB_NICE='low': expected a whole number from 0 to 19"]
    assert jobs.get_job(job_id)["state"] == "queued"


def test_job_list_reads_a_starting_job_beside_one_with_progress(fresh_artifacts):
    """The quick comparison's second run starting while the first reports epochs: no NaN anywhere."""
    from core.jobs import queue
    from core.jobs.context import JobContext

    first, second = jobs.submit_grid([tiny_config("vgg16", c) for c in ("scratch-adam", "scratch-rmsprop")], "g")
    wid = queue.register_worker(slots=2, stale_after_s=30)
    (claimed, _), (starting, _) = queue.claim(wid, 30), queue.claim(wid, 30)
    assert (claimed["id"], starting["id"]) == (first, second)
    JobContext(first, claimed["attempts"]).progress(epoch=1, epochs=3, batch=4, batches=8, eta_s=12.0, force=True)

    table = jobs.list_jobs().set_index("id")
    busy, fresh = table.loc[first, "progress"], table.loc[second, "progress"]
    assert busy.describe() == "epoch 2/3, batch 4/8, about 12 s left"
    assert busy.fraction == pytest.approx((1 + 4 / 8) / 3)
    assert fresh.describe() == "starting" and fresh.fraction == 0.0 and not fresh.started
    with pytest.raises(TypeError, match="generation"):  # a train job counts epochs, not generations
        JobContext(first, claimed["attempts"]).progress(generation=1)


def test_concurrent_submits_create_each_job_exactly_once(fresh_artifacts, tmp_path):
    """Two processes submit at the same instant into a queue that does not exist yet."""
    body = """
        own = [jobs.submit_train(cfg) for _ in range(15)]
        shared = [jobs.submit_train(cfg, key=f"click-{i}") for i in range(5)]
        print(json.dumps({"own": own, "shared": shared}))
    """
    a, b = map(json.loads, _submit_together(2, body, dict(os.environ), tmp_path))
    assert a["shared"] == b["shared"], "the same key from two processes must give the same job"
    ids = a["own"] + b["own"] + a["shared"]
    assert len(set(ids)) == 35
    table = jobs.list_jobs()
    assert sorted(table.id) == sorted(ids) and (table.state == "queued").all()


@pytest.mark.slow
def test_processes_meeting_at_a_new_queue_all_get_in(tmp_path):
    """Six processes open a queue file that does not exist yet at the same instant, three times over.

    Switching a fresh SQLite file to WAL can fail with "database is locked" without waiting;
    a user's first two clicks (or a worker and the dashboard) must never see that.
    """
    for round_ in range(3):
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        env = dict(os.environ, EMOTION_LAB_JOBS_DB=str(folder / "jobs.db"))
        lines = _submit_together(6, "print(len({jobs.submit_train(cfg) for _ in range(3)}))", env, folder)
        assert lines == ["3"] * 6


def test_process_tokens_tell_the_same_process_from_a_reused_pid_or_another_boot():
    """A token is pid + start time: a clock adjustment keeps it valid; another start or boot does not."""
    from core.jobs.queue import process

    me = os.getpid()
    token = process.proc_token(me)
    assert process.is_alive(me, token) and not process.is_alive(me, None)
    _, created, since_boot = token.split(":")
    boot = float(created) - float(since_boot)
    assert not process.is_alive(me, f"{me}:{created}:{float(since_boot) - 0.01:.2f}"), "another process, same pid"
    assert not process.is_alive(me, f"{me}:{boot - 60:.2f}:{since_boot}"), "a process of an earlier boot"
    for step in (-3600, 1):  # the wall clock was set back an hour, or forward a second, since the token
        assert process.is_alive(me, f"{me}:{float(created) - step:.2f}:{since_boot}")

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    child_token = process.proc_token(child.pid)
    assert process.is_alive(child.pid, child_token) and not process.is_alive(child.pid, token)
    child.kill()
    _wait(lambda: process.proc_token(child.pid) is None, 10, "the killed child to count as gone (a zombie)")
    child.wait()
    assert not process.is_alive(child.pid, child_token)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="tokens of earlier versions came from /proc")
def test_process_tokens_written_by_earlier_versions_still_match():
    """Rows written before psutil: ``boot-id:start-ticks`` (Linux) or ``pid:N``."""
    from core.jobs.queue import process

    me = os.getpid()
    stat = Path(f"/proc/{me}/stat").read_text()
    ticks = int(stat[stat.rindex(")") + 2:].split()[19])
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert process.is_alive(me, f"{boot_id}:{ticks}") and not process.is_alive(me, f"{boot_id}:{ticks + 1}")
    assert process.is_alive(me, f"pid:{me}") and not process.is_alive(me, "pid:1")


# ---------------------------------------------------------------- crash and resume


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """Train 3 epochs; SIGKILL the worker mid-epoch; a worker started by ensure_worker finishes the run."""
    folder = tmp_path_factory.mktemp("resume")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMOTION_LAB_ARTIFACTS", str(folder / "artifacts"))
        w = Workers(folder)
        try:
            return _kill_and_resume(w) | {"folder": folder / "artifacts", "worker_log": w.output()}
        finally:
            w.close()
            for live in jobs.worker_status()["workers"]:  # the detached replacement, if a check failed
                _kill_pid(live["pid"])


def _kill_and_resume(w: Workers) -> dict:
    from core.store import RunStore

    job_id = jobs.submit_train(tiny_config("vgg16", epochs=3))
    first = w.start()

    def mid_epoch():  # epoch counts finished epochs: 1 or 2 done, and some batches into the next
        j = jobs.get_job(job_id)
        p = j["progress"]
        return j if j["state"] == "running" and p.done in (1, 2) and p.part_done >= 1 else None

    before = _wait(mid_epoch, 240, "the job to be part-way through epoch 2", interval=0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    # The job process gets SIGKILL as its worker dies (PR_SET_PDEATHSIG), but a process holding TensorFlow takes
    # a moment to exit; until it has, someone does run the job. A busy 2-core CI machine showed that moment.
    after_kill = _wait(lambda: (j := jobs.get_job(job_id))["state"] != "running" and j, 30,
                       "the job to read as no longer running")
    status_after_kill = jobs.worker_status()

    replacement = jobs.ensure_worker(idle_exit_s=1)
    second_call = jobs.ensure_worker(idle_exit_s=1)
    final = _wait(lambda: (j := jobs.get_job(job_id))["state"] in ("done", "failed", "cancelled") and j, 240, "the resumed job")
    _wait(lambda: not jobs.worker_status()["alive"], 30, "the idle worker to exit")
    store = RunStore()
    return dict(before=before, after_kill=after_kill, status_after_kill=status_after_kill, final=final,
                replacement=replacement, second_call=second_call, runs=store.list_runs(),
                history=store.history(final["run_id"]),
                raw={m: [x.step for x in store.client.get_metric_history(final["run_id"], m)]
                     for m in ("loss", "val_accuracy", "epoch_time")})


@pytest.mark.slow
def test_worker_killed_mid_epoch_is_replaced_and_run_has_each_epoch_once(resumed):
    before, after_kill, final = resumed["before"], resumed["after_kill"], resumed["final"]
    assert before["progress"].total == 3 and before["progress"].part_total == 6 and before["run_id"]
    assert "loss" in before["metrics"] and before["eta_s"] > 0, "progress carries metrics and an ETA"
    # Nobody runs it any more: it reads as interrupted, with when its worker was last seen, not running with an ETA.
    assert after_kill["state"] == "interrupted" and not resumed["status_after_kill"]["alive"]
    assert "last seen" in after_kill["note"] and after_kill["progress"].eta_s is None

    assert resumed["replacement"] and resumed["second_call"] is None, "one worker, however often it is asked"
    assert (resumed["folder"] / "logs" / f"worker-{resumed['replacement']}.log").is_file()

    assert final["state"] == "done", final
    assert final["attempts"] == 2 and "resumed" in final["note"]
    assert final["run_id"] == before["run_id"], "the resumed attempt continues the same run"
    assert final["result"]["epochs_done"] == 3 and final["progress"].done == 3
    assert resumed["history"].epoch.tolist() == [1, 2, 3]
    for metric, steps in resumed["raw"].items():
        assert steps == [1, 2, 3], f"{metric} logged {steps}"
    runs = resumed["runs"]
    assert len(runs) == 1 and runs.status.iloc[0] == "FINISHED", "no second run, nothing left RUNNING"
    log = Path(final["log_path"]).read_text()
    assert "attempt 1" in log and "attempt 2" in log and "resuming run" in log
    # The replacement's first line names the logged epoch it continues from, with that epoch's logged loss.
    console = (resumed["folder"] / "logs" / f"worker-{resumed['replacement']}.log").read_text()
    first = next(line for line in console.splitlines() if f"job {final['id']}: " in line and "epoch" in line)
    done = before["progress"].done
    logged = resumed["history"].set_index("epoch").loc[done, "loss"]
    assert f"resumed after epoch {done}/3 (logged epoch {done}: loss={logged:.4f}" in first, console


@pytest.mark.slow
def test_two_workers_run_each_job_once(resumed, monkeypatch, tmp_path, workers):
    """Two tabs submit at once (one shared click, one extra job); two workers race for the jobs."""
    monkeypatch.setenv("EMOTION_LAB_ARTIFACTS", str(resumed["folder"]))
    run_id = resumed["final"]["run_id"]
    go = tmp_path / "go"
    code = textwrap.dedent(f"""
        import json, os, sys, time
        from core import jobs
        while not os.path.exists({str(go)!r}):
            time.sleep(0.005)
        ids = [jobs.submit_evaluate({run_id!r}, "synthetic-tiny", key="same-click")]
        if sys.argv[1] == "tab-0":
            ids.append(jobs.submit_evaluate({run_id!r}, "synthetic-tiny", key="tab-0"))
        print(json.dumps(ids))
    """)
    tabs = [subprocess.Popen([sys.executable, "-c", code, f"tab-{i}"], cwd=ROOT, env=dict(os.environ),
                             stdout=subprocess.PIPE, text=True) for i in range(2)]
    time.sleep(1.0)
    go.touch()
    (shared, own), (shared_too,) = [json.loads(t.communicate(timeout=60)[0]) for t in tabs]
    assert shared == shared_too and own != shared

    pair = [workers.start("--slots", "2", "--exit-when-idle", "2") for _ in range(2)]
    _wait(lambda: len(jobs.worker_status()["workers"]) == 2, 30, "two workers")
    third = workers.start("--exit-when-idle", "30")  # default: one worker per machine
    assert third.wait(timeout=30) == 0 and "already running" in workers.output()
    for w in pair:
        assert w.wait(timeout=300) == 0, workers.output()

    from core.store import RunStore

    done = [jobs.get_job(i) for i in (shared, own)]
    assert [j["state"] for j in done] == ["done"] * 2, done
    assert all(j["attempts"] == 1 for j in done), "no job was claimed twice"
    store = RunStore()
    evaluations = [r for r in store.client.search_runs([store.experiment_id])
                   if r.data.tags.get("evaluated_from") == run_id]
    assert sorted(r.data.tags["job_id"] for r in evaluations) == sorted(str(j["id"]) for j in done), \
        "exactly one evaluation run per job"
    assert {j["result"]["run_id"] for j in done} == {r.info.run_id for r in evaluations}


# ---------------------------------------------------------------- failures and cancel


@pytest.mark.slow
def test_failed_job_then_cancel_cooperative_and_forced(fresh_artifacts, workers):
    failing = jobs.submit_train(tiny_config("vgg16", "imagenet-adam"))  # no ImageNet weights on this machine
    slow = jobs.submit_train(tiny_config("vgg16", epochs=50))
    stuck = jobs.submit_train(tiny_config("vgg16", epochs=50))
    worker = workers.start("--exit-when-idle", "2")

    running = _wait(lambda: (j := jobs.get_job(slow))["state"] == "running" and j["progress"].part_done >= 2 and j,
                    240, "the second job to train")
    failed = jobs.get_job(failing)
    assert failed["state"] == "failed" and failed["attempts"] == 1
    assert "ImageNet weights for vgg16 are not cached" in failed["error"] and "fetch-weights" in failed["error"]
    assert "WeightsMissingError" in failed["log_tail"], "the traceback is in the log tail"
    assert running["progress"].total == 50 and running["progress"].part_total == 6
    assert running["heartbeat_age_s"] < 5
    assert running["progress"].describe().startswith("epoch 1/50, batch ")
    # Training yields the CPU to the pages and commands people wait on.
    assert os.getpriority(os.PRIO_PROCESS, running["pid"]) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)

    assert jobs.cancel(slow) == "running"
    cancelled = _wait(lambda: (j := jobs.get_job(slow))["state"] != "running" and j, 30, "the cancel")
    assert cancelled["state"] == "cancelled", cancelled
    late = int(cancelled["note"].split("stopped ")[1].split(" batch")[0])
    assert late <= 2, f"cancel took effect {late} batches late: {cancelled['note']}"

    # The next job is cancelled while its process is still starting (no batch to stop at):
    # with no grace period the worker kills it.
    _wait(lambda: (j := jobs.get_job(stuck))["state"] == "running" and j["pid"], 60, "the third job to start")
    jobs.cancel(stuck, grace_s=0)
    forced = _wait(lambda: (j := jobs.get_job(stuck))["state"] != "running" and j, 30, "the forced cancel")
    assert forced["state"] == "cancelled" and "forcefully" in forced["note"], forced
    assert worker.wait(timeout=60) == 0, workers.output()

    from core.store import RunStore

    runs = RunStore().list_runs().set_index("run_id")
    assert runs.loc[cancelled["run_id"], "status"] == "KILLED"


def test_job_whose_process_dies_three_times_stays_failed(fresh_artifacts, workers):
    job_id = jobs.submit_train(tiny_config("vgg16"))
    worker = workers.start("--exit-when-idle", "1")
    for attempt in (1, 2, 3):
        j = _wait(lambda n=attempt: (j := jobs.get_job(job_id))["attempts"] == n and j["pid"] and j, 60,
                  f"attempt {attempt}")
        _kill_pid(j["pid"])
    failed = _wait(lambda: (j := jobs.get_job(job_id))["state"] == "failed" and j, 30, "the job to give up")
    assert "Gave up after 3 attempts" in failed["error"] and "SIGKILL" in failed["error"]
    assert failed["log_tail"].count("attempt") >= 3
    assert worker.wait(timeout=30) == 0
    assert "job 1: failed" in workers.output()
