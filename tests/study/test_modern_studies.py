"""A whole study on each modern registered network: float training (cached), sweep, Judd's greedy
search, sensitivity, Sakr's bounds where they apply, every cost model, and the report."""

from __future__ import annotations

import pytest
from conftest import SHARED_DATASETS

from quantscope.store import Store
from quantscope.study import run_study

NETWORKS = {  # dataset, whether Sakr's bounds apply (one decision per example), two ops for sensitivity
    "resnet20": ("cifar10-jpeg", True, ["blocks.3.conv1", "fc"]),
    "mobilenetv2": ("cifar10-jpeg", True, ["4.body.3", "16"]),
    "vit": ("cifar10-jpeg", True, ["blocks.1.self_attn.scores", "blocks.1.linear2"]),
    "lstm-mnist": ("mnist", True, ["rnn.l0.hh", "fc"]),
    "gpt-char": ("fortunes", False, ["blocks.0.attn.values", "lm_head"]),
}


def _config(network: str, dataset: str, bounds: bool, sensitive: list[str]) -> dict:
    runs = [
        {"name": "formats", "kind": "sweep", "formats": ["fixed<8,auto>", "float<4,3>"]},
        {"name": "greedy", "kind": "greedy", "integer_bits": [4, 6], "fraction_bits": [2], "max_evaluations": 6},
        {"name": "sens", "kind": "sensitivity", "layers": sensitive, "weight_fraction_bits": [4], "data_integer_bits": [3],
         "data_fraction_bits": [2]},
    ]
    if bounds:
        runs.append({"name": "bounds", "kind": "bounds", "bits": [6, 8], "estimation": 10})
    return {
        "name": f"tiny-{network}", "dataset": {"name": dataset, "eval_split": "val", "limit": 40},
        "model": {"name": network}, "train": {"epochs": 1, "batch_size": 32, "max_batches": 2},
        "evaluation": {"calibration": 16, "batch_size": 40}, "runs": runs,
    }


@pytest.mark.parametrize("network", list(NETWORKS))
def test_a_study_runs_end_to_end_on_every_modern_network(network, tmp_path):
    dataset, bounds, sensitive = NETWORKS[network]
    cfg = _config(network, dataset, bounds, sensitive)
    result = run_study(cfg, tmp_path, data_dir=SHARED_DATASETS, progress=False, log=lambda m: None)
    with Store(result.store_path) as store:
        runs = {r: (kind, summary) for r, kind, summary in store.runs(cfg["name"])}
        points = store.members(cfg["name"])
    assert set(runs) == {r["name"] for r in cfg["runs"]}
    assert all(set(p["costs"]) >= {"traffic", "energy_uj", "full_adders", "parameter_bits"} for p in points)
    if network == "gpt-char":
        assert all(p["metrics"]["bits_per_char"] > 0 and p["metrics"]["perplexity"] == pytest.approx(2 ** p["metrics"]["bits_per_char"])
                   for p in points)
    html = result.report.read_text()
    assert "sweep" in html and "greedy per-op precision" in html and ("Sakr bounds" in html) == bounds


def test_resnet_points_are_identical_in_process_with_two_workers_and_on_ray(tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'quantscope[ray]')")
    from studies import stored

    from quantscope.executors import ProcessPool, RayExecutor

    cfg = _config("resnet20", "cifar10-jpeg", False, ["blocks.0.conv1", "fc"])
    cfg["runs"] = cfg["runs"][:2]  # QAT across executors is covered by the digits study (its training set is small)

    def run(folder, executor=None):
        run_study(cfg, tmp_path / folder, executor, data_dir=SHARED_DATASETS, progress=False, report=False, log=lambda m: None)
        return stored(tmp_path / folder, cfg["name"])

    reference = run("inprocess")
    assert len(reference["points"]) == 4
    for folder, executor in (("pool", ProcessPool(2)), ("ray", RayExecutor(2))):
        try:
            assert run(folder, executor) == reference, folder
        finally:
            executor.close()
    ray.shutdown()
