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

# ---------------------------------------------------------------- 1.1 the unit


def all_inputs(n: int) -> np.ndarray:
    """Every binary input of n bits in counting order, shape (2^n, n)."""
    return np.array(list(itertools.product((0, 1), repeat=n)), dtype=np.int64)


def mp_unit(x: np.ndarray, weights: np.ndarray, threshold: float) -> np.ndarray:
    """y = [w . x >= theta] for inputs x (N, n); returns (N,) of 0/1."""
    return (x @ np.asarray(weights) >= threshold).astype(np.int64)


def gate_units(n: int) -> dict[str, tuple[np.ndarray, int]]:
    """Weights and threshold of one unit per gate, for n inputs (NOT uses the first input)."""
    ones = np.ones(n, dtype=np.int64)
    return {
        "AND": (ones, n),            # fires only when all n inputs are 1
        "OR": (ones, 1),             # fires when any input is 1
        "NAND": (-ones, 1 - n),      # -sum(x) >= 1 - n  <=>  sum(x) <= n - 1
        "NOR": (-ones, 0),           # -sum(x) >= 0      <=>  no input is 1
        "NOT": (np.eye(1, n, dtype=np.int64)[0] * -1, 0),  # -x1 >= 0 <=> x1 == 0
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
    h = np.stack([mp_unit(x, *units["OR"]), mp_unit(x, *units["NAND"])], axis=1)
    return mp_unit(h, *gate_units(2)["AND"])


# Number of Boolean functions of n inputs that a single threshold unit computes
# (Muroga, "Threshold Logic and its Applications", 1971): n = 1..5.
THRESHOLD_FUNCTIONS = {1: 4, 2: 14, 3: 104, 4: 1882, 5: 94572}


@dataclass
class MPConfig:
    n_inputs: int = 3  # inputs of the gates whose truth tables are printed
    max_weight: int = 2  # weights searched: integers in [-max_weight, max_weight]

    def validate(self) -> None:
        if not 1 <= self.n_inputs <= 4:
            raise ValueError(f"n_inputs must be 1 to 4, got {self.n_inputs}")
        if not 1 <= self.max_weight <= 4:
            raise ValueError(f"max_weight must be 1 to 4, got {self.max_weight}")


def run_mcculloch_pitts(cfg: MPConfig, ctx: RunContext) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = cfg.n_inputs
    x = all_inputs(n)
    targets = gate_targets(x)
    units = gate_units(n)
    ctx.data(f"All {2 ** n} binary inputs of {n} bits (no data set: the unit is checked "
             "on every possible input).")

    outputs = {g: mp_unit(x, w, t) for g, (w, t) in units.items()}
    outputs["XOR (2 layers)"] = parity_network(x)
    correct = {g: bool(np.array_equal(outputs[g], targets[g])) for g in units}
    correct["XOR (2 layers)"] = bool(np.array_equal(outputs["XOR (2 layers)"], targets["XOR"]))
    rows = [[*map(int, xi)] + [int(outputs[g][i]) for g in outputs] for i, xi in enumerate(x)]
    ctx.table(f"Truth tables of the units for n = {n} inputs",
              [f"x{i + 1}" for i in range(n)] + list(outputs), rows)
    ctx.table("The units: weights and threshold (fires when w . x >= threshold)",
              ["gate", "weights", "threshold", "matches truth table"],
              [[g, list(map(int, w)), int(t), correct[g]] for g, (w, t) in units.items()])

    # The manual's NAND (w = 1, 1; theta = 2) on two inputs.
    x2 = all_inputs(2)
    manual_nand = mp_unit(x2, np.array([1, 1]), 2)
    manual_is_and = bool(np.array_equal(manual_nand, gate_targets(x2)["AND"]))

    # Exhaustive search: which functions can one unit compute?
    search_rows = []
    for m in range(1, n + 1):
        funcs, candidates = search_single_units(m, cfg.max_weight)
        parity = encode(gate_targets(all_inputs(m))["XOR"])
        found_parity = parity in funcs
        search_rows.append([m, candidates, 2 ** (2 ** m), len(funcs),
                            THRESHOLD_FUNCTIONS.get(m, "?"), "yes" if found_parity else "no"])
    ctx.table(f"Exhaustive search over integer weights in [-{cfg.max_weight}, {cfg.max_weight}]",
              ["inputs", "(w, theta) tried", "Boolean functions", "computed by one unit",
               "threshold functions (Muroga 1971)", "XOR/parity found"], search_rows)
    # Count the (w, theta) pairs that give XOR on two inputs, one by one.
    w2 = np.array(list(itertools.product(range(-cfg.max_weight, cfg.max_weight + 1), repeat=2)))
    t2 = np.arange(-2 * cfg.max_weight, 2 * cfg.max_weight + 2)
    fires = (x2 @ w2.T)[:, :, None] >= t2[None, None, :]
    xor_hits = int((fires == gate_targets(x2)["XOR"][:, None, None]).all(axis=0).sum())

    two_layer_xor = bool(np.array_equal(xor_or_nand_and(x2), gate_targets(x2)["XOR"]))
    ctx.metrics.update({
        "n_inputs": n,
        "all_gates_correct": all(correct.values()),
        "xor_single_unit_solutions": xor_hits,
        "xor_candidates_tried": int(len(w2) * len(t2)),
        "two_layer_xor_correct": two_layer_xor and correct["XOR (2 layers)"],
        "manual_nand_computes_and": manual_is_and,
        "functions_by_one_unit": {str(r[0]): r[3] for r in search_rows},
    })

    # Figure: the two-input gates with their decision lines, and XOR with none.
    fig, axes = plt.subplots(1, 6, figsize=(15, 2.9))
    panels = [("AND", *gate_units(2)["AND"]), ("OR", *gate_units(2)["OR"]),
              ("NAND", *gate_units(2)["NAND"]), ("NOR", *gate_units(2)["NOR"]),
              ("manual 'NAND'", np.array([1, 1]), 2), ("XOR", None, None)]
    grid = np.linspace(-0.5, 1.5, 2)
    for ax, (name, w, t) in zip(axes, panels, strict=True):
        y = mp_unit(x2, w, t) if w is not None else gate_targets(x2)["XOR"]
        ax.scatter(x2[:, 0], x2[:, 1], c=["white" if v == 0 else "black" for v in y],
                   edgecolors="black", s=120, zorder=3)
        if w is not None:
            ax.plot(grid, (t - w[0] * grid) / w[1], color="tab:red")
            ax.set_title(f"{name}\nw={list(map(int, w))}, θ={t}", fontsize=9)
        else:
            ax.set_title("XOR\nno line separates it", fontsize=9)
        ax.set_xlim(-0.5, 1.5)
        ax.set_ylim(-0.5, 1.5)
        ax.set_aspect("equal")
        ax.set_xticks([0, 1])
        ax.set_yticks([0, 1])
    ctx.figure(fig, "gates.png", "Two-input units: filled points fire; the red line is "
               "w . x = theta. The manual's 'NAND' fires like AND. No line splits XOR.")

    found = {r[0]: r[3] for r in search_rows}
    ctx.infer(f"Every gate unit reproduced its truth table on all {2 ** n} inputs: "
              f"{'yes' if all(correct.values()) else 'NO'}.")
    ctx.infer(f"Of the {ctx.metrics['xor_candidates_tried']} weight/threshold pairs tried for "
              f"two inputs, {xor_hits} compute XOR; one unit draws one line, and XOR's "
              "1-points (01, 10) lie on opposite sides of any line through its 0-points.")
    ctx.infer("One unit computes " + ", ".join(
        f"{found[m]} of {2 ** (2 ** m)} functions of {m} inputs" for m in sorted(found))
              + "; the known numbers of threshold functions are "
              + ", ".join(f"{THRESHOLD_FUNCTIONS[m]}" for m in sorted(found) if m in
                          THRESHOLD_FUNCTIONS) + ".")
    ctx.infer(f"Two layers (OR and NAND feeding AND) compute XOR: "
              f"{'yes' if two_layer_xor else 'NO'}; the n-input parity network is right: "
              f"{'yes' if correct['XOR (2 layers)'] else 'NO'}.")
    ctx.infer(f"The manual's NAND (weights 1, 1, threshold 2) outputs "
              f"{manual_nand.tolist()} on 00, 01, 10, 11: that is AND. A NAND unit needs "
              "negative weights, e.g. w = (-1, -1) with threshold -1.")


MCCULLOCH_PITTS = Implementation(
    config=MPConfig, run=run_mcculloch_pitts,
    profiles={"smoke": {"n_inputs": 2, "max_weight": 1}, "full": {"n_inputs": 4,
                                                                  "max_weight": 3}},
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
        if self.max_degree < 1:
            raise ValueError("max_degree must be at least 1")
        if self.n_random < 0 or self.n_polynomials < 0:
            raise ValueError("n_random and n_polynomials must be 0 or more")


def run_roots(cfg: RootsConfig, ctx: RunContext) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    roots, count = solve_quadratic(cfg.a, cfg.b, cfg.c)
    kind = classify(cfg.a, cfg.b, cfg.c, int(count))
    shown = [complex(r) for r in roots.tolist() if not math.isnan(complex(r).real)]
    ctx.metrics["equation"] = (f"{cfg.a:g} x^2 {'-' if cfg.b < 0 else '+'} {abs(cfg.b):g} x "
                               f"{'-' if cfg.c < 0 else '+'} {abs(cfg.c):g} = 0")
    ctx.metrics["roots"] = [f"{r.real:.6g}{r.imag:+.6g}j" if r.imag else f"{r.real:.6g}"
                            for r in shown]
    ctx.metrics["kind"] = kind

    # Random quadratics: integer coefficients in [-4, 4] (many repeated roots and a = 0
    # cases) and Gaussian ones (generic roots), all checked against numpy.roots.
    rng = ctx.rng
    half = cfg.n_random // 2
    coef = np.concatenate([rng.integers(-4, 5, (half, 3)).astype(np.float64),
                           rng.normal(0, 3, (cfg.n_random - half, 3))])
    r, k = solve_quadratic(coef[:, 0], coef[:, 1], coef[:, 2])
    r, k = r.numpy(), k.numpy()
    kinds: dict[str, int] = {}
    errors: dict[str, float] = {}
    for (a, b, c), rr, kk in zip(coef, r, k, strict=True):
        name = classify(a, b, c, int(kk))
        kinds[name] = kinds.get(name, 0) + 1
        if kk <= 0:
            ref_ok = len(np.roots([a, b, c])) == 0
            err = 0.0 if ref_ok else math.inf
        else:
            err = match_error(rr, np.roots([a, b, c]))
        errors[name] = max(errors.get(name, 0.0), err)
    ctx.table("Random quadratics against numpy.roots",
              ["case", "count", "largest relative error"],
              [[n, kinds[n], errors[n]] for n in sorted(kinds)])
    quad_err = max(errors.values()) if errors else 0.0

    # Newton with autograd on random polynomials of each degree.
    gen = ctx.torch_generator(1)
    newton_rows = []
    newton_err = 0.0
    examples = []
    for deg in range(1, cfg.max_degree + 1):
        worst, iters = 0.0, 0
        for _ in range(cfg.n_polynomials):
            p = rng.normal(0, 1, deg + 1)
            ours, it = newton_roots(p, cfg.newton_steps, generator=gen)
            ref = np.roots(p)
            worst = max(worst, match_error(ours, ref))
            iters += it
            if len(examples) < 3 and deg == cfg.max_degree:
                examples.append((ours, ref))
        newton_rows.append([deg, cfg.n_polynomials, worst, iters / max(cfg.n_polynomials, 1)])
        newton_err = max(newton_err, worst)
    ctx.table("Newton's method with autograd derivatives against numpy.roots "
              "(Gaussian coefficients)",
              ["degree", "polynomials", "largest relative error", "mean iterations"],
              newton_rows)
    ctx.metrics.update({
        "quadratics_checked": int(cfg.n_random),
        "quadratic_max_rel_error": quad_err,
        "newton_polynomials_checked": int(cfg.n_polynomials * cfg.max_degree),
        "newton_max_rel_error": newton_err,
        "max_rel_error_vs_numpy": max(quad_err, newton_err),
    })
    ctx.data(f"{cfg.n_random} random quadratics (half with integer coefficients in [-4, 4], "
             f"half Gaussian with sd 3) and {cfg.n_polynomials} Gaussian polynomials of each "
             f"degree 1..{cfg.max_degree}, drawn from the run's seed.")

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    real_roots = [z.real for z in shown if abs(z.imag) < 1e-12]
    centre = np.mean([z.real for z in shown]) if shown else 0.0
    xs = np.linspace(centre - 4, centre + 4, 400)
    ax1.plot(xs, cfg.a * xs ** 2 + cfg.b * xs + cfg.c, color="tab:blue")
    ax1.axhline(0, color="grey", lw=0.8)
    ax1.scatter(real_roots, np.zeros(len(real_roots)), color="tab:red", zorder=3,
                label="real roots")
    ax1.set_title(f"{ctx.metrics['equation']}: {kind}")
    ax1.set_xlabel("x")
    ax1.legend(loc="best")
    for i, (ours, ref) in enumerate(examples):
        ax2.scatter(ref.real, ref.imag, s=80, facecolors="none", edgecolors=f"C{i}",
                    label=f"numpy.roots, polynomial {i + 1}")
        ax2.scatter(ours.real, ours.imag, marker="x", color=f"C{i}")
    ax2.set_title(f"Degree-{cfg.max_degree} roots: Newton+autograd (x) vs numpy (o)")
    ax2.set_xlabel("Re z")
    ax2.set_ylabel("Im z")
    ax2.axhline(0, color="grey", lw=0.5)
    ax2.axvline(0, color="grey", lw=0.5)
    if examples:
        ax2.legend(fontsize=7, loc="best")
    ctx.figure(fig, "roots.png", "Left: the requested quadratic and its real roots. Right: "
               "roots of random polynomials found by Newton's method with autograd "
               "derivatives (crosses) on numpy.roots' answers (circles).")

    ctx.infer(f"{ctx.metrics['equation']} has {kind} roots: {', '.join(ctx.metrics['roots'])}.")
    ctx.infer(f"Across {cfg.n_random} random quadratics, covering "
              + ", ".join(f"{v} {n}" for n, v in sorted(kinds.items()))
              + f", the tensor solver agrees with numpy.roots to a relative error of "
              f"{quad_err:.1e}.")
    ctx.infer(f"Newton's method with derivatives from autograd found every root of "
              f"{cfg.n_polynomials * cfg.max_degree} random polynomials of degree up to "
              f"{cfg.max_degree}, agreeing with numpy.roots to {newton_err:.1e}.")


QUADRATIC = Implementation(
    config=RootsConfig, run=run_roots,
    profiles={"smoke": {"n_random": 200, "max_degree": 4, "n_polynomials": 5},
              "full": {"n_random": 20000, "max_degree": 12, "n_polynomials": 100}},
)
