"""Every command of the `quantscope` command line: its output, its --json, and its one error path
(one plain line on stderr, exit 2 for bad input, nothing written). Each command runs once as a real
subprocess through the entry point; the bad-input catalogue and the listings run in-process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import SHARED_DATASETS
from studies import stored
from typer.testing import CliRunner

from quantscope import cli, results
from quantscope.store import Store

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


def invoke(*args: str) -> subprocess.CompletedProcess:
    """Run `quantscope ARGS` in this process (the command's own code path, without interpreter start-up)."""
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        res = CliRunner().invoke(cli.app, list(args))
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    return subprocess.CompletedProcess(args, res.exit_code, res.stdout, res.stderr)


def assert_bad_input(res: subprocess.CompletedProcess, *fragments: str, progress: bool = False) -> None:
    """Exit 2, nothing on stdout (unless the command reports `progress` there before it fails),
    one plain line on stderr holding every fragment."""
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert (progress or res.stdout == "") and res.stderr.count("\n") == 1 and res.stderr.startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr
    for f in fragments:
        assert f in res.stderr, (f, res.stderr)


def test_formats_table_json_and_errors():
    res = qs("formats", "fixed<8,4>", "e4m3fn", "pow2<6,0>")
    assert res.returncode == 0, res.stderr
    assert "fixed<8,4>" in res.stdout and "[-8, 7.9375]" in res.stdout
    assert "float<4,3,special=fn>" in res.stdout and "[-448, 448]" in res.stdout and "2^-30" in res.stdout
    (row,) = json.loads(invoke("formats", "fp16", "--json").stdout)
    assert row == {"format": "float<5,10>", "bits": 16, "min": -65504.0, "max": 65504.0,
                   "min_positive": 2.0**-24, "step": None, "values": 63487}
    assert_bad_input(qs("formats", "flaot<4,3>"), "did you mean 'float'")
    assert_bad_input(invoke("formats", "[red]fixed<8,4>"), "'[red]fixed<8,4>'")  # printed as given, not as markup


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


def test_train_eval_and_cost(tmp_path):
    ckpt = tmp_path / "cnn.pt"
    res = qs("train", "digits-cnn", "--epochs", "1", "--batch-size", "64", "--out", str(ckpt))
    assert res.returncode == 0 and ckpt.is_file() and "checkpoint written" in res.stdout, res.stderr

    ev = json.loads(qs("eval", str(ckpt), "--plan", "fixed<8,4>,fixed<8,auto>", "--json").stdout)
    assert ev["plan"] == "default: weights=fixed<8,4>, data=fixed<8,auto>" and 0 < ev["accuracy"] <= 1 and ev["macs_emulated"] == 1.0

    c = json.loads(qs("cost", "lenet", "--plan", "fixed<8,auto>", "--json").stdout)
    assert c["totals"]["macs"] == sum(r["macs"] for r in c["layers"]) and c["totals"]["macs_emulated"] == 1.0
    table = invoke("cost", "lenet", "--plan", "fixed<8,auto>").stdout
    assert "lenet under [weights=fixed<8,auto>, data=fixed<8,auto>] on hashemi65" in table and "total" in table
    scaled = invoke("cost", "lenet", "--plan", "mxfp4").stdout  # footprint counts scales; unpriced models say why
    assert "4.25" in scaled and "on hashemi65" in scaled and "n/a" in scaled and "full adders not priced" in scaled


def test_export_checks_the_integers_and_traces_a_neuron(tmp_path):
    res = invoke("export", "lenet", "--plan", "fixed<8,auto>", "--out", str(tmp_path / "int8"), "--data-dir", str(SHARED_DATASETS),
                 "--check", "20", "--trace", "ip2")
    assert res.returncode == 0, res.stderr
    assert "exported lenet (4 product ops)" in res.stdout and "on 20 test images: 200 of 200 outputs bit-identical" in res.stdout
    assert "ip2, output (0, 0) of the first test image: data fixed<8," in res.stdout and "final sum" in res.stdout
    assert (tmp_path / "int8" / "manifest.json").is_file() and (tmp_path / "int8" / "arrays.npz").is_file()


def test_study_then_report(tmp_path):
    cfg = tmp_path / "study.yaml"
    cfg.write_text(yaml.safe_dump(STUDY))
    out = tmp_path / "out"
    res = qs("study", str(cfg), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "2 points evaluated" in res.stdout and (out / "report" / "index.html").is_file()
    assert_bad_input(invoke("study", str(cfg), "--out", str(out)), "--resume", progress=True)
    rep = qs("report", str(out), "--out", str(tmp_path / "rep"))
    assert rep.returncode == 0 and (tmp_path / "rep" / "index.html").is_file() and "report: " in rep.stdout
    assert "--workers" in invoke("study", "--help").stdout

    listing = invoke("results", str(out))
    assert listing.returncode == 0 and "study cli-study" in listing.stdout and "2 points stored" in listing.stdout, listing.stderr
    held = json.loads(invoke("results", str(out), "--json").stdout)
    assert held["runs"] == [{"run": "floats", "kind": "sweep", "points": 2, "complete": True, "seconds": held["runs"][0]["seconds"]}]
    frame = results.load(out)
    assert list(frame["labels.label"]) == ["float<3,1>", "float<3,2>"] and frame["accuracy"].between(0, 1).all()
    for suffix in ("parquet", "csv", "json"):
        res = invoke("results", str(out), "--export", str(tmp_path / f"points.{suffix}"), "--run", "floats")
        assert res.returncode == 0 and "2 points written" in res.stdout, res.stderr
    pd = pytest.importorskip("pandas")
    assert pd.read_parquet(tmp_path / "points.parquet").equals(frame)
    assert list(pd.read_csv(tmp_path / "points.csv")["accuracy"]) == list(frame["accuracy"])
    assert [p["accuracy"] for p in json.loads((tmp_path / "points.json").read_text())] == list(frame["accuracy"])
    assert_bad_input(invoke("results", str(out), "--export", str(tmp_path / "points.xlsx")), "ending in .csv, .json, .parquet")
    assert not (tmp_path / "points.xlsx").exists() and not (tmp_path / "p.csv").exists()


def test_demo_runs_offline_and_prints_the_report(tmp_path):
    res = qs("demo", "--out", str(tmp_path / "demo"))
    assert res.returncode == 0, res.stderr
    path = Path(res.stdout.strip().splitlines()[-1].removeprefix("report: "))
    assert path.is_file() and path.name == "index.html"
    runs = {r for r, _, _ in stored(tmp_path / "demo", "digits-demo")["runs"]}
    assert runs >= {"hashemi-precisions", "custom-floats", "judd-greedy", "sakr-bounds"}


def _inputs(folder: Path) -> None:
    """The bad inputs the catalogue below names, written into `folder`."""
    import torch

    from quantscope import models
    from quantscope.train import save_checkpoint

    save_checkpoint(folder / "cnn.pt", models.create("digits-cnn"), {"model": "digits-cnn", "dataset": "digits"})
    save_checkpoint(folder / "liar.pt", models.create("digits-cnn"), {"model": "lenet", "dataset": "digits"})
    (folder / "garbage.pt").write_bytes(b"\x80\x04not a checkpoint" * 10)
    torch.save({"weights": 1}, folder / "foreign.pt")
    (folder / "bad.yaml").write_text("default: {weights: [unclosed\n")
    (folder / "list.yaml").write_text("- 1\n- 2\n")
    (folder / "bomb.yaml").write_text('a: &a ["x","x","x","x","x","x","x","x","x"]\n'
                                      + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")))
    (folder / "tech.yaml").write_text("name: mine\nneurons: 16\n")
    (folder / "a-file").write_text("not a folder\n")
    (folder / "grid.yaml").write_text(yaml.safe_dump({**STUDY, "runs": [{"name": "f", "kind": "sweep", "float": {"exponents": [9], "mantissas": [2]}}]}))
    (folder / "ops.yaml").write_text(yaml.safe_dump({**STUDY, "runs": [{"name": "s", "kind": "sensitivity", "layers": ["conv9"]}]}))
    (folder / "shape.yaml").write_text(yaml.safe_dump({**STUDY, "model": {"name": "lenet"}}))
    (folder / "study.yaml").write_text(yaml.safe_dump(STUDY))
    real = folder / "cli-study"  # a study folder with one finished run, "floats"
    real.mkdir()
    (real / "study.json").write_text(json.dumps({"config": {"name": "cli-study"}}))
    with Store(real / "results.sqlite") as store:
        store.finish_run("cli-study", "floats", "sweep", {})
    fake = folder / "fake-study"
    fake.mkdir()
    (fake / "study.json").write_text("{not json")


BAD_INPUTS = [
    (["formats", "fixed<8,9x>"], "frac must be an integer, got '9x'"),
    (["formats", "[bold]e4m3"], "'[bold]e4m3'"),
    (["datasets", "fetch", "mnits"], "unknown dataset 'mnits'"),
    (["train", "lenett"], "unknown model 'lenett' (did you mean 'lenet'?)"),
    (["train", "digits-cnn", "--out", "cnn.pt"], "cnn.pt exists; pass --force"),
    (["train", "digits-cnn", "--out", "cli-study"], "is a folder"),
    (["train", "digits-cnn", "--out", "a-file/x.pt"], "a-file"),
    (["train", "digits-cnn", "--out", "/proc/quantscope/x.pt"], "/proc/quantscope"),
    (["train", "lenet", "--dataset", "digits", "--out", "new.pt"], "model lenet cannot take digits's inputs of shape (1, 8, 8)"),
    (["eval", "missing.pt"], "checkpoint 'missing.pt' does not exist"),
    (["eval", "garbage.pt"], "garbage.pt cannot be loaded safely"),
    (["eval", "foreign.pt"], "foreign.pt is not a quantscope checkpoint"),
    (["eval", "liar.pt"], "checkpoint liar.pt does not fit model lenet (it holds 'lenet')"),
    (["eval", "cnn.pt", "--plan", "fixed<8"], "cannot parse format 'fixed<8'"),
    (["eval", "cnn.pt", "--plan", "bad.yaml"], "bad.yaml is not valid YAML"),
    (["eval", "cnn.pt", "--dataset", "fortunes", "--data-dir", str(SHARED_DATASETS)], "model digits-cnn cannot take fortunes's inputs"),
    (["cost", "lenet", "--hardware", "tech.yaml"], "tech.yaml lacks clock_hz"),
    (["cost", "lenet", "--plan", "fixed<8,4>, fixed<8,4>, fixed<8,4>"], "got 3 parts"),
    (["study", "missing.yaml"], "'missing.yaml' does not exist"),
    (["study", "list.yaml"], "is a mapping"),
    (["study", "bomb.yaml"], "expands to more than 100,000 values through its aliases"),
    (["study", "grid.yaml", "--out", "g"], "float<9,2>: largest exponent"),
    (["study", "ops.yaml", "--out", "o"], "run 's': unknown op 'conv9'"),
    (["study", "shape.yaml", "--out", "s"], "model lenet cannot take digits's inputs"),
    (["study", "study.yaml", "--out", "a-file"], "a-file is a file, not a folder"),
    (["study", "study.yaml", "--out", "/proc/quantscope"], "/proc/quantscope"),
    (["study", "study.yaml", "--out", "e", "--executor", "threads"], "unknown executor 'threads'"),
    (["study", "study.yaml", "--out", "w", "--workers", "0"], "--workers"),
    (["export", "digits-cnn", "--plan", "float<4,3>", "--out", "x"], "weights: float<4,3> has no integer form"),
    (["export", "lenet", "--plan", "fixed<8,4>", "--out", "x", "--dataset", "digits"], "model lenet cannot take digits's inputs"),
    (["export", "lenet", "--plan", "fixed<8,4>", "--out", "x", "--format", "tflite"], "unknown export format 'tflite'; allowed: npz, qonnx, onnx-qdq"),
    (["export", "lenet", "--plan", "fixed<8,4>", "--out", "x", "--format", "qonnx", "--check", "10"], "--check and --trace run the integer executor"),
    (["export", "cnn.pt", "--plan", "fixed<8,4>", "--out", "x", "--trace", "conv9"], "--trace 'conv9': no product op of that name"),
    (["report", "nowhere"], "nowhere is not a study folder"),
    (["report", "fake-study"], "study.json is not a study description written by quantscope"),
    (["results", "fake-study"], "study.json is not a study description written by quantscope"),
    (["results", "nowhere", "--json"], "nowhere is not a study folder"),
    (["results", "cli-study", "--export", "p.csv", "--run", "flaots"], "no finished run 'flaots'"),
]


def test_every_subcommand_answers_bad_input_with_one_line_and_writes_nothing(tmp_path, monkeypatch):
    _inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for args, fragment in BAD_INPUTS:
        res = invoke(*args)
        if "--workers" in args:  # the option parser's own usage error: exit 2 on stderr, no traceback
            assert res.returncode == 2 and "Traceback" not in res.stderr and fragment in res.stderr, res.stderr
        else:
            assert_bad_input(res, fragment, progress=args[0] == "study")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before, "a bad input left files behind"
    assert_bad_input(qs("eval", "liar.pt", cwd=tmp_path), "does not fit model lenet")  # the same line through the entry point


def test_version_short_help_and_debug_after_the_subcommand():
    assert qs("--version").stdout.startswith("quantscope ")
    assert "Usage: quantscope study" in " ".join(qs("study", "-h").stdout.split())
    res = qs("formats", "fixed<0,4>", "--debug")
    assert res.returncode == 1 and "Traceback" in res.stderr and "ValueError" in res.stderr
