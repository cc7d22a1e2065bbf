"""The result store: atomic rows, first result wins, evaluation log, concurrent writers, export."""

import csv
import json
import multiprocessing as mp
import sqlite3

import pytest

from quantscope.store import Store, content_key


def _record(i: int) -> dict:
    return {"accuracy": i / 100, "costs": {"traffic": 0.5}, "plan": {"default": {"weights": f"fixed<{i},2>"}}}


def test_content_key_is_order_independent_for_dicts_and_sensitive_to_values():
    assert content_key({"a": 1, "b": [1, 2]}) == content_key({"b": [1, 2], "a": 1})
    assert content_key({"a": 1}) != content_key({"a": 2})
    assert content_key("x", 1) != content_key("x", "1")


def test_put_get_first_result_wins_and_logs_every_evaluation(tmp_path):
    with Store(tmp_path / "r.sqlite") as s:
        assert s.put("k1", _record(1), seconds=0.5, worker="w1") is True
        assert s.put("k1", _record(2), seconds=0.7) is False
        assert s.get("k1") == _record(1)
        assert s.get("missing") is None
        assert len(s) == 1
        assert s.evaluation_counts() == {"k1": 2}
        assert s.get_many(["k1", "nope", "k1"]) == {"k1": _record(1)}


def test_wal_mode_and_reopen(tmp_path):
    path = tmp_path / "r.sqlite"
    with Store(path) as s:
        s.put("a", _record(3))
    with Store(path) as s:
        assert s.get("a") == _record(3)
        assert s._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # concurrent readers while it runs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.sqlite"], "a closed store is one file"
    with Store(path, read_only=True) as s:
        assert s.get("a") == _record(3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.sqlite"], "a read-only open wrote files"


def test_finish_run_replaces_members_and_summary_atomically(tmp_path):
    with Store(tmp_path / "r.sqlite") as s:
        for k in "abc":
            s.put(k, _record(ord(k)))
        s.finish_run("st", "r1", "sweep", {"n": 2}, ["a", "b"], [{"label": "A"}, {"label": "B"}])
        s.finish_run("st", "r1", "sweep", {"n": 3}, ["c", "a", "a"], [{"i": 0}, {"i": 1}, {"i": 2}])
        rows = s.members("st", "r1")
        assert [(r["key"], r["labels"]) for r in rows] == [("c", {"i": 0}), ("a", {"i": 1}), ("a", {"i": 2})]
        assert rows[0]["accuracy"] == _record(ord("c"))["accuracy"]
        assert s.run_summary("st", "r1") == {"n": 3}
        assert s.run_summary("st", "other") is None
        assert s.runs("st") == [("r1", "sweep", {"n": 3})]
        with pytest.raises(ValueError, match="2 keys but 1 label"):
            s.finish_run("st", "r2", "sweep", {}, ["a", "b"], [{}])
        assert s.run_summary("st", "r2") is None


def _writer(path, worker, n):
    with Store(path) as s:
        for i in range(n):
            # half the keys are shared by all writers, half are the writer's own
            key = f"shared{i}" if i % 2 == 0 else f"w{worker}-{i}"
            s.put(key, {"worker": worker, "i": i}, worker=f"w{worker}")


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "r.sqlite"
    Store(path).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 60)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with Store(path) as s:
        assert len(s) == 30 + 4 * 30  # 30 shared keys once each, 30 own keys per writer
        counts = s.evaluation_counts()
        assert sum(counts.values()) == 4 * 60
        assert all(counts[f"shared{i}"] == 4 for i in range(0, 60, 2))


def test_an_open_retries_a_journal_switch_that_sqlite_refuses_at_once(tmp_path, monkeypatch):
    """Two processes opening a store at the same instant both hold a read lock and want the
    exclusive one for the switch to WAL; SQLite answers one of them "database is locked" at once,
    without its busy handler (seen in CI; 5 of 840 spawned opens here): the open retries."""
    import quantscope.store as store

    path = tmp_path / "r.sqlite"
    Store(path).close()
    refusals = []

    class Refusing:
        def __init__(self, db):
            self._db = db

        def execute(self, sql, *args):
            if sql == "PRAGMA journal_mode=WAL" and len(refusals) < 3:
                refusals.append(sql)
                raise sqlite3.OperationalError("database is locked")
            return self._db.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self._db, name)

    connect = sqlite3.connect
    monkeypatch.setattr(store.sqlite3, "connect", lambda *a, **k: Refusing(connect(*a, **k)))
    with Store(path) as s:
        s.put("a", _record(1))
    assert len(refusals) == 3
    monkeypatch.undo()
    with Store(path, read_only=True) as s:
        assert s.get("a") == _record(1)


def test_export_csv_and_json(tmp_path):
    with Store(tmp_path / "r.sqlite") as s:
        s.put("a", {"accuracy": 0.9, "costs": {"traffic": 0.25}, "plan": {"default": {"weights": "fixed<8,4>"}}})
        s.put("b", {"accuracy": 0.8, "costs": {"traffic": 0.125}, "plan": {"default": {"weights": "fixed<4,2>"}}})
        s.finish_run("st", "r", "sweep", {}, ["b"], [{"label": "four"}])
        rows = json.loads(s.export(tmp_path / "all.json").read_text())
        assert {r["key"] for r in rows} == {"a", "b"}
        with open(s.export(tmp_path / "st.csv", "st")) as f:
            table = list(csv.DictReader(f))
        assert len(table) == 1
        assert table[0]["costs.traffic"] == "0.125" and table[0]["labels.label"] == "four"
        assert json.loads(table[0]["plan"]) == {"default": {"weights": "fixed<4,2>"}}
        with pytest.raises(ValueError, match="must end in .csv or .json"):
            s.export(tmp_path / "x.parquet")
        assert not list(tmp_path.glob("*.tmp"))


def test_read_only_open_refuses_an_empty_file_and_writes_nothing(tmp_path):
    path = tmp_path / "results.sqlite"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"results.sqlite is not a quantscope result store \(tables: none\)"):
        Store(path, read_only=True)
    assert path.read_bytes() == b"" and sorted(p.name for p in tmp_path.iterdir()) == ["results.sqlite"]
