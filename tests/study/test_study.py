"""Studies from a config: validation, resumable runs, identical results on every executor,
SIGKILL half-way and resume, the CLI, and the demo."""

import copy
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from studies import SLOW, TINY, stored

from quantscope.cost import MacModel
from quantscope.executors import ProcessPool
from quantscope.store import Store, points_in
from quantscope.study import load_config, run_study


# ------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(colour="red"), "colour: Extra inputs are not permitted"),
    (lambda c: c["train"].update(epochs="many"), "train.epochs: Input should be a valid integer"),
    (lambda c: c["train"].update(lr=-1), "train.lr: Input should be greater than 0"),
    (lambda c: c["qat"].update(threads=2), "qat.threads: Extra inputs are not permitted"),
    (lambda c: c["runs"][1].update(kind="sweap"), "runs.1.kind: unknown run kind 'sweap' (did you mean 'sweep'?)"),
    (lambda c: c["runs"][1]["float"].update(exponents=[]), "runs.1.float.exponents: List should have at least 1 item"),
    (lambda c: c["runs"].append(dict(c["runs"][0])), "run names must be unique; repeated: precisions"),
    (lambda c: c["evaluation"].update(costs=["trafic"]), "unknown cost model 'trafic' (did you mean 'traffic'?)"),
    (lambda c: c["model"].update(name="lenett"), "unknown model 'lenett' (did you mean 'lenet'?)"),
    (lambda c: c["dataset"].update(name="mnits"), "unknown dataset 'mnits'"),
    (lambda c: c["runs"][0]["plans"].update(bad="fixed<8"), "runs.0.plans: plan 'bad': weights: cannot parse format 'fixed<8'"),
    (lambda c: c["runs"][2].update(cost="energy"), "minimizes 'energy', which is not in evaluation.costs"),
    (lambda c: c.pop("train"), "the model needs a checkpoint or a train section"),
    (lambda c: c["runs"][3].update(bits=[1, 4]), "runs.3.bits.0: Input should be greater than or equal to 2"),
    (lambda c: c["runs"][1]["float"].update(exponents=[3, 9]), "runs.1: float<9,1>: largest exponent 2**255 is beyond float32's"),
    (lambda c: c["runs"][1]["float"].update(mantissas=[-1]), "runs.1: float<3,-1>: mantissa bits must be at least 0, got -1"),
    (lambda c: c["runs"][1].update(fixed={"integer_bits": [0], "fraction_bits": [0]}), "pairs 0 integer and 0 fraction bits"),
])
def test_config_errors_name_the_key_and_the_value(change, message):
    cfg = copy.deepcopy(TINY)
    change(cfg)
    with pytest.raises(ValueError) as err:
        load_config(cfg)
    assert message in str(err.value)


def test_checkpoint_that_does_not_fit_the_model_is_a_clear_error(tmp_path):
    root = Path(__file__).resolve().parents[2]
    cfg = {**copy.deepcopy(TINY), "model": {"name": "digits-cnn", "checkpoint": str(root / "checkpoints" / "lenet-mnist.pt")}}
    with pytest.raises(ValueError, match="lenet-mnist.pt does not fit model digits-cnn"):
        run_study(cfg, tmp_path, progress=False, report=False, log=lambda m: None)


@pytest.mark.parametrize("run, message", [
    ({"name": "s", "kind": "sensitivity", "layers": ["conv9"]}, "run 's': unknown op 'conv9'"),
    ({"name": "p", "kind": "plans", "plans": {"x": {"default": "fixed<8,auto>", "overrides": {"fc9": "fixed<4,2>"}}}},
     "run 'p', plan 'x': plan override 'fc9' matches no op"),
])
def test_unknown_op_names_stop_the_study_before_any_run_and_leave_no_folder(tmp_path, run, message):
    cfg = {**copy.deepcopy(SLOW), "runs": [SLOW["runs"][1], run]}
    with pytest.raises(ValueError, match=message):
        run_study(cfg, tmp_path / "out", progress=False, report=False, log=lambda m: None)
    assert not (tmp_path / "out").exists()


USER_MODULE = """
from torch import nn


def build():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
"""


def test_a_users_module_is_trained_cached_and_evaluated(tmp_path):
    (tmp_path / "my_nets.py").write_text(USER_MODULE)
    cfg = {"name": "mine", "dataset": {"name": "digits"}, "model": {"module": "my_nets.py:build"},
           "train": {"epochs": 5, "batch_size": 64, "lr": 0.1}, "evaluation": {"costs": ["traffic", "parameter_bits"]},
           "runs": [{"name": "w", "kind": "sweep", "formats": ["fixed<8,auto>", "fixed<4,auto>"]}]}
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(cfg))
    first = run_study(path, tmp_path / "a", progress=False, report=False, log=lambda m: None)
    info = json.loads((tmp_path / "a" / "study.json").read_text())
    assert info["trained"] and info["float_accuracy"] > 0.9 and info["layers"] == ["1", "3"]
    again = run_study(path, tmp_path / "b", progress=False, report=False, log=lambda m: None)
    assert json.loads((tmp_path / "b" / "study.json").read_text())["trained"] is False  # cached by content hash
    assert stored(tmp_path / "a", "mine") == stored(tmp_path / "b", "mine") and first.evaluated == again.evaluated == 2
    points = stored(tmp_path / "a", "mine")["points"].values()
    assert sorted(p["costs"]["parameter_bits"] for p in points) == [4 * 2410, 8 * 2410]  # weights and biases (bias follows weights)
    bad = {**cfg, "model": {"module": f"{tmp_path}/my_nets.py:nothing"}}
    with pytest.raises(ValueError, match="has no 'nothing'"):
        run_study(bad, tmp_path / "c", progress=False, report=False, log=lambda m: None)
    with pytest.raises(FileNotFoundError, match="none.py' does not exist"):  # a dict config's paths are relative to the cwd
        run_study({**cfg, "model": {"module": "none.py:build"}}, tmp_path / "d", progress=False, report=False, log=lambda m: None)


def test_config_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="is a mapping"):
        load_config(tmp_path / "list.yaml")


# ----------------------------------------------------------------------------------- a study
def test_study_stores_every_run_and_point(tiny_study):
    out, result = tiny_study
    data = stored(out)
    runs = {r: (k, s) for r, k, s in data["runs"]}
    assert list(runs) == ["precisions", "floats", "greedy", "bounds", "sens"]
    assert all(n == 1 for n in Store(out / "results.sqlite").evaluation_counts().values())
    assert result.evaluated == len(data["points"])
    members = [m for m in data["members"] if m[0] == "precisions"]
    assert [m[2]["label"] for m in members] == ["Floating-Point (32,32)", "Fixed-Point (8,8)", "Binary Net (1,16)"]
    qat_float = data["points"][members[0][1]]
    assert qat_float["accuracy"] > 0.9 and "energy_uj" in qat_float["costs"] and "mac_speedup" in qat_float["costs"]
    # binary weights with 16-bit data run on the 16-bit unit: the network ratio is the unit's
    assert data["points"][members[2][1]]["costs"]["mac_speedup"] == pytest.approx(MacModel.load().speedup("fixed<16,8>"))
    greedy = runs["greedy"][1]
    assert greedy["start"] is not None and len(greedy["rows"]) == 4
    bounds = runs["bounds"][1]
    assert [r["b_a"] for r in bounds["rows"]][:4] == [3, 4, 6, 8]
    assert all(r["theorem2"] <= r["theorem1"] * (1 + 1e-9) for r in bounds["rows"])
    info = json.loads((out / "study.json").read_text())
    assert info["trained"] is True and 0.9 < info["float_accuracy"] <= 1


def test_rerun_needs_resume_and_then_evaluates_nothing(tiny_study):
    out, _ = tiny_study
    before = stored(out)
    with pytest.raises(ValueError, match="--resume"):
        run_study(copy.deepcopy(TINY), out, progress=False, report=False, log=lambda m: None)
    again = run_study(copy.deepcopy(TINY), out, progress=False, report=False, resume=True, log=lambda m: None)
    assert again.evaluated == 0 and again.reused == len(before["members"]), "finished runs count their points as read from the store"
    assert stored(out) == before


def test_max_evaluations_stops_a_run_cleanly_and_the_report_says_so(tiny_study, tmp_path):
    from quantscope.report import load_results, report_tables

    cfg = copy.deepcopy(TINY)
    cfg["runs"] = [{**cfg["runs"][2], "max_evaluations": 5}, {**cfg["runs"][3], "max_evaluations": 2}]
    result = run_study(cfg, tmp_path, progress=False, report=False, log=lambda m: None)
    assert result.evaluated == 5 + 2
    runs = {r: s for r, _, s in stored(tmp_path)["runs"]}
    assert runs["greedy"]["complete"] is False and runs["greedy"]["start"] is None
    assert runs["bounds"]["complete"] is False and sum(r["simulated_mismatch"] is not None for r in runs["bounds"]["rows"]) == 2
    captions = [t.caption for t in report_tables(load_results(tmp_path))[1:]]
    assert all("Incomplete: the run stopped at its max_evaluations" in c for c in captions)


def test_a_greedy_run_with_no_uniform_start_says_why(tiny_study, tmp_path):
    cfg = copy.deepcopy(TINY)
    cfg["runs"] = [{**cfg["runs"][2], "integer_bits": [1], "fraction_bits": [0, 1]}]  # 1.0 and 1.1: far from float
    logs: list[str] = []
    run_study(cfg, tmp_path, progress=False, report=False, log=logs.append)
    runs = {r: s for r, _, s in stored(tmp_path)["runs"]}
    assert runs["greedy"]["start"] is None and runs["greedy"]["complete"] is False
    warning = [m for m in logs if m.startswith("warning: run greedy:")]
    assert len(warning) == 1 and "did not run" in warning[0] and "with weights float32" in warning[0]
    assert "the best, 1.1" in warning[0] or "the best, 1.0" in warning[0]
    assert "leave the weights float" not in warning[0]  # they are

    cfg["runs"][0]["start_within"] = 0.9  # any width is close enough now
    logs.clear()
    run_study(cfg, tmp_path, progress=False, report=False, resume=True, log=logs.append)
    greedy = {r: s for r, _, s in stored(tmp_path)["runs"]}["greedy"]
    assert greedy["start"] == [1, 0] and greedy["start_within"] == 0.9  # the cheapest width
    assert not any(m.startswith("warning:") for m in logs)


def test_changed_run_is_redone_reusing_stored_points(tiny_study, tmp_path):
    out, _ = tiny_study
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    with sqlite3.connect(out / "results.sqlite") as src, sqlite3.connect(copy_dir / "results.sqlite") as dst:
        src.backup(dst)
    cfg = copy.deepcopy(TINY)
    cfg["runs"][1]["float"]["mantissas"] = [1, 2, 3, 4]
    logs = []
    result = run_study(cfg, copy_dir, progress=False, report=False, resume=True, log=logs.append)
    assert result.evaluated == 2  # float<3,4> and float<4,4>; the other six come from the store
    assert any("run greedy: finished earlier" in m for m in logs)


def test_costs_made_by_older_cost_models_are_recomputed_on_resume_and_nothing_is_evaluated(tiny_study, tmp_path):
    out, _ = tiny_study
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    with sqlite3.connect(out / "results.sqlite") as src, sqlite3.connect(copy_dir / "results.sqlite") as dst:
        src.backup(dst)
    fresh = stored(copy_dir)
    with Store(copy_dir / "results.sqlite") as store:  # as an older release left them: other costs, another digest
        key = next(k for k, p in fresh["points"].items() if "mac_speedup" in p["costs"])
        store.replace({key: {**fresh["points"][key], "costs": {**fresh["points"][key]["costs"], "mac_speedup": 92.8}}})
        store.put_artifact("cost-models:tiny", {"digest": "older"})
    logs = []
    again = run_study(copy.deepcopy(TINY), copy_dir, progress=False, report=False, resume=True, log=logs.append)
    assert again.evaluated == 0
    assert stored(copy_dir)["points"] == fresh["points"]
    assert "costs of 1 stored points recomputed: the cost models changed since they were stored" in logs
    logs.clear()
    run_study(copy.deepcopy(TINY), copy_dir, progress=False, report=False, resume=True, log=logs.append)
    assert not any("recomputed" in m for m in logs)  # the digest is recorded: nothing to redo


def test_same_results_in_process_process_pool_and_ray(tiny_study, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'quantscope[ray]')")
    from quantscope.executors import RayExecutor

    reference = stored(tiny_study[0])
    pool = ProcessPool(2)
    try:
        run_study(copy.deepcopy(TINY), tmp_path / "pool", pool, progress=False, report=False, log=lambda m: None)
    finally:
        pool.close()
    assert stored(tmp_path / "pool") == reference
    ray_ex = RayExecutor(2)
    try:
        run_study(copy.deepcopy(TINY), tmp_path / "ray", ray_ex, progress=False, report=False, log=lambda m: None)
    finally:
        ray_ex.close()
        ray.shutdown()
    assert stored(tmp_path / "ray") == reference


def test_ray_address_runs_on_an_existing_cluster(tiny_study, tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'quantscope[ray]')")
    ray_cli = Path(sys.executable).with_name("ray")
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    port = "6391"
    start = subprocess.run([str(ray_cli), "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                            "--disable-usage-stats"], capture_output=True, text=True, timeout=120)
    assert start.returncode == 0, start.stdout + start.stderr
    try:
        cfg = copy.deepcopy(TINY)
        cfg["runs"] = cfg["runs"][1:3]  # the sweep and the greedy search
        out, path = tmp_path / "cluster", tmp_path / "cluster.yaml"
        path.write_text(yaml.safe_dump(cfg))
        res = subprocess.run([sys.executable, "-m", "quantscope", "study", str(path), "--out", str(out), "--no-report",
                              "--address", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=300, env=os.environ.copy())
        assert res.returncode == 0, res.stdout + res.stderr
        # without an address, the executor starts a cluster of its own beside the running one
        own = subprocess.run([sys.executable, "-c", "import ray; from quantscope.executors import RayExecutor; RayExecutor(workers=1); "
                              "print(ray.cluster_resources()['CPU'])"], capture_output=True, text=True, timeout=300, env=os.environ.copy())
        assert own.returncode == 0 and own.stdout.split()[-1] == "1.0", own.stdout + own.stderr
    finally:
        subprocess.run([str(ray_cli), "stop", "--force"], capture_output=True, timeout=120)
    mine, reference = stored(out), stored(tiny_study[0])
    assert mine["runs"] == [r for r in reference["runs"] if r[0] in ("floats", "greedy")]
    assert all(reference["points"][k] == v for k, v in mine["points"].items())


STOCHASTIC = {**SLOW, "name": "stochastic", "evaluation": {"costs": ["traffic"], "rounding": "stochastic", "seed": 7},
              "runs": [{"name": "floats", "kind": "sweep", "float": {"exponents": [4], "mantissas": [2, 3, 4, 5, 6, 7, 8]}},
                       SLOW["runs"][1]]}


@pytest.mark.parametrize("config", [SLOW, STOCHASTIC], ids=["nearest", "stochastic"])
def test_sigkill_half_way_then_resume_loses_and_repeats_nothing(tmp_path, config):
    cfg = tmp_path / "study.yaml"
    cfg.write_text(yaml.safe_dump(config))
    reference = tmp_path / "reference"
    run_study(cfg, reference, progress=False, report=False, log=lambda m: None)  # also caches the float model
    total = len(stored(reference, config["name"])["points"])
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "quantscope", "study", str(cfg), "--out", str(out), "--no-report"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and points_in(out / "results.sqlite") < 4:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = points_in(out / "results.sqlite")
    assert 4 <= done < total, f"the kill should land half-way: {done} of {total} points stored"
    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, env=os.environ.copy())
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"{total - done} points evaluated, {done} read from the store" in " ".join(resumed.stdout.split())
    assert stored(out, config["name"]) == stored(reference, config["name"])
    with Store(out / "results.sqlite") as s:
        counts = s.evaluation_counts()
    assert len(counts) == total and set(counts.values()) == {1}, "a stored point was evaluated again"


def test_stochastic_points_are_the_same_on_every_executor_and_depend_on_the_seed(tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'quantscope[ray]')")
    from quantscope.executors import RayExecutor

    small = {**STOCHASTIC, "runs": STOCHASTIC["runs"][:1]}
    run_study(copy.deepcopy(small), tmp_path / "in-process", progress=False, report=False, log=lambda m: None)
    reference = stored(tmp_path / "in-process", "stochastic")
    for name, executor in (("pool", ProcessPool(2)), ("ray", RayExecutor(2))):
        try:
            run_study(copy.deepcopy(small), tmp_path / name, executor, progress=False, report=False, log=lambda m: None)
        finally:
            executor.close()
        assert stored(tmp_path / name, "stochastic") == reference, name
    ray.shutdown()
    nearest = {**small, "evaluation": {"costs": ["traffic"]}}
    reseeded = {**small, "evaluation": {**small["evaluation"], "seed": 8}}
    for other, folder in ((nearest, "nearest"), (reseeded, "seed-8")):
        run_study(copy.deepcopy(other), tmp_path / folder, progress=False, report=False, log=lambda m: None)
    accuracies = {f: sorted(p["accuracy"] for p in stored(tmp_path / f, "stochastic")["points"].values())
                  for f in ("in-process", "nearest", "seed-8")}
    assert accuracies["in-process"] != accuracies["nearest"] and accuracies["in-process"] != accuracies["seed-8"]


# ------------------------------------------------------------------------------------- CLI


def test_a_run_rounds_in_its_own_mode(tmp_path):
    """Hill's truncation beside round-to-nearest in one study: a run's `rounding` evaluates its
    plans in that mode (points keyed apart, the mode in its summary and report caption)."""
    runs = [{"name": "nearest", "kind": "sweep", "formats": ["float<4,2>", "float<5,6>"], "targets": ["weights", "data", "accumulator"]},
            {"name": "truncate", "kind": "sweep", "formats": ["float<4,2>", "float<5,6>"], "targets": ["weights", "data", "accumulator"],
             "rounding": "toward_zero"}]
    cfg = {**copy.deepcopy(SLOW), "name": "rounding", "runs": runs}
    run_study(cfg, tmp_path, progress=False, log=lambda m: None)
    with Store(tmp_path / "results.sqlite") as store:
        summaries = {r: s for r, _, s in store.runs("rounding")}
        members = {r: [m["key"] for m in store.members("rounding", r)] for r in ("nearest", "truncate")}
        accuracy = {r: [store.get(k)["accuracy"] for k in keys] for r, keys in members.items()}
    assert summaries["nearest"]["rounding"] == "nearest" and summaries["truncate"]["rounding"] == "toward_zero"
    assert not set(members["nearest"]) & set(members["truncate"])
    assert accuracy["truncate"][0] < accuracy["nearest"][0]  # 2 mantissa bits: truncating every sum loses more
    assert "every value rounded toward zero" in (tmp_path / "report" / "index.html").read_text()
