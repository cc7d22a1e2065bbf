"""Precision search: sweeps, sensitivity, greedy descent, accuracy prediction, analytical bounds."""

from .bounds import LayerRange, SakrBounds, fixed_format, layer_ranges, linearized_mismatch, noise_mismatch, sakr_bounds, sakr_sweep
from .descent import JUDD_UNIFORM_WIDTHS, JuddResult, Sign, data_plan, greedy, judd_descent, ladder_greedy, ladder_plan
from .evaluate import COST_MODELS, Budget, BudgetExhausted, Evaluator, InProcess, Point, Qat, evaluate_many
from .frontier import pareto
from .grids import fixed_formats, float_formats, sweep, uniform_plans
from .one_at_a_time import format_sensitivity, sensitivity
from .predictor import LinearAccuracyModel, PredictorResult, hill_search
from .result import SearchResult, labelled

__all__ = [
    "COST_MODELS", "JUDD_UNIFORM_WIDTHS", "Budget", "BudgetExhausted", "Evaluator", "InProcess", "LayerRange", "LinearAccuracyModel", "Point", "Qat",
    "JuddResult", "Sign", "PredictorResult", "judd_descent", "SakrBounds", "SearchResult", "data_plan", "evaluate_many", "fixed_format",
    "fixed_formats", "float_formats", "greedy", "hill_search", "labelled", "layer_ranges", "linearized_mismatch", "noise_mismatch",
    "pareto", "sakr_bounds", "sakr_sweep", "sensitivity", "format_sensitivity", "ladder_greedy", "ladder_plan", "sweep", "uniform_plans",
]
