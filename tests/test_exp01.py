import itertools
import json

import numpy as np
import pytest
import torch

from dlab.experiments import exp01_mcculloch_pitts as e1


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_gate_units_match_boolean_logic(n):
    x = e1.all_inputs(n)
    assert x.shape == (2 ** n, n)
    for gate, unit in e1.gate_units(n).items():
        expected = {
            "AND": [int(all(r)) for r in x], "OR": [int(any(r)) for r in x],
            "NAND": [int(not all(r)) for r in x], "NOR": [int(not any(r)) for r in x],
            "NOT": [1 - r[0] for r in x],
        }[gate]
        assert e1.mp_unit(x, unit.weights, unit.threshold).tolist() == expected, gate
        assert unit(x).tolist() == expected, gate
        assert f"threshold={unit.threshold}" in repr(unit)


def test_manual_nand_is_and():
    x = e1.all_inputs(2)
    assert e1.mp_unit(x, np.array([1, 1]), 2).tolist() == [0, 0, 0, 1]


@pytest.mark.parametrize("n, max_weight, known", [(1, 1, 4), (2, 1, 14), (3, 2, 104)])
def test_search_finds_exactly_the_threshold_functions(n, max_weight, known):
    funcs, candidates = e1.search_single_units(n, max_weight)
    assert len(funcs) == known == e1.THRESHOLD_FUNCTIONS[n]
    assert candidates == (2 * max_weight + 1) ** n * (2 * n * max_weight + 2)
    parity = e1.encode(e1.all_inputs(n).sum(axis=1) % 2)
    assert (parity in funcs) == (n == 1)


def test_search_brute_force_agrees_for_two_inputs():
    x = e1.all_inputs(2)
    slow = set()
    for w1, w2, t in itertools.product(range(-2, 3), range(-2, 3), range(-6, 7)):
        slow.add(e1.encode(e1.mp_unit(x, np.array([w1, w2]), t)))
    assert e1.search_single_units(2, 2)[0] == slow


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_two_layer_parity_network(n):
    x = e1.all_inputs(n)
    assert e1.parity_network(x).tolist() == (x.sum(axis=1) % 2).tolist()
    if n == 2:
        assert e1.xor_or_nand_and(x).tolist() == [0, 1, 1, 0]


@pytest.mark.parametrize("abc, roots, count", [
    ((1, -4, 4), [2, 2], 2),
    ((1, 0, 1), [1j, -1j], 2),
    ((1, -3, 2), [1, 2], 2),
    ((0, 2, -4), [2], 1),
    ((2, 0, 0), [0, 0], 2),
])
def test_quadratic_cases(abc, roots, count):
    r, k = e1.solve_quadratic(*abc)
    assert int(k) == count
    got = sorted((complex(z) for z in r.tolist() if not np.isnan(complex(z).real)),
                 key=lambda z: (z.real, z.imag))
    want = sorted((complex(z) for z in roots), key=lambda z: (z.real, z.imag))
    assert np.allclose(got, want, atol=1e-12)


def test_quadratic_degenerate_cases():
    assert int(e1.solve_quadratic(0, 0, 3)[1]) == 0
    assert int(e1.solve_quadratic(0, 0, 0)[1]) == -1
    assert e1.classify(1, -4, 4, 2) == "repeated"
    assert e1.classify(1, 0, 1, 2) == "complex pair"


def test_quadratic_avoids_cancellation():
    r, _ = e1.solve_quadratic(1.0, 1e8, 1.0)
    small = min((complex(z) for z in r.tolist()), key=abs)
    assert abs(small.real - (-1e-8)) / 1e-8 < 1e-12  # the naive formula loses every digit here


def test_quadratic_batch_against_numpy_roots():
    rng = np.random.default_rng(0)
    coef = np.concatenate([rng.integers(-3, 4, (3000, 3)).astype(float),
                           rng.normal(0, 5, (3000, 3))])
    r, k = e1.solve_quadratic(*torch.tensor(coef).T)
    assert r.shape == (6000, 2) and r.dtype == torch.complex128
    kinds = set()
    for (a, b, c), rr, kk in zip(coef, r.numpy(), k.numpy(), strict=True):
        kinds.add(e1.classify(a, b, c, int(kk)))
        if kk > 0:
            assert e1.match_error(rr, np.roots([a, b, c])) < 1e-9
        else:
            assert len(np.roots([a, b, c])) == 0
    assert {"two real", "complex pair", "repeated", "linear (a = 0)"} <= kinds


@pytest.mark.parametrize("degree", [1, 2, 3, 5, 8, 10])
def test_newton_with_autograd_finds_all_roots(degree):
    rng = np.random.default_rng(degree)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        p = rng.normal(0, 1, degree + 1)
        roots, _ = e1.newton_roots(p, 200, generator=g)
        assert len(roots) == degree
        assert e1.match_error(roots, np.roots(p)) < 1e-8
        assert np.abs(np.polyval(p, roots)).max() < 1e-9 * np.abs(p).sum()


def test_horner_derivative_from_autograd_is_exact():
    coeffs = torch.tensor([2.0, -3.0, 0.5, 1.0], dtype=torch.complex128)
    x = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(-0.3, dtype=torch.float64, requires_grad=True)
    v = e1.horner(coeffs, torch.complex(x, y))
    (dre,) = torch.autograd.grad(v.real, x, retain_graph=True)
    (dim,) = torch.autograd.grad(v.imag, x)
    z = complex(0.7, -0.3)
    expected = 6 * z ** 2 - 6 * z + 0.5
    assert abs(complex(float(dre), float(dim)) - expected) < 1e-12


def _run(pid, tmp_path, **sets):
    from dlab.registry import PROGRAMS
    from dlab.running import run_program

    return run_program(PROGRAMS[pid], profile="smoke", out=tmp_path, quiet=True,
                       device="cpu", sets={k: str(v) for k, v in sets.items()})


def test_gates_program_meets_its_targets(tmp_path):
    out = _run("1.1", tmp_path)
    m = out.metrics
    assert m["xor_single_unit_solutions"] == 0 and m["xor_candidates_tried"] == 3 * 3 * 6
    assert m["functions_by_one_unit"] == {"1": 4, "2": 14}
    assert {t["name"]: t["met"] for t in out.targets} == {
        "xor_single_unit_solutions": True, "all_gates_correct": True,
        "two_layer_xor_correct": True, "manual_nand_computes_and": True}
    assert m["nand_nonnegative_solutions"] == 0


def test_gates_search_too_narrow_is_said(tmp_path, monkeypatch):
    # With weights in [-1, 1] a unit of 3 inputs reaches fewer than the 104 threshold
    # functions: the record must not claim the search found them all.
    out = _run("1.1", tmp_path, n_inputs=3, max_weight=1)
    assert out.metrics["functions_by_one_unit"]["3"] < 104
    assert out.metrics["search_matches_known_counts"] is False
    text = (out.folder / "record.md").read_text()
    assert "do not reach them all" in text and "holds every one" not in text


def test_roots_program_meets_its_target(tmp_path):
    out = _run("1.2", tmp_path)
    m = out.metrics
    assert m["roots"] == ["2", "2"] and m["kind"] == "repeated"
    assert m["newton_polynomials_failed"] == 0 and m["quadratics_failed"] == 0
    assert [t["met"] for t in out.targets] == [True]
    assert "found every root" in (out.folder / "record.md").read_text()


def test_roots_record_says_when_a_root_is_missed(tmp_path, monkeypatch):
    real = e1.newton_roots

    def one_bad_root(coeffs, steps=100, tol=1e-14, generator=None):
        roots, it = real(coeffs, steps, tol, generator)
        roots[0] += 0.5  # a "root" that is not one
        return roots, it

    monkeypatch.setattr(e1, "newton_roots", one_bad_root)
    out = _run("1.2", tmp_path)
    assert out.metrics["newton_polynomials_failed"] == out.metrics["newton_polynomials_checked"]
    assert [t["met"] for t in out.targets] == [False]
    text = (out.folder / "record.md").read_text()
    assert "found every root" not in text and "missed a root" in text


def test_roots_refuse_non_finite_coefficients(tmp_path):
    from dlab.errors import UsageError
    from dlab.registry import PROGRAMS

    with pytest.raises(UsageError, match="finite"):
        _run("1.2", tmp_path, a="nan")
    assert PROGRAMS["1.2"].load().targets[0].at_most == 1e-8


def test_programs_are_split_into_steps():
    from dlab.steps import steps

    assert [s.kind for s in steps(e1.run_mcculloch_pitts)] == [
        "data", "model", "score", "judge", "write"]
    assert steps(e1.run_mcculloch_pitts)[1].assigned == ("units",)
    assert [s.kind for s in steps(e1.run_roots)] == ["data", "score", "judge", "write"]


def test_random_polynomials_are_drawn_degree_by_degree():
    cfg = e1.RootsConfig(max_degree=3, n_polynomials=2)
    polys = e1.random_polynomials(cfg, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    assert list(polys) == [1, 2, 3]
    for deg, ps in polys.items():
        assert len(ps) == 2
        for p in ps:
            np.testing.assert_array_equal(p, rng.normal(0, 1, deg + 1))


def test_nonnegative_weights_never_compute_nand():
    # NAND is not monotone: raising an input can switch the unit off, which needs a
    # negative weight. Brute force over every (w1, w2, theta) agrees with the vectorised count.
    x = e1.all_inputs(2)
    nand = e1.gate_targets(x)["NAND"]
    for m in (1, 2, 3):
        hits, tried = e1.nonnegative_nand(m)
        brute = sum(np.array_equal(e1.mp_unit(x, np.array([a, b]), t), nand)
                    for a in range(m + 1) for b in range(m + 1)
                    for t in range(-2 * m, 2 * m + 2))
        assert hits == brute == 0 and tried == (m + 1) ** 2 * (4 * m + 2)
    assert np.array_equal(e1.gate_units(2)["NAND"](x), nand)


def test_gates_record_keeps_the_geometric_reason_as_background(tmp_path):
    out = _run("1.1", tmp_path)
    text = (out.folder / "record.md").read_text()
    record = json.loads((out.folder / "metrics.json").read_text())["record"]
    assert out.metrics["nand_nonnegative_solutions"] == 0
    # the reason XOR is out of reach is cited, not printed as this run's finding
    assert not any("cross at (0.5, 0.5)" in s for s in record["analysis"])
    assert "Minsky and Papert 1969" in text and "cross at (0.5, 0.5)" in text


def test_gates_figure_titles_state_what_is_drawn():
    fig = e1.gates_figure()
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[-1].startswith("XOR targets") and "separates" not in titles[-1]
    assert all("w=" in t for t in titles[:5])


def test_programs_that_train_nothing_say_why_they_cannot_be_crippled():
    from dlab.registry import PROGRAMS

    for pid in ("1.1", "1.2"):
        crippled = PROGRAMS[pid].load().crippled
        assert isinstance(crippled, str) and "nothing is trained" in crippled
