"""Emulation by operation: every product and element-wise op a model executes, under a plan.

`emulate(model, plan)` returns an `EmulatedModel`; `layers(model, x)` lists the ops; `observe`
collects operand statistics; `fold_batchnorm` folds BatchNorms where that is exact. How it works:
`mode` intercepts torch calls, `calls`, `attention` and `recurrent` say what each computes,
`scopes` names ops from the running modules, `tracing` records a float pass, `emulator` computes
under the plan (see docs/emulation.md).
"""

from .batchnorm import fold_batchnorm
from .emulator import OpSpec
from .model import EmulatedModel, OpTable, emulate, layers
from .stats import LayerStats, observe
from .tracing import OpInfo, Trace, eval_mode, trace

__all__ = ["EmulatedModel", "LayerStats", "OpInfo", "OpSpec", "OpTable", "Trace", "emulate", "eval_mode", "fold_batchnorm",
           "layers", "observe", "trace"]
