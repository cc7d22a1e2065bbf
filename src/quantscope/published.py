"""Numbers published in the four papers, for reproduction checks and side-by-side reports."""

from __future__ import annotations

__all__ = ["HASHEMI_PRECISIONS", "HASHEMI_ENERGY_UJ", "HASHEMI_SAVINGS_PCT", "HASHEMI_ACCURACY_PCT", "JUDD_TABLE2", "HILL_POINTS"]

#: Hashemi et al. precisions "(w, in)" and the uniform plan that expresses each
HASHEMI_PRECISIONS: dict[str, tuple[str, str]] = {
    "Floating-Point (32,32)": ("float32", "float32"),
    "Fixed-Point (32,32)": ("fixed<32,auto>", "fixed<32,auto>"),
    "Fixed-Point (16,16)": ("fixed<16,auto>", "fixed<16,auto>"),
    "Fixed-Point (8,8)": ("fixed<8,auto>", "fixed<8,auto>"),
    "Fixed-Point (4,4)": ("fixed<4,auto>", "fixed<4,auto>"),
    "Powers of Two (6,16)": ("pow2<6>", "fixed<16,auto>"),
    "Binary Net (1,16)": ("binary", "fixed<16,auto>"),
}

#: Hashemi Tables IV and V: energy per image (uJ) in the order of HASHEMI_PRECISIONS; None: not reported
HASHEMI_ENERGY_UJ: dict[str, list[float | None]] = {
    "lenet": [60.74, 52.93, 24.60, 8.86, 4.31, 8.42, 3.56],
    "convnet": [754.18, 663.01, 314.05, 120.14, None, 114.70, 52.11],
    "alex": [335.68, 293.90, 136.61, 49.22, None, 46.77, 19.79],
    "alex+": [None, None, 491.32, 177.02, None, 168.21, None],
    "alex++": [None, None, 628.17, 226.32, None, 215.05, None],
}

#: Hashemi Tables IV and V: energy savings (%) against the float design of the same dataset
HASHEMI_SAVINGS_PCT: dict[str, list[float | None]] = {
    "lenet": [0, 12.86, 59.50, 85.41, 92.90, 86.13, 94.13],
    "convnet": [0, 12.09, 58.36, 84.07, None, 84.79, 93.09],
    "alex": [0, 12.45, 59.30, 85.34, None, 86.07, 94.10],
}

#: Hashemi Tables IV and V: classification accuracy (%)
HASHEMI_ACCURACY_PCT: dict[str, list[float | None]] = {
    "lenet": [99.20, 99.22, 99.21, 99.22, 95.76, 99.14, 99.40],
    "convnet": [86.77, 86.78, 86.77, 84.03, None, 84.85, 19.57],
    "alex": [81.22, 79.71, 79.77, 77.99, None, 77.03, 74.84],
    "alex+": [None, None, 81.86, 78.71, None, 77.34, None],
    "alex++": [None, None, 82.26, 75.03, None, 81.26, None],
}

#: Judd et al. Table 2 rows whose bit list has one entry per layer (the text extraction lost
#: entries in other AlexNet and GoogLeNet rows): (network, tolerance, widths, traffic ratio).
#: Widths are (I, F) pairs for LeNet and Convnet, total bits (F fixed) for the others.
JUDD_TABLE2: list[tuple[str, str, list, float]] = [
    ("lenet", "1%", [(1, 1), (3, 1), (3, 0), (3, 0)], 0.08),
    ("lenet", "2%", [(1, 1), (2, 0), (3, 0), (2, 0)], 0.06),
    ("lenet", "5%", [(1, 1), (1, 0), (2, 0), (2, 0)], 0.05),
    ("lenet", "10%", [(1, 0), (2, 1), (3, 0), (2, 0)], 0.05),
    ("cifarnet", "1%", [(8, 0), (7, 0), (7, 0), (5, 0), (5, 0)], 0.24),
    ("cifarnet", "2%", [(7, 0), (8, 0), (6, 0), (4, 0), (4, 0)], 0.22),
    ("cifarnet", "5%", [(7, 0), (8, 0), (5, 0), (3, 0), (3, 0)], 0.22),
    ("cifarnet", "10%", [(7, 0), (8, 0), (5, 0), (3, 0), (3, 0)], 0.22),
    ("alexnet", "5%", [10, 8, 8, 8, 7, 7, 5, 3], 0.28),
    ("nin", "1%", [10, 10, 9, 12, 12, 11, 11, 11, 10, 10, 10, 9], 0.32),
    ("nin", "2%", [10, 10, 9, 12, 12, 11, 11, 11, 10, 10, 10, 9], 0.32),
    ("nin", "5%", [10, 10, 10, 11, 10, 11, 11, 11, 10, 9, 9, 8], 0.32),
    ("nin", "10%", [9, 10, 9, 11, 11, 10, 10, 10, 9, 9, 9, 8], 0.30),
    ("googlenet", "2%", [13, 11, 11, 10, 12, 11, 11, 11, 11, 10, 9], 0.35),
    ("googlenet", "10%", [12, 9, 11, 11, 11, 10, 10, 10, 10, 9, 9], 0.32),
]

#: Hill et al. Section 4.2: AlexNet at 99% normalized accuracy
HILL_POINTS: list[dict] = [
    {"format": "float<6,7>", "speedup": 7.2, "energy_saving": 3.4},
    {"format": "float<6,8>", "speedup": 5.7, "energy_saving": 3.0},
]
