"""Small studies shared by the study and report tests."""

from pathlib import Path

from quantscope.store import Store

TINY = {
    "name": "tiny",
    "dataset": {"name": "digits"},
    "model": {"name": "digits-cnn"},
    "train": {"epochs": 3, "batch_size": 64, "lr": 0.05},
    "qat": {"epochs": 1, "batch_size": 128},
    "evaluation": {"costs": ["traffic", "energy_uj", "mac_speedup"]},
    "runs": [
        {"name": "precisions", "kind": "plans", "qat": True,
         "plans": {"Floating-Point (32,32)": "float32", "Fixed-Point (8,8)": "fixed<8,auto>", "Binary Net (1,16)": "binary<mean>, fixed<16,auto>"}},
        {"name": "floats", "kind": "sweep", "float": {"exponents": [3, 4], "mantissas": [1, 2, 3]}},
        {"name": "greedy", "kind": "greedy", "integer_bits": [2, 3, 4, 5], "fraction_bits": [0, 1, 2]},
        {"name": "bounds", "kind": "bounds", "bits": [3, 4, 6, 8], "estimation": 100},
        {"name": "sens", "kind": "sensitivity", "weight_fraction_bits": [1, 4], "data_integer_bits": [2, 4], "data_fraction_bits": [0, 2]},
    ],
}
#: a study slow enough (a per-operation sweep) to be stopped half-way by a test
SLOW = {
    "name": "slow",
    "dataset": {"name": "digits"},
    "model": {"name": "digits-cnn"},
    "train": {"epochs": 3, "batch_size": 64, "lr": 0.05},
    "evaluation": {"costs": ["traffic"]},
    "runs": [
        {"name": "accumulate", "kind": "sweep", "float": {"exponents": [4, 5], "mantissas": [2, 3, 4, 5, 6, 7, 8]},
         "targets": ["weights", "data", "accumulator"]},
        {"name": "uniform", "kind": "sweep", "formats": ["fixed<6,auto>", "fixed<8,auto>"]},
    ],
}

TIMING = ("seconds", "evaluated", "reused")


def stored(folder: Path, study: str = "tiny") -> dict:
    """Everything a study stored except timings: points by key, members with labels, summaries."""
    with Store(folder / "results.sqlite") as s:
        points = {k: s.get(k) for k in s.evaluation_counts()}
        members = [(m["run"], m["key"], m["labels"]) for m in s.members(study)]
        runs = [(r, k, {x: v for x, v in summary.items() if x not in TIMING}) for r, k, summary in s.runs(study)]
    return {"points": points, "members": members, "runs": runs}

