"""Reports: published numbers beside ours with differences, self-contained HTML, figures as
files, and the page rendered by a real headless Chromium (screenshot checked for the plots)."""

import colorsys
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from conftest import SHARED_DATASETS
from PIL import Image

from quantscope import published
from quantscope.cost import MacModel
from quantscope.report import figures, load_results, report_tables, write_report
from quantscope.study import run_study

LENET = {
    "name": "lenet-check",
    "dataset": {"name": "mnist", "eval_split": "val", "limit": 300},
    "model": {"name": "lenet", "checkpoint": "checkpoints/lenet-mnist.pt"},
    "evaluation": {"costs": ["traffic", "energy_uj"]},
    "runs": [
        {"name": "table4", "kind": "plans", "plans": {k: f"{w}, {d}" for k, (w, d) in published.HASHEMI_PRECISIONS.items() if k != "Fixed-Point (32,32)"}},
        {"name": "judd", "kind": "greedy", "integer_bits": [1, 2, 3, 4], "fraction_bits": [0, 1, 2]},
    ],
}


def test_lenet_tables_put_the_papers_numbers_beside_ours(tmp_path):
    if not (SHARED_DATASETS / "mnist").exists():
        pytest.skip(f"MNIST is not in {SHARED_DATASETS}")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cfg = {**LENET, "model": {**LENET["model"], "checkpoint": os.path.join(root, "checkpoints", "lenet-mnist.pt")}}
    run_study(cfg, tmp_path, data_dir=SHARED_DATASETS, progress=False, report=False, log=lambda m: None)
    results = load_results(tmp_path)
    t4, judd = report_tables(results)[1:]
    assert "published accuracy (%)" in t4.columns and "Δ accuracy" in t4.columns
    rows = {r[0]: dict(zip(t4.columns, r)) for r in t4.rows}
    names = list(published.HASHEMI_PRECISIONS)
    for label, row in rows.items():
        i = names.index(label)
        acc, energy = published.HASHEMI_ACCURACY_PCT["lenet"][i], published.HASHEMI_ENERGY_UJ["lenet"][i]
        assert row["published accuracy (%)"] == f"{acc:.2f}"
        assert float(row["Δ accuracy"]) == pytest.approx(float(row["accuracy (%)"]) - acc, abs=0.006)
        assert float(row["Δ energy (%)"]) == pytest.approx(100 * (float(row["energy (µJ per example)"]) / energy - 1), abs=0.2)
    # our accelerator model reproduces Hashemi's energies within 10.1% (issue 5)
    assert all(abs(float(r["Δ energy (%)"])) <= 10.1 for r in rows.values())
    assert rows["Floating-Point (32,32)"]["saving (%)"] == "0.00"
    assert judd.columns[-3:] == ["Judd I.F", "Judd TR", "Δ TR"]
    assert [r[0] for r in judd.rows] == ["1%", "2%", "5%", "10%"]
    assert judd.rows[0][-2] == "0.08"  # Judd Table 2, LeNet at 1%


def test_report_is_self_contained_with_figure_files(tiny_study, tmp_path):
    page = write_report(tiny_study[0], tmp_path).read_text()
    assert not re.search(r"<img[^>]+src=\"(?!data:image/png;base64,)", page), "every image is embedded"
    assert "<script" not in page and "http" not in page.split("</title>")[1].replace("https://", "")
    stems = [spec.stem for spec, _ in figures(load_results(tiny_study[0]))]
    assert stems == ["energy_pareto", "speedup_accuracy", "traffic_accuracy", "greedy_cost_accuracy", "uniform_widths",
                     "bounds_vs_bits", "sensitivity"]  # every figure the tiny study has data for
    for stem in stems:
        assert (tmp_path / f"{stem}.png").stat().st_size > 5000
        assert (tmp_path / f"{stem}.svg").read_text().lstrip().startswith("<?xml")
    assert page.count("<img") == len(stems)
    assert (tmp_path / "points.csv").read_text().startswith("run,key,labels.")


def test_every_column_of_every_table_has_a_glossary_entry_and_words_for_stored_names(tiny_study, tmp_path):
    from quantscope.report.glossary import HEADERS, explain
    from quantscope.search.evaluate import COST_MODELS

    tables = report_tables(load_results(tiny_study[0]))
    columns = {c for t in tables for c in t.columns if c}
    assert {"data traffic (× float32)", "energy (µJ per example)", "greedy data traffic (× float32)"} <= columns
    assert not [c for c in columns if explain(c) is None], "columns without a glossary entry"
    assert not columns & set(COST_MODELS), "a header shows a stored name instead of words"
    assert set(COST_MODELS) <= set(HEADERS) and all(explain(HEADERS[c]) for c in COST_MODELS)
    page = write_report(tiny_study[0], tmp_path).read_text()
    assert "<h2>Glossary</h2>" in page and '<th title="Judd et al.' in page and "no glossary entry" not in page


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_report_renders_in_headless_chromium(tiny_study, tmp_path):
    browser = _chromium()
    if browser is None:
        if os.environ.get("QUANTSCOPE_REQUIRE_BROWSER"):
            pytest.fail("QUANTSCOPE_REQUIRE_BROWSER is set but no chromium is installed")
        pytest.skip("no Chromium here (Debian: apt-get install chromium)")
    page = write_report(tiny_study[0], tmp_path / "report")
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1500", f"--screenshot={shot}", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    img = Image.open(shot).convert("RGB")
    assert img.size == (1280, 1500)
    rgb = np.asarray(img).reshape(-1, 3).astype(int)
    # plots are the only colourful things on the page (text is black and grey, links one blue):
    # count strongly coloured pixels and the distinct hues the runs' markers and lines bring
    colourful = rgb[(rgb.max(1) - rgb.min(1)) > 80]
    hues = np.array([colorsys.rgb_to_hsv(*(c / 255))[0] for c in colourful[:: max(1, len(colourful) // 20000)]])
    bins = np.bincount((hues * 12).astype(int) % 12, minlength=12)
    assert len(colourful) > 5000, f"plots not visible: {len(colourful)} coloured pixels"
    assert (bins > 0.01 * bins.sum()).sum() >= 4, f"expected several coloured series, hue histogram {bins.tolist()}"
    assert (rgb == 255).all(1).mean() < 0.97


def test_sweep_table_puts_hills_published_mac_ratios_beside_the_model(tiny_study, tmp_path):
    import copy

    from studies import TINY

    cfg = copy.deepcopy(TINY)
    cfg["evaluation"]["costs"] = ["mac_speedup", "mac_energy_saving"]
    cfg["runs"] = [{"name": "hill", "kind": "sweep", "formats": ["float<6,7>", "float<6,8>", "float<3,2>"]}]
    run_study(cfg, tmp_path, progress=False, report=False, log=lambda m: None)
    caption = report_tables(load_results(tmp_path))[1].caption
    mac = MacModel.load()
    for fmt, speedup, saving in (("float<6,7>", 7.2, 3.4), ("float<6,8>", 5.7, 3.0)):  # Hill et al. Section 4.2
        assert f"{fmt} {mac.speedup(fmt):.2f}x speedup ({speedup}x), {mac.energy_saving(fmt):.2f}x energy saving ({saving}x)" in caption
    assert "held out" in caption
