"""RunStore queries: runs found by tags and status (newest first), and one run by id."""
from __future__ import annotations

import time

import pytest
from conftest import tiny_config

from core.store import RunNotFound, RunStore, StoreUnreachable

DATASET = {"name": "synthetic-tiny", "fingerprint": "abc123"}


def _run(store: RunStore, status: str, **tags: str) -> str:
    run_id = store.create_run(tiny_config(), DATASET, extra_tags=tags)
    if status != "RUNNING":
        store.finish(run_id, status)
    # MLflow orders by start time in milliseconds: keep the creation order unambiguous.
    time.sleep(0.01)
    return run_id


@pytest.fixture
def store(fresh_artifacts):
    store = RunStore()
    assert store.uri.startswith(f"sqlite:///{fresh_artifacts}")
    return store


def test_find_runs_matches_all_tags_and_the_status_newest_first(store):
    a = _run(store, "FINISHED", kind="evaluation", search_id="s1")
    b = _run(store, "FINISHED", kind="run", search_id="s1")
    c = _run(store, "FAILED", kind="run", search_id="s1")
    d = _run(store, "FINISHED", kind="run", search_id="s2")

    def ids(**kw):
        return [r.info.run_id for r in store.find_runs(**kw)]

    assert ids() == [d, c, b, a]
    assert ids(status="FINISHED") == [d, b, a]
    assert ids(tags={"search_id": "s1"}) == [c, b, a]
    assert ids(tags={"search_id": "s1", "kind": "run"}) == [c, b]
    assert ids(tags={"search_id": "s1", "kind": "run"}, status="FINISHED") == [b]
    assert ids(tags={"search_id": "s3"}) == []
    # Tags that create_run sets itself, including names with a dot.
    assert ids(tags={"dataset.fingerprint": "abc123", "kind": "evaluation"}) == [a]
    with pytest.raises(ValueError, match="status"):
        store.find_runs(status="DONE")


def test_find_runs_quotes_values_so_they_match_literally(store):
    plain = _run(store, "FINISHED", note="plain")
    apostrophe = _run(store, "FINISHED", note="it's")
    double = _run(store, "FINISHED", note='say "hi"')
    # A value written to escape its quotes must match itself, not widen the filter.
    sneaky = _run(store, "FINISHED", note="x' or tags.note != '")

    def ids(value):
        return [r.info.run_id for r in store.find_runs(tags={"note": value})]

    assert ids("plain") == [plain]
    assert ids("it's") == [apostrophe]
    assert ids('say "hi"') == [double]
    assert ids("x' or tags.note != '") == [sneaky]
    with pytest.raises(ValueError, match="both quote"):
        store.find_runs(tags={"note": "it's \"both\""})
    with pytest.raises(ValueError, match="backticks"):
        store.find_runs(tags={"no`te": "plain"})


def test_get_returns_the_run_or_raises_run_not_found(store):
    run_id = _run(store, "KILLED", kind="run")
    run = store.get(run_id)
    assert run.info.run_id == run_id and run.info.status == "KILLED"
    assert run.data.tags["kind"] == "run" and run.data.tags["dataset.fingerprint"] == "abc123"
    with pytest.raises(RunNotFound, match="no-such-run"):
        store.get("no-such-run")


def test_a_store_that_does_not_answer_is_not_a_missing_run(tmp_path, monkeypatch):
    # Pages tell "no such run" (gone, pick another) apart from "the store is down" (retry later):
    # a server that refuses the connection or a damaged database file must not read as "not found".
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    with pytest.raises(StoreUnreachable, match="127.0.0.1:9") as refused:
        RunStore("http://127.0.0.1:9").get("some-run")  # port 9 (discard): nothing listens on loopback
    assert not isinstance(refused.value, RunNotFound)
    damaged = tmp_path / "mlflow.db"
    damaged.write_bytes(b"not a database" * 100)
    with pytest.raises(StoreUnreachable, match="could not be read"):
        RunStore(f"sqlite:///{damaged}").get("some-run")
    assert damaged.read_bytes() == b"not a database" * 100  # nothing was written over it


def test_a_run_records_its_datasets_skipped_files_and_warnings(store):
    import numpy as np

    from core.data.dataset import SPLITS, Dataset
    from core.train import runs

    x, y = np.zeros((12, 32, 32), np.uint8), np.array([0] * 9 + [1] * 3)
    ds = Dataset("faces", "/data/faces", ("angry", "happy"), {s: (x, y) for s in SPLITS},
                 skipped=[f"train/happy/bad{i}.png" for i in range(7)])
    run_id = runs.open_run(tiny_config(), ds, store=store)
    tags = store.get(run_id).data.tags
    assert tags["dataset.skipped"] == "7"
    # The count is complete; the names are the first few, enough to find the problem.
    assert tags["dataset.skipped_files"] == ", ".join(f"train/happy/bad{i}.png" for i in range(5))
    row = store.list_runs().set_index("run_id").loc[run_id]
    assert "fewer than 10 training images for angry (9), happy (3)" in row.data_warnings
    assert "7 unreadable file(s) skipped" in row.data_warnings


def test_list_runs_reads_every_page_and_keeps_the_newest_when_capped(store, monkeypatch):
    from core.store import tracking

    monkeypatch.setattr(tracking, "SEARCH_PAGE", 2)  # MLflow's page size, shrunk: 5 runs take 3 pages
    ids = [_run(store, "FINISHED") for _ in range(5)]
    assert store.list_runs().run_id.tolist() == ids[::-1], "a big store is not cut at its first page"
    assert store.list_runs(max_results=3).run_id.tolist() == ids[:1:-1]


def test_a_search_pauses_garbage_collection_only_while_it_reads(store, monkeypatch):
    # A big store's read was mostly collector passes over the server's heap; left off, the server's
    # memory would grow for good, so it must come back on after every read, failed ones included.
    import gc

    from core.store import tracking

    _run(store, "FINISHED")
    seen = []
    real = store.client.search_runs

    def spy(*args, **kwargs):
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(store.client, "search_runs", spy)
    assert len(store.search()) == 1 and seen == [False] and gc.isenabled()
    monkeypatch.setattr(store.client, "search_runs", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        store.search()
    assert gc.isenabled()
    with tracking.gc_paused():  # nested (two sessions' threads reading at once): on only after the outer one
        with tracking.gc_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()  # a process that turned it off itself keeps it off
    try:
        with tracking.gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_run_table_follows_the_store_reading_only_what_can_change(store, monkeypatch):
    from core.store import RunTable

    done = [_run(store, "FINISHED") for _ in range(3)]
    table = RunTable(store, min_interval_s=0.0)
    key = table.refresh()
    assert table.table().run_id.tolist() == done[::-1] and all(table.is_finished(r) for r in done)

    queries = []
    search = store.search
    monkeypatch.setattr(store, "search", lambda where="", max_results=None: queries.append(where) or
                        search(where, max_results))
    assert table.refresh() == key and table.table() is table.table(), "nothing changed: same key, same frame"
    assert queries and "" not in queries, "an incremental refresh never reads the whole store"

    running = _run(store, "RUNNING")
    key2 = table.refresh()
    assert key2 != key and table.table().run_id.iloc[0] == running and not table.is_finished(running)
    store.set_tags(running, {"epochs_done": 1})
    key3 = table.refresh()
    assert key3 != key2 and table.table().epochs_done.iloc[0] == 1, "an epoch logged shows at once"
    store.finish(running)
    table.refresh()
    assert table.is_finished(running) and table.table().status.iloc[0] == "FINISHED"

    store.delete(done[0])  # what incremental reads cannot see, the periodic full read does
    table.refresh(force=True)
    assert done[0] not in set(table.table().run_id)


def test_run_table_reads_failed_runs_once_and_sees_one_resumed(store, monkeypatch):
    from core.store import RunTable

    failed, cancelled = _run(store, "FAILED"), _run(store, "KILLED")
    table = RunTable(store, min_interval_s=0.0)
    table.NEW_RUN_MARGIN_S = 0.0
    _run(store, "FINISHED")  # the newest run: the failed ones are not recent
    key = table.refresh()
    read = []
    search = store.search
    monkeypatch.setattr(store, "search", lambda where="", max_results=None: read.extend(
        r.info.run_id for r in search(where, max_results)) or search(where, max_results))
    assert table.refresh() == key
    assert failed not in read and cancelled not in read, "settled runs are not read again at every refresh"
    assert not table.is_finished(failed), "a failed run's data may still grow: it is not cached for good"
    store.reopen(failed)  # the job is retried
    assert table.refresh() != key
    assert table.table().set_index("run_id").status[failed] == "RUNNING" and not table.is_finished(failed)


def test_run_table_asks_the_store_at_most_once_per_interval(store, monkeypatch):
    from core.store import RunTable

    _run(store, "FINISHED")
    table = RunTable(store, min_interval_s=60.0)
    key = table.refresh()
    with monkeypatch.context() as m:
        m.setattr(store, "search", lambda *a, **k: pytest.fail("asked the store within the interval"))
        assert table.refresh() == key
    table.invalidate()  # this process changed the store: the next refresh asks at once
    _run(store, "RUNNING")
    assert table.refresh() != key


def test_run_table_rereads_the_whole_store_in_the_background_periodically(store):
    from core.store import RunTable

    keep, gone = _run(store, "FINISHED"), _run(store, "FINISHED")
    table = RunTable(store, min_interval_s=0.0)
    table.refresh()
    store.delete(gone)
    table.FULL_RELOAD_S = 0.0  # every refresh is due a full read: it runs in a thread, the caller does not wait
    deadline = time.monotonic() + 30
    while gone in set(table.table().run_id) and time.monotonic() < deadline:
        table.refresh()
        time.sleep(0.05)
    assert table.table().run_id.tolist() == [keep]


def test_run_table_sees_an_older_open_run_finish(store):
    from core.store import RunTable

    older = _run(store, "RUNNING")
    newer = _run(store, "RUNNING")
    table = RunTable(store, min_interval_s=0.0)
    table.NEW_RUN_MARGIN_S = 0.0  # only runs from the newest start on count as recent: `older` is not one
    table.refresh()
    store.finish(older)
    table.refresh()
    assert table.is_finished(older) and not table.is_finished(newer)
    assert table.table().set_index("run_id").status.to_dict() == {older: "FINISHED", newer: "RUNNING"}


def test_a_restarted_server_starts_from_the_saved_table_and_catches_up(store, monkeypatch):
    from core.store import RunTable

    kept, deleted = _run(store, "FINISHED"), _run(store, "FINISHED")
    open_then = _run(store, "RUNNING")
    RunTable(store, min_interval_s=0.0, persist=True).refresh()  # the first server reads everything and saves it

    # While no server runs: a run is deleted, the open one finishes, a new one starts.
    store.delete(deleted)
    store.finish(open_then)
    new = _run(store, "RUNNING")

    import threading

    release = threading.Event()
    search = store.search

    def slow_full_read(where="", max_results=None):
        if not where:  # the full read: held until the first page has been served
            assert release.wait(30)
        return search(where, max_results)

    monkeypatch.setattr(store, "search", slow_full_read)
    table = RunTable(store, min_interval_s=0.0, persist=True)
    table.refresh()
    assert not table._reloading, "the first visitors' pages do not share the machine with a full read"
    table = RunTable(store, min_interval_s=0.0, persist=True)
    table.RESTORE_GRACE_S = 0.0
    table.refresh()  # returns while the full read waits: the first page does not wait for every run
    shown = table.table().set_index("run_id").status.to_dict()
    assert shown == {new: "RUNNING", open_then: "FINISHED", deleted: "FINISHED", kept: "FINISHED"}
    # The deletion, which only a full read can see, arrives from the background read after the grace period.
    release.set()
    deadline = time.monotonic() + 30
    while deleted in set(table.table().run_id) and time.monotonic() < deadline:
        table.refresh()
        time.sleep(0.05)
    assert set(table.table().run_id) == {kept, open_then, new}


def test_a_damaged_saved_table_is_ignored_and_the_store_read(store):
    from core.store import RunTable
    from core.store.table import snapshot_path

    run = _run(store, "FINISHED")
    path = snapshot_path(store)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"cut short")
    table = RunTable(store, persist=True)
    table.refresh()
    assert table.table().run_id.tolist() == [run]
    assert RunTable(store, persist=True).refresh() and path.read_bytes() != b"cut short", "saved afresh"
