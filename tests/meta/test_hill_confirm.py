"""experiments/hill_confirm.py: which formats it re-evaluates on 9,000 images, and that the committed
confirm config is the one the committed 1,000-image store gives."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
sys.path.insert(0, str(EXPERIMENTS))
import hill_confirm  # noqa: E402


def _points(*rows: tuple[str, float, float]) -> dict[str, dict]:
    return {f: {"normalized": acc, "speedup": speed} for f, acc, speed in rows}


def test_candidates_are_the_faster_near_misses_the_choice_and_one_slower_pass():
    points = _points(("a", 0.50, 40.0),   # far below: not a candidate
                     ("b", 0.975, 30.0),  # within the margin below 0.99
                     ("c", 0.995, 20.0),  # the choice
                     ("d", 0.985, 20.0),  # as fast as the choice, within the margin
                     ("e", 0.999, 10.0),  # the next slower pass
                     ("f", 1.000, 5.0))   # slower still: not needed
    assert hill_confirm.candidates(points, 0.99, 0.02) == ["b", "c", "d", "e"]


def test_candidates_of_a_sweep_where_nothing_meets_the_threshold_are_none():
    assert hill_confirm.candidates(_points(("a", 0.5, 40.0), ("b", 0.9, 10.0)), 0.99, 0.02) == []


def test_the_committed_cifarnet_confirm_config_follows_from_the_committed_store():
    source = hill_confirm.read_yaml(hill_confirm.CONFIGS / "hill_cifarnet.yaml")
    first = hill_confirm.study_sweeps("hill-cifarnet")
    if first is None:
        pytest.skip("the hill-cifarnet store is not in this checkout")
    chosen = hill_confirm.choose(hill_confirm.results.study_info(hill_confirm.RESULTS / "studies" / "hill-cifarnet"), first)
    assert chosen["floats-nearest"][-2:] == ["float<4,5>", "float<5,5>"]  # the 1,000-image choice and the next slower
    expected = hill_confirm.confirm_config("cifarnet", source, chosen)
    assert (hill_confirm.CONFIGS / "hill_cifarnet_confirm.yaml").read_text() == expected
