"""Every command of the `quantscope` command line, run as a real subprocess: its output, its
--json, and its one error path (one plain line on stderr, exit 2 for bad input, nothing written)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import SHARED_DATASETS
from studies import stored
from typer.testing import CliRunner

from quantscope import cli

STUDY = {
    "name": "cli-study",
    "dataset": {"name": "digits"},
    "model": {"name": "digits-cnn"},
    "train": {"epochs": 2, "batch_size": 64},
    "runs": [{"name": "floats", "kind": "sweep", "float": {"exponents": [3], "mantissas": [1, 2]}}],
}


def qs(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m quantscope ARGS` and capture its output."""
    return subprocess.run([sys.executable, "-m", "quantscope", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def assert_bad_input(res: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 2, nothing on stdout, one plain line on stderr holding every fragment."""
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert res.stdout == "" and res.stderr.count("\n") == 1 and res.stderr.startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr
    for f in fragments:
        assert f in res.stderr, (f, res.stderr)


def test_formats_table_json_and_errors():
    res = qs("formats", "fixed<8,4>", "e4m3fn", "pow2<6,0>")
    assert res.returncode == 0, res.stderr
    assert "fixed<8,4>" in res.stdout and "[-8, 7.9375]" in res.stdout
    assert "float<4,3,special=fn>" in res.stdout and "[-448, 448]" in res.stdout and "2^-30" in res.stdout
    (row,) = json.loads(qs("formats", "fp16", "--json").stdout)
    assert row == {"format": "float<5,10>", "bits": 16, "min": -65504.0, "max": 65504.0,
                   "min_positive": 2.0**-24, "step": None, "values": 63487}
    assert_bad_input(qs("formats", "flaot<4,3>"), "did you mean 'float'")
    assert_bad_input(qs("formats", "[red]fixed<8,4>"), "'[red]fixed<8,4>'")  # printed as given, not as markup


def test_debug_shows_the_traceback_and_internal_errors_are_one_line(monkeypatch):
    res = qs("--debug", "formats", "fixed<0,4>")
    assert res.returncode == 1 and "Traceback" in res.stderr and "ValueError" in res.stderr

    def broken(*args, **kwargs):
        raise KeyError("clock_hz")

    monkeypatch.setattr(cli, "_cost_report", broken)
    out = CliRunner().invoke(cli.app, ["cost", "lenet"])
    assert out.exit_code == 1
    assert out.output.strip() == "error: internal error (KeyError: 'clock_hz'); rerun with --debug for the traceback"


def test_datasets_list_and_fetch():
    names = [d["name"] for d in json.loads(qs("datasets", "list", "--json").stdout)]
    assert {"mnist", "cifar10-jpeg", "digits", "fortunes"} <= set(names)
    if not (SHARED_DATASETS / "mnist").exists():
        pytest.skip(f"MNIST is not in {SHARED_DATASETS}")
    res = qs("datasets", "fetch", "mnist", "--data-dir", str(SHARED_DATASETS))
    assert res.returncode == 0 and res.stdout.count("ok  ") == 4, res.stderr
    assert_bad_input(qs("datasets", "fetch", "mnits"), "unknown dataset 'mnits'")


def test_train_eval_and_cost(tmp_path):
    ckpt = tmp_path / "cnn.pt"
    res = qs("train", "digits-cnn", "--epochs", "1", "--batch-size", "64", "--out", str(ckpt))
    assert res.returncode == 0 and ckpt.is_file() and "checkpoint written" in res.stdout, res.stderr
    assert_bad_input(qs("train", "digits-cnn", "--epochs", "1", "--out", str(ckpt)), "exists; pass --force")
    assert_bad_input(qs("train", "digits-cnn", "--out", str(tmp_path)), "is a folder")
    assert_bad_input(qs("train", "lenett"), "unknown model 'lenett' (did you mean 'lenet'?)")

    ev = json.loads(qs("eval", str(ckpt), "--plan", "fixed<8,4>,fixed<8,auto>", "--json").stdout)
    assert ev["plan"] == "default: weights=fixed<8,4>, data=fixed<8,auto>" and 0 < ev["accuracy"] <= 1 and ev["macs_emulated"] == 1.0
    assert_bad_input(qs("eval", str(ckpt), "--plan", "fixed<8"), "cannot parse format 'fixed<8'")
    assert_bad_input(qs("eval", str(tmp_path / "none.pt")), "none.pt")

    c = json.loads(qs("cost", "lenet", "--plan", "fixed<8,auto>", "--json").stdout)
    assert c["totals"]["macs"] == sum(r["macs"] for r in c["layers"]) and c["totals"]["macs_emulated"] == 1.0
    table = qs("cost", "lenet", "--plan", "fixed<8,auto>").stdout
    assert "lenet under [weights=fixed<8,auto>, data=fixed<8,auto>] on hashemi65" in table and "total" in table
    bad_table = tmp_path / "tech.yaml"
    bad_table.write_text("name: mine\nneurons: 16\n")
    assert_bad_input(qs("cost", "lenet", "--hardware", str(bad_table)), "tech.yaml lacks clock_hz")
    bad_plan = tmp_path / "plan.yaml"
    bad_plan.write_text("default: {weights: [unclosed\n")
    assert_bad_input(qs("cost", "lenet", "--plan", str(bad_plan)), "plan.yaml is not valid YAML")


def test_study_then_report(tmp_path):
    cfg = tmp_path / "study.yaml"
    cfg.write_text(yaml.safe_dump(STUDY))
    out = tmp_path / "out"
    res = qs("study", str(cfg), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "2 points evaluated" in res.stdout and (out / "report" / "index.html").is_file()
    assert_bad_input(qs("study", str(cfg), "--out", str(out)), "--resume")
    rep = qs("report", str(out), "--out", str(tmp_path / "rep"))
    assert rep.returncode == 0 and (tmp_path / "rep" / "index.html").is_file() and "report: " in rep.stdout
    assert_bad_input(qs("report", str(tmp_path)), "not a study folder")
    assert_bad_input(qs("study", str(tmp_path / "missing.yaml")), "missing.yaml")
    assert_bad_input(qs("study", str(cfg), "--executor", "threads"), "unknown executor 'threads'")
    assert "--workers" in qs("study", "--help").stdout


def test_demo_runs_offline_and_prints_the_report(tmp_path):
    res = qs("demo", "--out", str(tmp_path / "demo"))
    assert res.returncode == 0, res.stderr
    path = Path(res.stdout.strip().splitlines()[-1].removeprefix("report: "))
    assert path.is_file() and path.name == "index.html"
    runs = {r for r, _, _ in stored(tmp_path / "demo", "digits-demo")["runs"]}
    assert runs >= {"hashemi-precisions", "custom-floats", "judd-greedy", "sakr-bounds"}
