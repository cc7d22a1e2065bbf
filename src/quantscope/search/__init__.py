"""Precision search: sweeps, sensitivity, greedy descent, accuracy prediction, analytical bounds."""

from .bounds import LayerRange, SakrBounds, fixed_format, layer_ranges, sakr_bounds
from .evaluate import COST_MODELS, Budget, BudgetExhausted, Evaluator, InProcess, Point, evaluate_many
from .predictor import LinearAccuracyModel, PredictorResult, hill_search
from .strategies import SearchResult, data_plan, labelled, fixed_formats, float_formats, greedy, pareto, sensitivity, sweep, uniform_plans

__all__ = [
    "COST_MODELS", "Budget", "BudgetExhausted", "Evaluator", "InProcess", "LayerRange", "LinearAccuracyModel", "Point",
    "PredictorResult", "SakrBounds", "SearchResult", "data_plan", "evaluate_many", "fixed_format", "fixed_formats",
    "float_formats", "greedy", "hill_search", "labelled", "layer_ranges", "pareto", "sakr_bounds", "sensitivity", "sweep", "uniform_plans",
]
