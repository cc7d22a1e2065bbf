"""The result store: SQLite (WAL), one row per evaluated point, safe for concurrent writers.

A point's key is a content hash of everything its result depends on (the evaluator's fingerprint:
model weights, evaluation data, settings, code version; and the plan), so the same point is never
evaluated twice, whichever study or run asks for it. A finished run keeps a summary (`runs`) and
the points it used, with labels (`members`, written in the same transaction), and every evaluation that reached the store is logged
(`evaluations`: a second row for a key would mean a point was computed twice). Each write is one
transaction: a killed process leaves whole rows or none.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .files import write_atomic

__all__ = ["Store", "content_key"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    key TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS evaluations (
    key TEXT NOT NULL,
    seconds REAL NOT NULL,
    worker TEXT NOT NULL,
    finished REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    study TEXT NOT NULL,
    run TEXT NOT NULL,
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    labels TEXT NOT NULL,
    PRIMARY KEY (study, run, seq)
);
CREATE TABLE IF NOT EXISTS runs (
    study TEXT NOT NULL,
    run TEXT NOT NULL,
    kind TEXT NOT NULL,
    summary TEXT NOT NULL,
    PRIMARY KEY (study, run)
);
CREATE TABLE IF NOT EXISTS artifacts (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def content_key(*parts: Any) -> str:
    """A stable hex digest of JSON-serializable parts (dict keys sorted)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class Store:
    """A SQLite result store at `path` (created with its folder if missing)."""

    def __init__(self, path: str | Path, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @contextmanager
    def _transaction(self):
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ------------------------------------------------------------------------------- points
    def put(self, key: str, record: dict[str, Any], seconds: float = 0.0, worker: str | None = None) -> bool:
        """Store a point and log its evaluation in one transaction; False if the key was
        already there (the first result is kept)."""
        now = time.time()
        with self._transaction() as db:
            cur = db.execute("INSERT OR IGNORE INTO points VALUES (?, ?, ?)", (key, json.dumps(record, sort_keys=True), now))
            db.execute("INSERT INTO evaluations VALUES (?, ?, ?, ?)", (key, float(seconds), worker or f"pid{os.getpid()}", now))
            return cur.rowcount == 1

    def get(self, key: str) -> dict[str, Any] | None:
        """A stored point's record, or None."""
        row = self._db.execute("SELECT record FROM points WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored records among `keys`, by key."""
        out: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), 500):
            chunk = unique[i : i + 500]
            rows = self._db.execute(f"SELECT key, record FROM points WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            out.update((k, json.loads(r)) for k, r in rows)
        return out

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM points").fetchone()[0]

    def evaluation_counts(self) -> dict[str, int]:
        """How many times each stored key was evaluated (1 everywhere unless work was repeated)."""
        return dict(self._db.execute("SELECT key, COUNT(*) FROM evaluations GROUP BY key"))

    # ------------------------------------------------------------------------ runs, members
    def members(self, study: str, run: str | None = None) -> list[dict[str, Any]]:
        """The points a study (or one run of it) used: run, key, labels and the point's record."""
        sql = "SELECT m.run, m.key, m.labels, p.record FROM members m JOIN points p ON p.key = m.key WHERE m.study = ?"
        args: tuple[str, ...] = (study,)
        if run is not None:
            sql += " AND m.run = ?"
            args = (study, run)
        rows = self._db.execute(sql + " ORDER BY m.run, m.seq", args)
        return [{"run": r, "key": k, "labels": json.loads(lab), **json.loads(rec)} for r, k, lab, rec in rows]

    def finish_run(self, study: str, run: str, kind: str, summary: dict[str, Any], keys: Sequence[str] = (),
                   labels: Sequence[dict[str, Any]] | None = None) -> None:
        """Mark a run done: its summary and the points it used (in order, with per-point labels)
        replace any earlier record of the run, in one transaction."""
        labels = labels if labels is not None else [{}] * len(keys)
        if len(labels) != len(keys):
            raise ValueError(f"{len(keys)} keys but {len(labels)} label sets")
        with self._transaction() as db:
            db.execute("DELETE FROM members WHERE study = ? AND run = ?", (study, run))
            db.executemany("INSERT INTO members VALUES (?, ?, ?, ?, ?)",
                           [(study, run, k, i, json.dumps(lab, sort_keys=True)) for i, (k, lab) in enumerate(zip(keys, labels))])
            db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?)", (study, run, kind, json.dumps(summary, sort_keys=True)))

    def run_summary(self, study: str, run: str) -> dict[str, Any] | None:
        """A finished run's summary, or None if it has not finished."""
        row = self._db.execute("SELECT summary FROM runs WHERE study = ? AND run = ?", (study, run)).fetchone()
        return None if row is None else json.loads(row[0])

    def runs(self, study: str) -> list[tuple[str, str, dict[str, Any]]]:
        """(run, kind, summary) of a study's finished runs."""
        rows = self._db.execute("SELECT run, kind, summary FROM runs WHERE study = ? ORDER BY rowid", (study,))
        return [(r, k, json.loads(s)) for r, k, s in rows]

    # --------------------------------------------------------------------------- artifacts
    def put_artifact(self, key: str, value: dict[str, Any]) -> None:
        """Store a non-point result (e.g. Sakr's E_A, E_W) under a content key."""
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO artifacts VALUES (?, ?)", (key, json.dumps(value, sort_keys=True)))

    def get_artifact(self, key: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT value FROM artifacts WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    # ------------------------------------------------------------------------------ export
    def export(self, path: str | Path, study: str | None = None) -> Path:
        """Write a study's points (all points if `study` is None) as .csv or .json, atomically."""
        path = Path(path)
        if path.suffix not in (".csv", ".json"):
            raise ValueError(f"export path must end in .csv or .json, got {str(path)!r}")
        if study is None:
            rows = [{"key": k, **json.loads(r)} for k, r in self._db.execute("SELECT key, record FROM points ORDER BY created, key")]
        else:
            rows = self.members(study)
        text = json.dumps(rows, indent=1) + "\n" if path.suffix == ".json" else _csv(rows)
        write_atomic(path, text)
        return path


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if isinstance(v, dict) and k in ("costs", "labels"):
            out.update({f"{k}.{kk}": (json.dumps(vv) if isinstance(vv, (list, dict)) else vv) for kk, vv in v.items()})
        else:
            out[k] = json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v
    return out


def _csv(rows: Iterable[dict[str, Any]]) -> str:
    flat = [_flat(r) for r in rows]
    columns = list(dict.fromkeys(c for r in flat for c in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns)
    writer.writeheader()
    writer.writerows(flat)
    return buf.getvalue()
