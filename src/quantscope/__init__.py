"""quantscope: how few bits can this network use, in which number format, and what does it buy?"""

from . import arith
from .arith import trace_accumulation
from .emulation import EmulatedModel, LayerStats, OpInfo, OpTable, emulate, fold_batchnorm, layers, observe
from .formats import ALIASES, Binary, FixedPoint, Float32, Format, MiniFloat, PowerOfTwo, ScaledFormat, as_format, parse_format
from .plan import LayerPrecision, PrecisionPlan
from .quantization import ROUNDING_MODES, Blocks, quantize, quantize_blocks, quantize_ste, release_scratch

LayerInfo = OpInfo  # the name before ops replaced layers

__version__ = "0.1.0"

__all__ = [
    "ALIASES",
    "EmulatedModel",
    "LayerInfo",
    "OpInfo",
    "OpTable",
    "LayerPrecision",
    "LayerStats",
    "PrecisionPlan",
    "arith",
    "emulate",
    "fold_batchnorm",
    "layers",
    "observe",
    "trace_accumulation",
    "Binary",
    "FixedPoint",
    "Float32",
    "Format",
    "MiniFloat",
    "PowerOfTwo",
    "ScaledFormat",
    "Blocks",
    "ROUNDING_MODES",
    "as_format",
    "parse_format",
    "quantize",
    "quantize_blocks",
    "quantize_ste",
    "release_scratch",
    "__version__",
]
