"""Precision search: sweeps, sensitivity, greedy descent, accuracy prediction, analytical bounds."""

from .bounds import LayerRange, SakrBounds, fixed_format, layer_ranges, linearized_mismatch, noise_mismatch, sakr_bounds, sakr_sweep
from .evaluate import COST_MODELS, Budget, BudgetExhausted, Evaluator, InProcess, Point, Qat, evaluate_many
from .predictor import LinearAccuracyModel, PredictorResult, hill_search
from .strategies import JuddResult, SearchResult, data_plan, judd_descent, labelled, fixed_formats, float_formats, greedy, pareto, sensitivity, sweep, uniform_plans

__all__ = [
    "COST_MODELS", "Budget", "BudgetExhausted", "Evaluator", "InProcess", "LayerRange", "LinearAccuracyModel", "Point", "Qat",
    "JuddResult", "PredictorResult", "judd_descent", "SakrBounds", "SearchResult", "data_plan", "evaluate_many", "fixed_format", "fixed_formats",
    "float_formats", "greedy", "hill_search", "labelled", "layer_ranges", "linearized_mismatch", "noise_mismatch", "pareto", "sakr_bounds", "sakr_sweep", "sensitivity", "sweep", "uniform_plans",
]
