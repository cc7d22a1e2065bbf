"""Studies under faults, as real processes: a second writer, SIGTERM, a SIGKILLed parent, a dead
worker, a Ray address that never answers, and folders or stores that are not what they claim."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest
import yaml
from studies import SLOW

from quantscope.store import points_in
from quantscope.study import run_study

STUDY = [sys.executable, "-m", "quantscope", "study"]


#: the study process runs PyTorch's kernels, several times slower per point than the native ones,
#: so that it is still running when the tests act on it
SLOW_KERNELS = {**os.environ, "QUANTSCOPE_BACKEND": "torch"}


def _start(tmp_path: Path, *options: str, config: dict = SLOW) -> tuple[subprocess.Popen, Path, Path]:
    """A study started in the background (its float model trained first, in this process)."""
    cfg = tmp_path / "study.yaml"
    cfg.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    proc = subprocess.Popen([*STUDY, str(cfg), "--out", str(out), "--no-report", *options], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=SLOW_KERNELS)
    return proc, cfg, out


def _wait_for_points(proc: subprocess.Popen, out: Path, n: int) -> None:
    deadline = time.time() + 180
    while points_in(out / "results.sqlite") < n:
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "the study stored no point in 180 s"
        time.sleep(0.05)


def _children(pid: int) -> set[int]:
    """Processes whose parent is `pid` (Linux /proc)."""
    kids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.add(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_second_writer_is_refused_and_sigterm_stops_like_ctrl_c(tmp_path):
    proc, cfg, out = _start(tmp_path)
    _wait_for_points(proc, out, 2)
    second = subprocess.run([*STUDY, str(cfg), "--out", str(out), "--resume", "--no-report"], capture_output=True, text=True)
    assert second.returncode == 2 and second.stderr.count("\n") == 1, second.stderr
    assert f"{out} is in use by study 'slow' (pid {proc.pid} on " in second.stderr
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    stored = points_in(out / "results.sqlite")
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"interrupted: {stored} points stored in {out}; continue with --resume"
    resumed = subprocess.run([*STUDY, str(cfg), "--out", str(out), "--resume", "--no-report"], capture_output=True, text=True)
    assert resumed.returncode == 0 and "read from the store" in resumed.stdout, resumed.stderr  # the lock was released


def test_pool_workers_die_with_a_sigkilled_study(tmp_path):
    proc, _, out = _start(tmp_path, "--workers", "2")
    _wait_for_points(proc, out, 1)
    workers = _children(proc.pid)
    assert len(workers) >= 2, workers  # two workers and the resource tracker
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while any(_alive(p) for p in workers) and time.time() < deadline:
        time.sleep(0.2)
    assert not [p for p in workers if _alive(p)], "a worker outlived its study by 10 s"


def test_a_killed_worker_stops_the_study_with_one_line(tmp_path):
    proc, cfg, out = _start(tmp_path, "--workers", "2")
    _wait_for_points(proc, out, 1)
    workers = sorted(_children(proc.pid))
    for pid in workers:  # the pool's workers run the study's code; the resource tracker does not
        if "multiprocessing.spawn" in Path(f"/proc/{pid}/cmdline").read_text():
            os.kill(pid, signal.SIGKILL)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("error: a worker process died") and "continue with --resume" in err


def test_ray_addresses_that_never_answer_fail_within_the_timeout(tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'quantscope[ray]')")
    cfg = tmp_path / "study.yaml"
    cfg.write_text(yaml.safe_dump(SLOW))
    t0 = time.time()
    closed = subprocess.run([*STUDY, str(cfg), "--out", str(tmp_path / "a"), "--address", "127.0.0.1:1"], capture_output=True, text=True,
                            timeout=120)
    assert closed.returncode == 2 and "cannot reach the Ray cluster at '127.0.0.1:1'" in closed.stderr, closed.stderr
    mute = socket.create_server(("127.0.0.1", 0))  # accepts connections and never speaks
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: [accepted.append(mute.accept()[0]) for _ in range(1000)], daemon=True).start()
    port = mute.getsockname()[1]
    silent = subprocess.run([*STUDY, str(cfg), "--out", str(tmp_path / "b"), "--address", f"127.0.0.1:{port}", "--connect-timeout", "3"],
                            capture_output=True, text=True, timeout=120)
    mute.close()
    assert silent.returncode == 2 and silent.stderr.count("\n") == 1, silent.stderr
    assert f"no answer from the Ray cluster at '127.0.0.1:{port}' within 3 s" in silent.stderr
    assert time.time() - t0 < 90


SMALL = {**SLOW, "runs": SLOW["runs"][1:]}  # two points


@pytest.fixture(scope="module")
def small_study(tmp_path_factory) -> Path:
    """A finished two-point study folder, run once for the tests below (each copies it)."""
    folder = tmp_path_factory.mktemp("small") / "study"
    run_study(SMALL, folder, progress=False, report=False, log=lambda m: None)
    return folder


def _copy(small_study: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(small_study, tmp_path / "study"))


def test_a_folder_holds_one_study(small_study, tmp_path):
    folder = _copy(small_study, tmp_path)
    with pytest.raises(ValueError, match=r"holds study 'slow', not 'other': a folder holds one study"):
        run_study({**SMALL, "name": "other"}, folder, progress=False, report=False, log=lambda m: None)
    with pytest.raises(ValueError, match=r"is a file, not a folder"):
        run_study(SMALL, folder / "study.json", progress=False, report=False, log=lambda m: None)


def _sqlite_file(path: Path) -> Path:
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE contacts (name TEXT)")
        db.execute("INSERT INTO contacts VALUES ('ada')")
    return path


def test_report_reads_only_the_store_inside_its_folder(small_study, tmp_path):
    folder = _copy(small_study, tmp_path)
    victim = _sqlite_file(tmp_path / "other_app.db")
    before = victim.read_bytes()
    info = json.loads((folder / "study.json").read_text())
    (folder / "study.json").write_text(json.dumps({**info, "store": "../other_app.db"}))
    store_bytes = (folder / "results.sqlite").read_bytes()
    res = subprocess.run([sys.executable, "-m", "quantscope", "report", str(folder)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert victim.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["other_app.db", "study"]
    assert (folder / "results.sqlite").read_bytes() == store_bytes, "report wrote to the store"


@pytest.mark.parametrize("damage", ["missing", "empty-store", "garbage", "truncated", "foreign"])
def test_report_and_resume_refuse_a_missing_or_damaged_store(small_study, tmp_path, damage):
    folder = _copy(small_study, tmp_path)
    store = folder / "results.sqlite"
    if damage == "missing":
        store.unlink()
    elif damage == "empty-store":
        with sqlite3.connect(store) as db:
            db.execute("DELETE FROM runs")
    elif damage == "garbage":
        store.write_bytes(os.urandom(8192))
    elif damage == "truncated":
        with closing(sqlite3.connect(store)) as db, db:  # several pages, then cut in half
            db.executemany("INSERT INTO artifacts VALUES (?, ?)", [(os.urandom(8).hex(), "x" * 4000) for _ in range(50)])
        store.write_bytes(store.read_bytes()[: store.stat().st_size // 2])
    else:
        store.unlink()
        _sqlite_file(store)
    before = store.read_bytes() if store.exists() else None
    expected = {"missing": "results.sqlite does not exist", "empty-store": "has no finished run yet",
                "garbage": "is not a readable quantscope result store", "truncated": "result store",
                "foreign": "is not a quantscope result store (tables: contacts)"}[damage]
    res = subprocess.run([sys.executable, "-m", "quantscope", "report", str(folder)], capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and expected in res.stderr, res.stderr
    assert not (folder / "report").exists()
    if damage in ("garbage", "truncated", "foreign"):
        cfg = tmp_path / "study.yaml"
        cfg.write_text(yaml.safe_dump(SMALL))
        resumed = subprocess.run([*STUDY, str(cfg), "--out", str(folder), "--resume", "--no-report"], capture_output=True, text=True)
        assert resumed.returncode == 2 and resumed.stderr.count("\n") == 1 and "result store" in resumed.stderr, resumed.stderr
        assert store.read_bytes() == before, "a damaged or foreign store was modified"
