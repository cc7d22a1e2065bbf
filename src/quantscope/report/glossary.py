"""What every column of the report means: headers in words with units for the stored metric and
cost names, and a glossary entry for every column a table can have."""

from __future__ import annotations

__all__ = ["HEADERS", "GLOSSARY", "header", "explain"]

#: stored names (cost models, task metrics) -> column header in words, with the unit
HEADERS: dict[str, str] = {
    "traffic": "data traffic (× float32)",
    "energy_uj": "energy (µJ per example)",
    "full_adders": "full adders (per example)",
    "representational_bits": "representational cost (bits per example)",
    "parameter_bits": "parameter memory (bits)",
    "mac_speedup": "MAC speedup (× float32)",
    "mac_energy_saving": "MAC energy saving (× float32)",
    "bits_per_char": "bits per character",
    "perplexity": "perplexity",
}

_COSTS = {
    "data traffic (× float32)": "Judd et al.'s memory traffic, batch limit (weights read once for a large batch, so only activations "
                                "count): bits of activations read and written between layers per example at the plan's widths, over "
                                "the same at 32 bits (lower is better; 0.25 is a quarter of the traffic).",
    "energy (µJ per example)": "Hashemi et al.'s accelerator model: MAC and memory-access energy of one example (one image, one "
                               "sequence) on their 65 nm design at the plan's widths, in microjoules.",
    "full adders (per example)": "Sakr et al.'s computational cost: one-bit full adders in the multipliers (Baugh-Wooley) and adder "
                                 "trees (ripple carry) of every dot product of one example at the plan's weight and data bits.",
    "representational cost (bits per example)": "Sakr et al.'s representational cost: bits of every product op's activation "
                                                "operands and weights of one example at the plan's widths (|A| B_A + |W| B_W).",
    "parameter memory (bits)": "Bits to store every weight and bias at the plan's widths.",
    "MAC speedup (× float32)": "Hill et al.'s MAC-unit model: multiply-accumulate throughput at the same silicon area as float32 "
                               "units (higher is faster; fixed and float formats only).",
    "MAC energy saving (× float32)": "Hill et al.'s MAC-unit model: energy of a float32 multiply-accumulate over this format's "
                                     "(higher saves more; fixed and float formats only).",
    "bits per character": "Mean cross-entropy of the next byte in bits (language models; lower is better).",
    "perplexity": "2 to the bits per character: how many equally likely next bytes the model is choosing among.",
}

GLOSSARY: dict[str, str] = {
    **_COSTS,
    "format": "The number format every op's weights and data (the sweep's targets) use, e.g. float<4,3> (4 exponent, 3 mantissa bits) "
              "or fixed<8,4> (8 bits, 4 after the point).",
    "precision": "The plan's name as the paper labels it, e.g. Fixed-Point (8,8): weight and data bits.",
    "weights": "The weights' format.",
    "data": "The activations' (inputs of every product op) format.",
    "accuracy (%)": "Top-1 accuracy on the study's evaluation examples with the plan emulated (next-byte accuracy for language models).",
    "relative": "Accuracy over the float model's accuracy (1 means no loss).",
    "mismatch (%)": "Examples whose predicted class differs from the float model's (Sakr et al.'s mismatch probability).",
    "R²": "Hill et al.'s output fidelity: coefficient of determination of the emulated network's outputs against the float outputs.",
    "saving (%)": "Energy saved against the float32 plan of the same run.",
    "published accuracy (%)": "The paper's accuracy for this plan.",
    "Δ accuracy": "Our accuracy minus the published one, in percentage points.",
    "published energy (µJ)": "The paper's energy for this plan (per image).",
    "Δ energy (%)": "Our energy relative to the published one, in percent.",
    "published saving (%)": "The paper's energy saving for this plan.",
    "Δ saving": "Our saving minus the published one, in percentage points.",
    "tolerance": "Largest accuracy loss allowed, relative to float accuracy (Judd et al.).",
    "greedy I.F per op": "The greedy search's integer.fraction bits of each op's data, in op order.",
    "greedy accuracy (%)": "Accuracy of the greedy plan.",
    "best uniform I.F": "The cheapest plan giving every op the same integer.fraction bits within the tolerance.",
    "Judd I.F": "Judd et al.'s published per-layer integer.fraction bits (Table 2).",
    "Judd TR": "Judd et al.'s published traffic ratio (Table 2).",
    "Δ TR": "Our greedy traffic ratio minus Judd's.",
    "op": "A product op of the model (convolution, linear, matmul, attention product), by its module path.",
    "weight fraction bits": "Fewest weight fraction bits, this op alone varied, that keep 99% of float accuracy.",
    "data integer bits": "Fewest data integer bits (sign included), this op alone varied, that keep 99% of float accuracy.",
    "data fraction bits": "Fewest data fraction bits, this op alone varied, that keep 99% of float accuracy.",
    "narrowest rung within 1%": "The narrowest format of a ladder run that keeps 99% of float accuracy with this op alone "
                                "moved down the ladder.",
    "worst accuracy (%)": "This op's lowest accuracy over the ladder's formats, the other ops on the top rung.",
    "format per op": "The format each op takes in the cheapest greedy plan within the tolerance.",
    "B_A": "Activation bits (Sakr et al.).",
    "B_W": "Weight bits (Sakr et al.).",
    "Theorem 1": "Sakr et al.'s first upper bound on the mismatch probability at B_A, B_W.",
    "Theorem 2": "Sakr et al.'s second (tighter) upper bound on the mismatch probability.",
    "simulated mismatch (%)": "The mismatch measured by emulating the plan.",
    "noise-model mismatch (%)": "Where a bound is below the simulated mismatch: the mismatch of the network with independent "
                                "uniform noise of one step in place of rounding (the theorems' own model).",
    "bound holds (T1 / T2)": "Whether each bound is at least the simulated mismatch; 'outside the theorems' assumptions' where it "
                             "covers the noise model but not rounding or saturation.",
    "design option": "Which bound, target and weight/activation relation chose the pair (Sakr et al.'s Table 1).",
    "bound": "The chosen theorem's bound on the mismatch probability at that pair.",
    "test error (%)": "Measured test error of the fixed-point network at that pair, on the evaluated examples.",
    "full adders (10^6)": "Sakr et al.'s computational cost per example, in millions of one-bit full adders.",
    "representational cost (10^6 bits)": "Sakr et al.'s representational cost per example (activations and weights), in millions of bits.",
    "test error bound (%)": "Float test error plus Theorem 2's bound: an upper bound on the quantized network's test error.",
}


def header(name: str) -> str:
    """A stored metric or cost name as a column header in words, with its unit."""
    return HEADERS.get(name, name)


def explain(column: str) -> str | None:
    """The glossary entry of a column header: the entry itself, or the one for a prefixed cost
    header ("greedy data traffic (× float32)")."""
    if column in GLOSSARY:
        return GLOSSARY[column]
    for prefix in ("greedy ", "uniform "):
        if column.startswith(prefix) and column[len(prefix):] in _COSTS:
            return f"{prefix.strip().capitalize()} plan's {column[len(prefix):]}: {_COSTS[column[len(prefix):]]}"
    return None
