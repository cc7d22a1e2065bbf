"""One writer per study folder: an exclusive lock on `--out`, released by the kernel when its
holder exits, however it exits (a killed study leaves no stale lock to clear by hand)."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["LOCK_FILE", "folder_lock"]

#: the lock file inside a study folder; it names the current (or last) holder
LOCK_FILE = ".quantscope.lock"


def _holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        info = json.loads(os.read(fd, 4096).decode())
        return f"study {info['study']!r} (pid {info['pid']} on {info['host']}, since {info['since']})"
    except (ValueError, KeyError, TypeError):
        return "another process"


@contextmanager
def folder_lock(folder: Path, study: str) -> Iterator[None]:
    """Hold `folder` for study `study` for the block; a second holder is refused, naming the first."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out {folder} is a file, not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"{folder} is in use by {_holder(fd)}; wait for it to finish or choose another --out") from None
        since = time.strftime("%Y-%m-%d %H:%M:%S")
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"study": study, "pid": os.getpid(), "host": socket.gethostname(), "since": since}).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
