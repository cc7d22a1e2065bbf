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
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from .files import write_atomic

__all__ = ["STORE_FILE", "Store", "content_key", "csv_text", "flat", "points_in"]

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


#: the store's file name inside a study folder (a study's store is always there)
STORE_FILE = "results.sqlite"
_TABLES = {"points", "evaluations", "members", "runs", "artifacts"}


def points_in(path: str | Path) -> int:
    """How many points the store at `path` holds (0 when there is no readable store there)."""
    if not Path(path).is_file():
        return 0
    try:
        with closing(_read_only(Path(path), 5.0)) as db:
            return db.execute("SELECT COUNT(*) FROM points").fetchone()[0]
    except sqlite3.DatabaseError:
        return 0


def _read_only(path: Path, timeout: float) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", timeout=timeout, isolation_level=None, check_same_thread=False, uri=True)


def _switch_to_wal(db: sqlite3.Connection, timeout: float) -> None:
    """Put the file in WAL mode, retrying until `timeout`: when two processes open a store at once,
    both hold a read lock and want the exclusive one for the switch, and SQLite refuses one of them
    at once ("database is locked") instead of calling its busy handler, to avoid a deadlock."""
    deadline, pause = time.monotonic() + timeout, 0.001
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(2 * pause, 0.1)


def _check(db: sqlite3.Connection, path: Path, required: bool) -> None:
    """Refuse a damaged file, or a database that is not a quantscope store (an empty database is
    refused only when a store is `required` to exist)."""
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        damage = db.execute("PRAGMA quick_check").fetchone()[0] if tables else "ok"
    except sqlite3.DatabaseError as err:
        raise ValueError(f"{path} is not a readable quantscope result store ({err})") from None
    if damage != "ok":
        raise ValueError(f"{path} is a damaged result store ({damage}); restore it or start the study in a new --out")
    if tables and _TABLES - tables or required and not tables:
        raise ValueError(f"{path} is not a quantscope result store (tables: {', '.join(sorted(tables)) or 'none'})")


class Store:
    """A SQLite result store at `path`: created with its folder if missing, or opened read-only
    (`read_only`: it must exist, and nothing is written to it). A file that is not a store (not
    SQLite, damaged, or another program's database) is refused with an error naming it, untouched."""

    def __init__(self, path: str | Path, timeout: float = 60.0, read_only: bool = False) -> None:
        self.path = Path(path)
        self._read_only = read_only
        if read_only:
            if not self.path.is_file():
                raise FileNotFoundError(f"{self.path} does not exist: no point of this study has been stored yet")
            self._db = _read_only(self.path, timeout)
            try:
                _check(self._db, self.path, required=True)
            except BaseException:
                self._db.close()
                raise
            return
        if self.path.is_file() and self.path.stat().st_size:
            with closing(_read_only(self.path, timeout)) as db:  # checked read-only: a refused file is left as it was
                _check(db, self.path, required=False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        _switch_to_wal(self._db, timeout)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close; a writer's last close leaves one self-contained file (rollback journal mode), so
        read-only readers later need no WAL files beside it and create none."""
        if not self._read_only:
            try:
                self._db.execute("PRAGMA journal_mode=DELETE")
            except sqlite3.OperationalError:
                pass  # another connection still has it open in WAL mode: it switches when it closes
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

    def replace(self, records: dict[str, dict[str, Any]]) -> None:
        """Rewrite stored points' records (e.g. costs recomputed by newer cost models) in one
        transaction; every key must be stored already."""
        with self._transaction() as db:
            for key, record in records.items():
                if db.execute("UPDATE points SET record = ? WHERE key = ?", (json.dumps(record, sort_keys=True), key)).rowcount != 1:
                    raise KeyError(f"no stored point {key!r} to replace")

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
    def records(self, study: str | None = None) -> list[dict[str, Any]]:
        """A study's points with run and labels (every stored point if `study` is None)."""
        if study is not None:
            return self.members(study)
        return [{"key": k, **json.loads(r)} for k, r in self._db.execute("SELECT key, record FROM points ORDER BY created, key")]

    def export(self, path: str | Path, study: str | None = None) -> Path:
        """Write a study's points (all points if `study` is None) as .csv or .json, atomically."""
        path = Path(path)
        if path.suffix not in (".csv", ".json"):
            raise ValueError(f"export path must end in .csv or .json, got {str(path)!r}")
        rows = self.records(study)
        text = json.dumps(rows, indent=1) + "\n" if path.suffix == ".json" else csv_text(rows)
        write_atomic(path, text)
        return path


def flat(row: dict[str, Any]) -> dict[str, Any]:
    """A point as one flat row: costs and labels as `costs.NAME`, `labels.NAME`; other lists
    and mappings as JSON text."""
    out = {}
    for k, v in row.items():
        if isinstance(v, dict) and k in ("costs", "labels"):
            out.update({f"{k}.{kk}": (json.dumps(vv) if isinstance(vv, (list, dict)) else vv) for kk, vv in v.items()})
        else:
            out[k] = json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v
    return out


def csv_text(rows: Iterable[dict[str, Any]]) -> str:
    """Points as CSV text, one flat row each (see `flat`)."""
    flat_rows = [flat(r) for r in rows]
    columns = list(dict.fromkeys(c for r in flat_rows for c in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns)
    writer.writeheader()
    writer.writerows(flat_rows)
    return buf.getvalue()
