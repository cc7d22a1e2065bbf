"""Datasets in their canonical file formats: locate, verify, download, split, normalize."""

from .catalog import SPECS, DatasetSpec, RemoteFile
from .dataset import NORMALIZATIONS, SPLITS, Dataset, fetch, load, names, spec, val_indices
from .files import ENV_VAR, DatasetFileError, cache_dir, search_roots

__all__ = [
    "ENV_VAR", "NORMALIZATIONS", "SPECS", "SPLITS", "Dataset", "DatasetFileError", "DatasetSpec", "RemoteFile",
    "cache_dir", "fetch", "load", "names", "search_roots", "spec", "val_indices",
]
