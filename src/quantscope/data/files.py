"""Finding, verifying and downloading dataset files.

Search order for a file: the `data_dir` argument (the CLI's --data-dir), the QUANTSCOPE_DATA_DIR
environment variable, then the user cache directory (XDG_CACHE_HOME or ~/.cache, /quantscope/datasets).
In each root the file may sit in the dataset's folder (mnist/...) or directly in the root.
Downloads go to the first writable root, through a temporary file that is renamed into place only
after its checksum matches.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
import zlib
from pathlib import Path

from .catalog import DatasetSpec, RemoteFile

__all__ = ["ENV_VAR", "DatasetFileError", "cache_dir", "search_roots", "verify", "locate", "fetch_file"]

ENV_VAR = "QUANTSCOPE_DATA_DIR"


class DatasetFileError(FileNotFoundError):
    """A dataset file is missing, truncated or corrupted; the message says how to get it."""


def cache_dir() -> Path:
    """The user cache directory for quantscope (datasets, decoded archives)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "quantscope"


def search_roots(data_dir: str | Path | None = None) -> list[Path]:
    """Directories searched for dataset files, in order."""
    roots = []
    if data_dir is not None:
        roots.append(Path(data_dir))
    if os.environ.get(ENV_VAR):
        roots.append(Path(os.environ[ENV_VAR]))
    roots.append(cache_dir() / "datasets")
    return roots


def _md5(path: Path, opener=open) -> str:
    h = hashlib.md5()
    with opener(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _how_to_get(spec: DatasetSpec) -> str:
    if spec.files and spec.files[0].urls:
        return f"run `quantscope datasets fetch {spec.name}` (needs internet)"
    return f"copy it from the project's shared datasets folder into <data-dir>/{spec.folder}/"


def verify(path: Path, rf: RemoteFile, spec: DatasetSpec) -> None:
    """Raise DatasetFileError unless `path` is a good copy of `rf` (file or content checksum)."""
    actual = _md5(path)
    if actual == rf.md5:
        return
    problem = f"md5 {actual} ({path.stat().st_size:,} bytes), expected {rf.md5}"
    if rf.content_md5 is not None:
        try:
            if _md5(path, gzip.open) == rf.content_md5:
                return
            problem += f" or decompressed content md5 {rf.content_md5}"
        except (OSError, EOFError, zlib.error) as err:
            problem += f"; decompressing it fails ({err})"
    raise DatasetFileError(
        f"{spec.title}: file {path} is truncated or corrupted: {problem}; delete it and "
        f"{_how_to_get(spec)}"
    )


def locate(spec: DatasetSpec, rf: RemoteFile, data_dir: str | Path | None = None, download: bool = False) -> Path:
    """The verified path of one dataset file, downloading it if allowed and missing."""
    roots = search_roots(data_dir)
    candidates = [r / spec.folder / rf.name for r in roots] + [r / rf.name for r in roots]
    for path in candidates:
        if path.is_file():
            verify(path, rf, spec)
            return path
    if download and rf.urls:
        return fetch_file(spec, rf, roots[0] / spec.folder)
    searched = "\n  ".join(str(c) for c in candidates)
    raise DatasetFileError(
        f"{spec.title}: file {rf.name} not found; looked in:\n  {searched}\n"
        f"To get it, {_how_to_get(spec)}, or pass --data-dir (or set {ENV_VAR}) to a folder holding "
        f"{spec.folder}/{rf.name}"
    )


def fetch_file(spec: DatasetSpec, rf: RemoteFile, folder: Path) -> Path:
    """Download `rf` into `folder` atomically, trying each mirror, verifying its checksum."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / rf.name
    errors = []
    for url in rf.urls:
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=rf.name + ".", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                shutil.copyfileobj(response, out)
            verify(tmp, rf, spec)
            tmp.replace(target)
            return target
        except (OSError, DatasetFileError) as err:
            errors.append(f"{url}: {err}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DatasetFileError(f"{spec.title}: could not download {rf.name}:\n  " + "\n  ".join(errors))
