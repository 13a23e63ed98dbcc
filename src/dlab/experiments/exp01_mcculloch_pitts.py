"""Experiment 1: McCulloch-Pitts threshold units (1.1) and polynomial roots with tensors (1.2).

A McCulloch-Pitts unit (McCulloch and Pitts 1943) takes binary inputs x, integer
weights w and a threshold theta and fires, y = 1, exactly when w . x >= theta.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from dlab.registry import Implementation
from dlab.runs import RunContext
from dlab.verdicts import Target

# ---------------------------------------------------------------- 1.1 the unit


def all_inputs(n: int) -> np.ndarray:
    """Every binary input of n bits in counting order, shape (2^n, n)."""
    return np.array(list(itertools.product((0, 1), repeat=n)), dtype=np.int64)


def mp_unit(x: np.ndarray, weights: np.ndarray, threshold: float) -> np.ndarray:
    """y = [w . x >= theta] for inputs x (N, n); returns (N,) of 0/1."""
    return (x @ np.asarray(weights) >= threshold).astype(np.int64)


@dataclass(frozen=True)
class ThresholdUnit:
    """One McCulloch-Pitts unit: integer weights (n,) and a threshold; `unit(x)` returns
    its outputs (N,) of 0/1 on binary inputs x (N, n)."""

    weights: np.ndarray
    threshold: int

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return mp_unit(x, self.weights, self.threshold)

    def __repr__(self) -> str:
        return (f"ThresholdUnit(weights={list(map(int, self.weights))}, "
                f"threshold={int(self.threshold)})  fires when w . x >= threshold")


def gate_units(n: int) -> dict[str, ThresholdUnit]:
    """One unit per gate, weights and threshold set by hand, for n inputs (NOT uses the
    first input)."""
    ones = np.ones(n, dtype=np.int64)
    return {
        "AND": ThresholdUnit(ones, n),          # fires only when all n inputs are 1
        "OR": ThresholdUnit(ones, 1),           # fires when any input is 1
        "NAND": ThresholdUnit(-ones, 1 - n),    # -sum(x) >= 1 - n  <=>  sum(x) <= n - 1
        "NOR": ThresholdUnit(-ones, 0),         # -sum(x) >= 0      <=>  no input is 1
        "NOT": ThresholdUnit(np.eye(1, n, dtype=np.int64)[0] * -1, 0),  # x1 == 0
    }


def gate_targets(x: np.ndarray) -> dict[str, np.ndarray]:
    """The truth tables the units must reproduce, computed with Boolean logic."""
    s = x.sum(axis=1)
    n = x.shape[1]
    return {"AND": (s == n).astype(int), "OR": (s >= 1).astype(int),
            "NAND": (s < n).astype(int), "NOR": (s == 0).astype(int),
            "NOT": 1 - x[:, 0], "XOR": s % 2}


def search_single_units(n: int, max_weight: int) -> tuple[set[int], int]:
    """Every Boolean function of n inputs that one unit with integer weights in
    [-max_weight, max_weight] and an integer threshold can compute.

    Functions are encoded as integers: bit i is the output on input row i of
    `all_inputs(n)`. Returns (set of functions, number of (w, theta) candidates).
    Thresholds beyond +-(n * max_weight + 1) add nothing new, so they are not tried.
    """
    x = all_inputs(n)                                              # (R, n)
    w = np.array(list(itertools.product(range(-max_weight, max_weight + 1), repeat=n)))
    t = np.arange(-n * max_weight, n * max_weight + 2)             # (T,)
    fires = (x @ w.T)[:, :, None] >= t[None, None, :]              # (R, K, T)
    bits = (1 << np.arange(len(x), dtype=np.int64))[:, None, None]
    codes = (fires * bits).sum(axis=0).ravel()                     # (K*T,)
    return set(np.unique(codes).tolist()), len(w) * len(t)


def encode(outputs: np.ndarray) -> int:
    return int((outputs.astype(np.int64) << np.arange(len(outputs))).sum())


def parity_network(x: np.ndarray) -> np.ndarray:
    """Two layers of units computing XOR (parity) of n inputs.

    Hidden unit k (k = 1..n) fires when at least k inputs are on: h_k = [sum x >= k].
    The output unit weights them +1, -1, +1, ... with threshold 1, so it fires exactly
    when an odd number of hidden units (= inputs on) fire. For n = 2 this is the
    textbook OR-and-NAND construction in another guise.
    """
    n = x.shape[1]
    hidden = np.stack([mp_unit(x, np.ones(n), k) for k in range(1, n + 1)], axis=1)
    signs = np.array([(-1) ** k for k in range(n)])                # +1, -1, +1, ...
    return mp_unit(hidden, signs, 1)


def xor_or_nand_and(x: np.ndarray) -> np.ndarray:
    """XOR of two inputs as AND(OR(x1, x2), NAND(x1, x2))."""
    units = gate_units(2)
    h = np.stack([units["OR"](x), units["NAND"](x)], axis=1)
    return units["AND"](h)


# Number of Boolean functions of n inputs that a single threshold unit computes
# (Muroga, "Threshold Logic and its Applications", 1971): n = 1..5.
THRESHOLD_FUNCTIONS = {1: 4, 2: 14, 3: 104, 4: 1882, 5: 94572}


def nonnegative_nand(max_weight: int) -> tuple[int, int]:
    """(number of (w1, w2, theta) with integer weights in [0, max_weight] that compute
    NAND of two inputs, number tried)."""
    x2 = all_inputs(2)
    w2 = np.array(list(itertools.product(range(0, max_weight + 1), repeat=2)))
    t2 = np.arange(-2 * max_weight, 2 * max_weight + 2)
    fires = (x2 @ w2.T)[:, :, None] >= t2[None, None, :]              # (4, K, T)
    hits = int((fires == gate_targets(x2)["NAND"][:, None, None]).all(axis=0).sum())
    return hits, int(len(w2) * len(t2))


def xor_pairs(max_weight: int) -> tuple[int, int]:
    """(number of (w1, w2, theta) with integer weights in [-max_weight, max_weight] that
    compute XOR of two inputs, number tried), counted one candidate at a time."""
    x2 = all_inputs(2)
    w2 = np.array(list(itertools.product(range(-max_weight, max_weight + 1), repeat=2)))
    t2 = np.arange(-2 * max_weight, 2 * max_weight + 2)
    fires = (x2 @ w2.T)[:, :, None] >= t2[None, None, :]              # (4, K, T)
    hits = int((fires == gate_targets(x2)["XOR"][:, None, None]).all(axis=0).sum())
    return hits, int(len(w2) * len(t2))


@dataclass
class MPConfig:
    n_inputs: int = 3  # inputs of the gates whose truth tables are printed
    max_weight: int = 2  # weights searched: integers in [-max_weight, max_weight]

    def validate(self) -> None:
        if not 1 <= self.n_inputs <= 4:
            raise ValueError(f"n_inputs must be 1 to 4, got {self.n_inputs}")
        if not 1 <= self.max_weight <= 4:
            raise ValueError(f"max_weight must be 1 to 4, got {self.max_weight}")


def score_gates(cfg: MPConfig, x: np.ndarray, units: dict[str, ThresholdUnit]) -> dict:
    """Every measured fact of 1.1 as plain values: the units' truth tables on the inputs
    x (2^n, n), the search over weights, XOR."""
    n = x.shape[1]
    targets = gate_targets(x)
    outputs = {g: unit(x) for g, unit in units.items()}
    outputs["XOR (2 layers)"] = parity_network(x)
    correct = {g: bool(np.array_equal(outputs[g], targets[g])) for g in units}
    correct["XOR (2 layers)"] = bool(np.array_equal(outputs["XOR (2 layers)"], targets["XOR"]))
    x2 = all_inputs(2)
    search = []
    for m in range(1, n + 1):
        funcs, candidates = search_single_units(m, cfg.max_weight)
        parity = encode(gate_targets(all_inputs(m))["XOR"])
        search.append({"inputs": m, "tried": candidates, "functions": 2 ** (2 ** m),
                       "found": len(funcs), "known": THRESHOLD_FUNCTIONS.get(m),
                       "parity_found": parity in funcs})
    hits, tried = xor_pairs(cfg.max_weight)
    nand_hits, nand_tried = nonnegative_nand(cfg.max_weight)
    return {"nand_nonnegative_hits": nand_hits, "nand_nonnegative_tried": nand_tried,"x": x, "units": units, "outputs": outputs, "correct": correct,
            "manual_nand": mp_unit(x2, np.array([1, 1]), 2),
            "manual_is_and": bool(np.array_equal(mp_unit(x2, np.array([1, 1]), 2),
                                                 gate_targets(x2)["AND"])),
            "two_layer_xor": bool(np.array_equal(xor_or_nand_and(x2),
                                                 gate_targets(x2)["XOR"])),
            "search": search, "xor_hits": hits, "xor_tried": tried}


def gates_metrics(s: dict) -> dict:
    return {
        "n_inputs": int(s["x"].shape[1]),
        "all_gates_correct": all(s["correct"].values()),
        "xor_single_unit_solutions": s["xor_hits"],
        "xor_candidates_tried": s["xor_tried"],
        "two_layer_xor_correct": s["two_layer_xor"] and s["correct"]["XOR (2 layers)"],
        "manual_nand_computes_and": s["manual_is_and"],
        "nand_nonnegative_solutions": s["nand_nonnegative_hits"],
        "functions_by_one_unit": {str(r["inputs"]): r["found"] for r in s["search"]},
        "search_matches_known_counts": all(r["found"] == r["known"] for r in s["search"]),
    }


def gates_figure() -> object:
    """The two-input gates with their decision lines, the manual's 'NAND', and XOR."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x2 = all_inputs(2)
    units = gate_units(2)
    fig, axes = plt.subplots(1, 6, figsize=(15, 2.9))
    panels = [(g, units[g].weights, units[g].threshold) for g in ("AND", "OR", "NAND", "NOR")]
    panels += [("manual 'NAND'", np.array([1, 1]), 2), ("XOR", None, None)]
    grid = np.linspace(-0.5, 1.5, 2)
    for ax, (name, w, t) in zip(axes, panels, strict=True):
        y = mp_unit(x2, w, t) if w is not None else gate_targets(x2)["XOR"]
        ax.scatter(x2[:, 0], x2[:, 1], c=["white" if v == 0 else "black" for v in y],
                   edgecolors="black", s=120, zorder=3)
        if w is not None:
            ax.plot(grid, (t - w[0] * grid) / w[1], color="tab:red")
            ax.set_title(f"{name}\nw={list(map(int, w))}, θ={t}", fontsize=9)
        else:
            ax.set_title("XOR targets\n(no unit drawn)", fontsize=9)
        ax.set(xlim=(-0.5, 1.5), ylim=(-0.5, 1.5), aspect="equal", xticks=[0, 1],
               yticks=[0, 1])
    return fig


def write_gates(cfg: MPConfig, ctx: RunContext, s: dict) -> None:
    n = cfg.n_inputs
    outputs = s["outputs"]
    rows = [[*map(int, xi)] + [int(outputs[g][i]) for g in outputs]
            for i, xi in enumerate(s["x"])]
    ctx.table(f"Truth tables of the units for n = {n} inputs",
              [f"x{i + 1}" for i in range(n)] + list(outputs), rows)
    ctx.table("The units: weights and threshold (fires when w . x >= threshold)",
              ["gate", "weights", "threshold", "matches truth table"],
              [[g, list(map(int, u.weights)), int(u.threshold), s["correct"][g]]
               for g, u in s["units"].items()])
    ctx.table(f"Exhaustive search over integer weights in [-{cfg.max_weight}, "
              f"{cfg.max_weight}]",
              ["inputs", "(w, theta) tried", "Boolean functions", "computed by one unit",
               "threshold functions (Muroga 1971)", "XOR/parity found"],
              [[r["inputs"], r["tried"], r["functions"], r["found"], r["known"] or "?",
                "yes" if r["parity_found"] else "no"] for r in s["search"]])
    ctx.figure(gates_figure(), "gates.png", "Two-input units: filled points fire; the red "
               "line is w . x = theta. The manual's 'NAND' is drawn with its own weights; the "
               "last panel shows XOR's targets only (filled: 1), with no unit.")


def judge_gates(cfg: MPConfig, ctx: RunContext, s: dict) -> None:
    m = ctx.metrics
    n = cfg.n_inputs
    ctx.claim(f"Every gate unit reproduced its truth table on all {2 ** n} inputs.",
              m["all_gates_correct"],
              otherwise="Not every gate unit reproduced its truth table: "
              + ", ".join(g for g, ok in s["correct"].items() if not ok) + " did not.",
              correct=s["correct"])
    ctx.claim(f"None of the {s['xor_tried']} weight/threshold pairs tried for two inputs "
              f"(integer weights in [-{cfg.max_weight}, {cfg.max_weight}]) computes XOR.",
              s["xor_hits"] == 0,
              otherwise=f"{s['xor_hits']} of the {s['xor_tried']} weight/threshold pairs "
              "tried compute XOR.", solutions=s["xor_hits"], tried=s["xor_tried"])
    ctx.background("No single threshold unit computes XOR for any real weights: a unit fires "
                   "on one side of a line, and the segments joining XOR's 1-points (01, 10) "
                   "and its 0-points (00, 11) cross at (0.5, 0.5), so no line separates them.",
                   "Minsky and Papert 1969, Perceptrons")
    found = ", ".join(f"{r['found']} of {r['functions']} functions of {r['inputs']} "
                      f"input{'s' if r['inputs'] > 1 else ''}" for r in s["search"])
    ctx.claim(f"One unit computes {found}: exactly the known numbers of threshold "
              "functions, so the search range holds every one of them.",
              m["search_matches_known_counts"],
              otherwise=f"One unit computes {found}; the known numbers of threshold functions "
              "are " + ", ".join(str(r["known"]) for r in s["search"]) + ": weights in "
              f"[-{cfg.max_weight}, {cfg.max_weight}] do not reach them all.",
              found=m["functions_by_one_unit"])
    ctx.claim("Two layers compute XOR: OR and NAND feeding AND on two inputs, and the "
              f"parity network on {n} inputs, on every input.", m["two_layer_xor_correct"],
              otherwise="The two-layer XOR networks did NOT reproduce XOR on every input.",
              or_nand_and=s["two_layer_xor"], parity=s["correct"]["XOR (2 layers)"])
    ctx.claim(f"The manual's NAND (weights 1, 1, threshold 2) outputs "
              f"{s['manual_nand'].tolist()} on 00, 01, 10, 11: that is AND.",
              m["manual_nand_computes_and"],
              otherwise=f"The manual's NAND outputs {s['manual_nand'].tolist()}, not AND.")
    ctx.claim(f"None of the {s['nand_nonnegative_tried']} pairs with non-negative weights in "
              f"[0, {cfg.max_weight}] computes NAND; the unit with w = (-1, -1) and threshold "
              "-1 does (its truth table above).",
              s["nand_nonnegative_hits"] == 0 and s["correct"]["NAND"],
              otherwise=f"{s['nand_nonnegative_hits']} of the {s['nand_nonnegative_tried']} "
                        f"pairs with non-negative weights in [0, {cfg.max_weight}] compute NAND.",
              solutions=s["nand_nonnegative_hits"], tried=s["nand_nonnegative_tried"])


def run_mcculloch_pitts(cfg: MPConfig, ctx: RunContext) -> None:
    # step data: every binary input of n bits
    x = all_inputs(cfg.n_inputs)
    ctx.data(f"All {2 ** cfg.n_inputs} binary inputs of {cfg.n_inputs} bits (no data set: "
             "the unit is checked on every possible input).")
    # step model: one threshold unit per gate, weights and threshold set by hand
    units = gate_units(cfg.n_inputs)
    # step score: truth tables, the search over weights, and XOR with one and two layers
    s = score_gates(cfg, x, units)
    ctx.metrics.update(gates_metrics(s))
    # step judge: sentences from the scores
    judge_gates(cfg, ctx, s)
    # step write: truth tables, the units, the search and the decision lines
    write_gates(cfg, ctx, s)


MCCULLOCH_PITTS = Implementation(
    config=MPConfig, run=run_mcculloch_pitts,
    profiles={"smoke": {"n_inputs": 2, "max_weight": 1}, "full": {"n_inputs": 4,
                                                                  "max_weight": 3}},
    targets=(
        Target("xor_single_unit_solutions", equals=0,
               why="no single threshold unit computes XOR"),
        Target("all_gates_correct", equals=True,
               why="every gate unit matches its truth table on every input"),
        Target("two_layer_xor_correct", equals=True, why="two layers of units compute XOR"),
        Target("manual_nand_computes_and", equals=True,
               why="the manual's NAND unit is shown to compute AND"),
    ),
    crippled="nothing is trained: every unit's weights and threshold are set by hand and "
             "checked on every possible input",
)

# ------------------------------------------------------------- 1.2 polynomial roots


def solve_quadratic(a, b, c, rel_tol: float = 1e-12):
    """Roots of a x^2 + b x + c = 0 for tensors of coefficients, with tensor operations.

    a, b, c: float tensors of one shape S. Returns (roots, count):
      roots (*S, 2) complex128, NaN where a root does not exist;
      count (*S,) int: 2 (quadratic), 1 (linear: a = 0), 0 (no root: a = b = 0, c != 0),
      -1 (every x is a root: a = b = c = 0).
    The quadratic case uses the cancellation-free form q = -(b + s sqrt(D)) / 2 with s
    chosen so that |b + s sqrt(D)| is largest, x1 = q / a, x2 = c / q (Press et al.,
    Numerical Recipes, section 5.6); D = b^2 - 4ac may be negative (complex roots).
    """
    import torch

    a, b, c = (torch.as_tensor(v, dtype=torch.float64) for v in (a, b, c))
    a, b, c = torch.broadcast_tensors(a, b, c)
    disc = b * b - 4 * a * c
    scale = torch.maximum(b * b, (4 * a * c).abs())
    disc = torch.where(disc.abs() <= rel_tol * scale, torch.zeros_like(disc), disc)
    sqrt_d = torch.sqrt(disc.to(torch.complex128))
    bc = b.to(torch.complex128)
    plus, minus = bc + sqrt_d, bc - sqrt_d
    big = torch.where(plus.abs() >= minus.abs(), plus, minus)
    q = -0.5 * big
    quad = a != 0
    safe_a = torch.where(quad, a, torch.ones_like(a)).to(torch.complex128)
    q_zero = q == 0  # b = 0 and c = 0: both roots are 0
    safe_q = torch.where(q_zero, torch.ones_like(q), q)
    x1 = q / safe_a
    x2 = torch.where(q_zero, torch.zeros_like(q), c.to(torch.complex128) / safe_q)
    nan = torch.full_like(x1, complex(math.nan, math.nan))
    linear = (~quad) & (b != 0)
    safe_b = torch.where(b != 0, b, torch.ones_like(b)).to(torch.complex128)
    lin_root = -c.to(torch.complex128) / safe_b
    r1 = torch.where(quad, x1, torch.where(linear, lin_root, nan))
    r2 = torch.where(quad, x2, nan)
    count = torch.where(quad, 2, torch.where(linear, 1, torch.where(c != 0, 0, -1)))
    return torch.stack([r1, r2], dim=-1), count


def classify(a: float, b: float, c: float, count: int, rel_tol: float = 1e-12) -> str:
    if count == 2:
        d = b * b - 4 * a * c
        if abs(d) <= rel_tol * max(b * b, abs(4 * a * c)):
            return "repeated"
        return "two real" if d > 0 else "complex pair"
    return {1: "linear (a = 0)", 0: "no root", -1: "every x"}[count]


def horner(coeffs, z):
    """p(z) for coefficients highest degree first; works on complex tensors."""
    out = coeffs[0] * 0 + coeffs[0]
    for k in coeffs[1:]:
        out = out * z + k
    return out


def newton_roots(coeffs: np.ndarray, steps: int = 100, tol: float = 1e-14,
                 generator=None) -> tuple[np.ndarray, int]:
    """All roots of a polynomial (coefficients highest first) by Newton's method.

    The step z <- z - p(z) / p'(z) takes p'(z) from automatic differentiation: with
    z = x + i y, a holomorphic p has p'(z) = d Re p / dx + i d Im p / dx
    (Cauchy-Riemann), both from torch.autograd. Roots are found one at a time and
    divided out (deflation), then polished on the original polynomial.
    Returns (roots (deg,) complex, total Newton iterations).
    """
    import torch

    coeffs = np.trim_zeros(np.asarray(coeffs, dtype=np.float64), "f")
    full = torch.tensor(coeffs, dtype=torch.complex128)
    work = full.clone()
    roots: list[complex] = []
    iterations = 0
    deg = len(coeffs) - 1
    for _ in range(deg):
        angle = float(torch.rand((), generator=generator, dtype=torch.float64)) * 2 * math.pi
        z = complex(0.9 * math.cos(angle), 0.9 * math.sin(angle))
        for poly, budget in ((work, steps), (full, 8)):  # find, then polish on the original
            for _ in range(budget):
                iterations += 1
                x = torch.tensor(z.real, dtype=torch.float64, requires_grad=True)
                y = torch.tensor(z.imag, dtype=torch.float64, requires_grad=True)
                value = horner(poly, torch.complex(x, y))
                (d_re,) = torch.autograd.grad(value.real, x, retain_graph=True)
                (d_im,) = torch.autograd.grad(value.imag, x)
                deriv = complex(float(d_re), float(d_im))
                if deriv == 0:
                    break
                step = complex(value.detach()) / deriv
                z -= step
                if abs(step) <= tol * max(1.0, abs(z)):
                    break
        roots.append(z)
        # synthetic division of `work` by (x - z)
        out = [work[0]]
        for k in work[1:-1]:
            out.append(k + out[-1] * z)
        work = torch.stack(out) if len(out) else work[:1]
    return np.array(roots, dtype=np.complex128), iterations


def match_error(ours: np.ndarray, ref: np.ndarray) -> float:
    """Largest |ours - ref| / max(1, |ref|) after pairing each root with its nearest."""
    ours = [r for r in ours if not np.isnan(r)]
    ref = list(ref)
    if len(ours) != len(ref):
        return math.inf
    worst = 0.0
    for r in ours:
        j = int(np.argmin([abs(r - s) for s in ref]))
        worst = max(worst, abs(r - ref[j]) / max(1.0, abs(ref[j])))
        ref.pop(j)
    return worst


# A root counts as found when it agrees with numpy.roots to this relative error.
ROOT_TOLERANCE = 1e-8


@dataclass
class RootsConfig:
    a: float = 1.0  # the quadratic a x^2 + b x + c solved and drawn
    b: float = -4.0
    c: float = 4.0
    n_random: int = 2000  # random quadratics checked against numpy.roots
    max_degree: int = 8  # Newton's method on random polynomials of degree 1..max_degree
    n_polynomials: int = 40  # random polynomials per check
    newton_steps: int = 200  # Newton iterations allowed per root

    def validate(self) -> None:
        if not all(math.isfinite(v) for v in (self.a, self.b, self.c)):
            raise ValueError(f"a, b and c must be finite numbers, got {self.a}, {self.b}, "
                             f"{self.c}")
        if self.max_degree < 1:
            raise ValueError("max_degree must be at least 1")
        if self.n_random < 0 or self.n_polynomials < 0:
            raise ValueError("n_random and n_polynomials must be 0 or more")


def score_equation(cfg: RootsConfig) -> dict:
    """The requested quadratic: its roots (as text), their kind and the equation."""
    roots, count = solve_quadratic(cfg.a, cfg.b, cfg.c)
    shown = [complex(r) for r in roots.tolist() if not math.isnan(complex(r).real)]
    return {"equation": f"{cfg.a:g} x^2 {'-' if cfg.b < 0 else '+'} {abs(cfg.b):g} x "
                        f"{'-' if cfg.c < 0 else '+'} {abs(cfg.c):g} = 0",
            "roots": [f"{r.real:.6g}{r.imag:+.6g}j" if r.imag else f"{r.real:.6g}"
                      for r in shown],
            "kind": classify(cfg.a, cfg.b, cfg.c, int(count)), "shown": shown}


def random_quadratics(n: int, rng: np.random.Generator) -> np.ndarray:
    """Coefficients a, b, c of n quadratics, (n, 3): the first half integers in [-4, 4]
    (many repeated roots and a = 0 cases), the rest Gaussian with sd 3 (generic roots)."""
    half = n // 2
    return np.concatenate([rng.integers(-4, 5, (half, 3)).astype(np.float64),
                           rng.normal(0, 3, (n - half, 3))])


def random_polynomials(cfg: RootsConfig, rng: np.random.Generator) -> dict[int, list]:
    """For each degree 1..cfg.max_degree, cfg.n_polynomials polynomials with Gaussian
    coefficients (deg + 1,), highest degree first."""
    return {deg: [rng.normal(0, 1, deg + 1) for _ in range(cfg.n_polynomials)]
            for deg in range(1, cfg.max_degree + 1)}


def score_random_quadratics(coef: np.ndarray) -> dict:
    """The quadratics with coefficients coef (n, 3), solved in one batch and checked
    against numpy.roots: count and largest relative error per kind of root."""
    r, k = solve_quadratic(coef[:, 0], coef[:, 1], coef[:, 2])
    kinds: dict[str, int] = {}
    errors: dict[str, float] = {}
    failed = 0
    for (a, b, c), rr, kk in zip(coef, r.numpy(), k.numpy(), strict=True):
        name = classify(a, b, c, int(kk))
        kinds[name] = kinds.get(name, 0) + 1
        if kk <= 0:
            err = 0.0 if len(np.roots([a, b, c])) == 0 else math.inf
        else:
            err = match_error(rr, np.roots([a, b, c]))
        failed += not err <= ROOT_TOLERANCE
        errors[name] = max(errors.get(name, 0.0), err)
    return {"kinds": kinds, "errors": errors, "failed": failed,
            "worst": max(errors.values()) if errors else 0.0}


def score_newton(cfg: RootsConfig, polynomials: dict[int, list], gen) -> dict:
    """Newton with autograd on the polynomials of each degree, checked against
    numpy.roots; `gen` draws the starting points."""
    rows, examples, failed, worst_all = [], [], 0, 0.0
    for deg, polys in polynomials.items():
        worst, iters = 0.0, 0
        for p in polys:
            ours, it = newton_roots(p, cfg.newton_steps, generator=gen)
            ref = np.roots(p)
            err = match_error(ours, ref)
            failed += not err <= ROOT_TOLERANCE
            worst, iters = max(worst, err), iters + it
            if len(examples) < 3 and deg == cfg.max_degree:
                examples.append((ours, ref))
        rows.append([deg, cfg.n_polynomials, worst, iters / max(cfg.n_polynomials, 1)])
        worst_all = max(worst_all, worst)
    return {"rows": rows, "examples": examples, "failed": failed, "worst": worst_all,
            "checked": cfg.n_polynomials * cfg.max_degree}


def roots_figure(cfg: RootsConfig, eq: dict, examples: list) -> object:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = eq["shown"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    real_roots = [z.real for z in shown if abs(z.imag) < 1e-12]
    centre = np.mean([z.real for z in shown]) if shown else 0.0
    xs = np.linspace(centre - 4, centre + 4, 400)
    ax1.plot(xs, cfg.a * xs ** 2 + cfg.b * xs + cfg.c, color="tab:blue")
    ax1.axhline(0, color="grey", lw=0.8)
    ax1.scatter(real_roots, np.zeros(len(real_roots)), color="tab:red", zorder=3,
                label="real roots")
    ax1.set(title=f"{eq['equation']}: {eq['kind']}", xlabel="x")
    ax1.legend(loc="best")
    for i, (ours, ref) in enumerate(examples):
        ax2.scatter(ref.real, ref.imag, s=80, facecolors="none", edgecolors=f"C{i}",
                    label=f"numpy.roots, polynomial {i + 1}")
        ax2.scatter(ours.real, ours.imag, marker="x", color=f"C{i}")
    ax2.set(title=f"Degree-{cfg.max_degree} roots: Newton+autograd (x) vs numpy (o)",
            xlabel="Re z", ylabel="Im z")
    ax2.axhline(0, color="grey", lw=0.5)
    ax2.axvline(0, color="grey", lw=0.5)
    if examples:
        ax2.legend(fontsize=7, loc="best")
    return fig


def roots_metrics(cfg: RootsConfig, eq: dict, quad: dict, newton: dict) -> dict:
    """The measured values of 1.2 for ctx.metrics."""
    return {
        "equation": eq["equation"], "roots": eq["roots"], "kind": eq["kind"],
        "quadratics_checked": int(cfg.n_random),
        "quadratic_max_rel_error": quad["worst"], "quadratics_failed": quad["failed"],
        "newton_polynomials_checked": newton["checked"],
        "newton_max_rel_error": newton["worst"], "newton_polynomials_failed": newton["failed"],
        "max_rel_error_vs_numpy": max(quad["worst"], newton["worst"]),
        "root_tolerance": ROOT_TOLERANCE,
    }


def write_roots(cfg: RootsConfig, ctx: RunContext, eq: dict, quad: dict, newton: dict) -> None:
    ctx.table("Random quadratics against numpy.roots",
              ["case", "count", "largest relative error"],
              [[n, quad["kinds"][n], quad["errors"][n]] for n in sorted(quad["kinds"])])
    ctx.table("Newton's method with autograd derivatives against numpy.roots "
              "(Gaussian coefficients)",
              ["degree", "polynomials", "largest relative error", "mean iterations"],
              newton["rows"])
    ctx.figure(roots_figure(cfg, eq, newton["examples"]), "roots.png",
               "Left: the requested quadratic and its real roots. Right: roots of random "
               "polynomials found by Newton's method with autograd derivatives (crosses) on "
               "numpy.roots' answers (circles).")


def judge_roots(cfg: RootsConfig, ctx: RunContext, eq: dict, quad: dict, newton: dict) -> None:
    ctx.infer(f"{eq['equation']} has {eq['kind']} roots: {', '.join(eq['roots'])}.")
    cases = ", ".join(f"{v} {n}" for n, v in sorted(quad["kinds"].items()))
    ctx.claim(f"Across {cfg.n_random} random quadratics, covering {cases}, the tensor solver "
              f"agrees with numpy.roots on every one, to a relative error of "
              f"{quad['worst']:.1e}.", quad["failed"] == 0,
              otherwise=f"Across {cfg.n_random} random quadratics ({cases}), the tensor solver "
              f"disagrees with numpy.roots by more than {ROOT_TOLERANCE:g} on {quad['failed']} "
              f"(largest relative error {quad['worst']:.1e}).",
              failed=quad["failed"], tolerance=ROOT_TOLERANCE)
    ctx.claim(f"Newton's method with derivatives from autograd found every root of "
              f"{newton['checked']} random polynomials of degree up to {cfg.max_degree}, "
              f"agreeing with numpy.roots to {newton['worst']:.1e}.", newton["failed"] == 0,
              otherwise=f"Newton's method with derivatives from autograd missed a root (relative "
              f"error above {ROOT_TOLERANCE:g} against numpy.roots) in {newton['failed']} of "
              f"{newton['checked']} random polynomials of degree up to {cfg.max_degree}; the "
              f"largest error was {newton['worst']:.1e}.",
              failed=newton["failed"], tolerance=ROOT_TOLERANCE)


def run_roots(cfg: RootsConfig, ctx: RunContext) -> None:
    # step data: random quadratics and polynomials drawn from the run's seed
    quadratics = random_quadratics(cfg.n_random, ctx.rng)
    polynomials = random_polynomials(cfg, ctx.rng)
    ctx.data(f"{cfg.n_random} random quadratics (half with integer coefficients in [-4, 4], "
             f"half Gaussian with sd 3) and {cfg.n_polynomials} Gaussian polynomials of each "
             f"degree 1..{cfg.max_degree}, drawn from the run's seed.")
    # step score: the requested quadratic, the random ones and Newton's method, against numpy
    eq = score_equation(cfg)
    quad = score_random_quadratics(quadratics)
    newton = score_newton(cfg, polynomials, ctx.torch_generator(1))
    ctx.metrics.update(roots_metrics(cfg, eq, quad, newton))
    # step judge: sentences from the scores
    judge_roots(cfg, ctx, eq, quad, newton)
    # step write: the tables of errors and the roots drawn
    write_roots(cfg, ctx, eq, quad, newton)


QUADRATIC = Implementation(
    config=RootsConfig, run=run_roots,
    profiles={"smoke": {"n_random": 200, "max_degree": 4, "n_polynomials": 5},
              "full": {"n_random": 20000, "max_degree": 12, "n_polynomials": 100}},
    targets=(
        Target("max_rel_error_vs_numpy", at_most=ROOT_TOLERANCE,
               why="every root agrees with numpy.roots"),
    ),
    crippled="nothing is trained: the roots are computed (a closed form and Newton's method "
             "to convergence) and checked against numpy.roots",
)
