"""MADE and GaussianMADE: masks, exact normalisation, the autoregressive property for
every mask, the ensemble likelihood, sampling and a short training run."""

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy.testing import assert_allclose

from dlab.models.made import ACTIVATIONS, MADE, GaussianMADE, MaskedLinear


@pytest.fixture(autouse=True)
def one_thread():
    """Run these many tiny ops on one thread: on a busy machine the thread pool's
    hand-offs cost more than the arithmetic (restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def all_binary(d: int) -> torch.Tensor:
    """(2^d, d) float64: every binary vector of length d."""
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=d)), dtype=torch.float64)


def randomise(model: torch.nn.Module, std: float, seed: int) -> torch.nn.Module:
    """Overwrite every parameter with N(0, std^2) draws so conditionals are far from 0.5."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64).to(p) * std)
    return model


def connectivity(model, k: int) -> torch.Tensor:
    """(n_params * D, D) number of paths from each input to each output under mask k."""
    path = None
    for m in model.masks(k):
        path = m if path is None else m @ path
    return path


def input_dependence(outputs: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(n_out, D): summed |d output_j / d x_i| over the batch, by back-propagation."""
    rows = []
    for j in range(outputs.shape[1]):
        (grad,) = torch.autograd.grad(outputs[:, j].sum(), x, retain_graph=True)
        rows.append(grad.abs().sum(dim=0))
    return torch.stack(rows)


# ----- MaskedLinear and masks ------------------------------------------------------------
def test_masked_linear_applies_mask_and_blocks_gradients():
    layer = MaskedLinear(4, 3)
    mask = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 1], [1, 1, 1, 1]], dtype=torch.float32)
    layer.set_mask(mask)
    assert "mask" in dict(layer.named_buffers()) and "mask" in layer.state_dict()
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    out = layer(x)
    assert_allclose(out.detach().numpy(),
                    (x @ (mask * layer.weight).T + layer.bias).detach().numpy(), rtol=1e-6)
    out.sum().backward()
    assert torch.all(layer.weight.grad[mask == 0] == 0)
    assert torch.all(layer.weight.grad[mask == 1] != 0)


def test_parameter_count():
    # D = 8, hidden (16, 12): (8*16 + 16) + (16*12 + 12) + (12*8 + 8)
    assert sum(p.numel() for p in MADE(8, (16, 12)).parameters()) == 144 + 204 + 104
    # Gaussian: two outputs per dimension
    assert sum(p.numel() for p in GaussianMADE(8, (16, 12)).parameters()) == 144 + 204 + 208


@pytest.mark.parametrize("natural", [True, False])
@pytest.mark.parametrize("hidden", [(), (20,), (20, 15, 10)])
def test_masks_follow_the_degree_rules(natural, hidden):
    d = 7
    model = MADE(d, hidden, num_masks=3, natural_ordering=natural, seed=5)
    for k in range(3):
        degs = model.degrees(k)
        order = degs[0]
        assert sorted(order.tolist()) == list(range(d))
        if natural:
            assert order.tolist() == list(range(d))
        for prev, cur in itertools.pairwise(degs):
            assert cur.min() >= prev.min() and cur.max() <= d - 2
        masks = model.masks(k)
        for prev, cur, m in zip(degs[:-1], degs[1:], masks[:-1], strict=True):
            assert torch.equal(m.bool(), torch.as_tensor(cur[:, None] >= prev[None, :]))
        assert torch.equal(masks[-1].bool(), torch.as_tensor(order[:, None] > degs[-1][None, :]))
        paths = connectivity(model, k)  # (D, D)
        earlier = torch.as_tensor(order[None, :] < order[:, None])  # [out, in]: in before out
        assert torch.all(paths[~earlier] == 0)


def test_hidden_degrees_never_fall_below_the_previous_minimum():
    # a layer of two units often has no unit of degree 0; the next layer must then draw
    # from [min, D-2] (a lower degree would leave a unit with no inputs at all)
    d = 10
    found = 0
    for seed in range(40):
        degs = MADE(d, (2, 30), seed=seed).degrees(0)
        if degs[1].min() > 0:
            found += 1
            assert degs[2].min() >= degs[1].min()
    assert found >= 5


def test_masks_are_deterministic_and_differ_between_indices():
    a = MADE(8, (32, 32), num_masks=4, seed=3)
    b = MADE(8, (32, 32), num_masks=4, seed=3)
    orders = set()
    for k in range(4):
        for ma, mb in zip(a.masks(k), b.masks(k), strict=True):
            assert torch.equal(ma, mb)
        orders.add(tuple(a.input_order(k).tolist()))
    assert len(orders) > 1
    c = MADE(8, (32, 32), num_masks=4, seed=4)
    assert any(not torch.equal(m1, m2)
               for m1, m2 in zip(a.masks(0), c.masks(0), strict=True))


def test_next_mask_cycles_and_state_dict_keeps_it():
    model = MADE(6, (16, 16), num_masks=3, seed=1)
    assert int(model.mask_index) == 0
    for expected in [1, 2, 0, 1]:
        assert model.next_mask() == expected
        assert int(model.mask_index) == expected
        for layer, m in zip(model.layers, model.masks(expected), strict=True):
            assert torch.equal(layer.mask, m)
    x = all_binary(6).float()
    with torch.no_grad():
        assert torch.equal(model(x), model.logits(x, mask_index=1))
        assert torch.equal(model.log_prob_single(x), model.log_prob_single(x, 1))
    other = MADE(6, (16, 16), num_masks=3, seed=1)
    other.load_state_dict(model.state_dict())
    assert int(other.mask_index) == 1
    with torch.no_grad():
        assert torch.equal(other(x), model(x))
    single = MADE(6, (16,), num_masks=1)
    before = [layer.mask.clone() for layer in single.layers]
    assert single.next_mask() == 0
    assert all(torch.equal(b, layer.mask) for b, layer in zip(before, single.layers, strict=True))


def test_bad_arguments():
    with pytest.raises(ValueError, match="activation"):
        MADE(4, (8,), activation="swishy")
    with pytest.raises(ValueError):
        MADE(4, (0,))
    with pytest.raises(ValueError):
        MADE(4, (8,), num_masks=0)
    with pytest.raises(ValueError, match="mask index"):
        MADE(4, (8,), num_masks=2).logits(torch.zeros(1, 4), mask_index=2)
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        MADE(4, (8,)).log_prob(torch.zeros(3, 5))


# ----- exact normalisation ---------------------------------------------------------------
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("num_masks", [1, 4])
@pytest.mark.parametrize("hidden", [(32,), (24, 24, 24)])
@pytest.mark.parametrize("natural", [True, False])
def test_probabilities_sum_to_one(natural, hidden, num_masks, activation):
    d = 8
    model = MADE(d, hidden, num_masks=num_masks, natural_ordering=natural, seed=2,
                 activation=activation).double()
    randomise(model, std=1.0, seed=7)
    x = all_binary(d)
    with torch.no_grad():
        p = model.log_prob(x).exp()
        assert p.sum().item() == pytest.approx(1.0, abs=1e-5)
        assert p.max().item() > 8.0 / 2**d  # not the uniform distribution
        for k in range(num_masks):
            assert model.log_prob_single(x, k).exp().sum().item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("hidden", [(), (40,), (30, 30)])
def test_probabilities_sum_to_one_d10(hidden):
    model = randomise(MADE(10, hidden, num_masks=3, seed=9).double(), std=1.5, seed=1)
    with torch.no_grad():
        p = model.log_prob(all_binary(10)).exp()
    assert p.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert p.max().item() > 8.0 / 2**10


# ----- autoregressive property -----------------------------------------------------------
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("hidden", [(64,), (64, 64)])
@pytest.mark.parametrize("natural", [True, False])
def test_autoregressive_by_backprop_for_every_mask(natural, hidden, activation):
    d = 8
    model = MADE(d, hidden, num_masks=4, natural_ordering=natural, seed=0,
                 activation=activation).double()
    randomise(model, std=0.5, seed=3)
    x = torch.randn(64, d, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x.requires_grad_(True)
    for k in range(4):
        order = model.input_order(k)
        dep = input_dependence(model.logits(x, mask_index=k), x)  # (D out, D in)
        for j in range(d):
            later = order >= order[j]  # inputs at or after output j in the ordering
            assert torch.all(dep[j, later] == 0), f"mask {k}: logit {j} sees x_{j} or later"
            if order[j] > 0:
                assert dep[j, ~later].max() > 0, f"mask {k}: logit {j} sees no earlier input"
            else:
                assert torch.all(dep[j] == 0)
        # gradients flow exactly along the mask paths (tanh has no dead units)
        if activation == "tanh":
            assert torch.equal(dep > 0, connectivity(model, k) > 0)


def test_ensemble_with_one_mask_per_ordering_has_a_nonzero_path_for_all_but_first():
    # with enough hidden units every output after the first sees every earlier input
    d = 6
    model = MADE(d, (200,), num_masks=2, seed=0).double()
    for k in range(2):
        order = model.input_order(k)
        paths = connectivity(model, k) > 0
        assert torch.equal(paths, order[None, :] < order[:, None])


# ----- ensemble likelihood ---------------------------------------------------------------
def test_ensemble_log_prob_is_log_mean_of_probabilities_by_hand():
    # no hidden layers, D = 2: mask "0 first" gives logit_0 = b_0, logit_1 = b_1 + w_10 x_0;
    # mask "1 first" gives logit_1 = b_1, logit_0 = b_0 + w_01 x_1
    seed = next(s for s in range(100)
                if MADE(2, (), num_masks=2, seed=s).input_order(0).tolist() == [0, 1]
                and MADE(2, (), num_masks=2, seed=s).input_order(1).tolist() == [1, 0])
    model = MADE(2, (), num_masks=2, seed=seed).double()
    b0, b1, w01, w10 = 1.0, -1.0, 3.0, -2.0
    with torch.no_grad():
        model.out.weight.copy_(torch.tensor([[0.0, w01], [w10, 0.0]]))
        model.out.bias.copy_(torch.tensor([b0, b1]))

    def sig(t):
        return 1.0 / (1.0 + math.exp(-t))

    def bern(x, logit):
        return sig(logit) if x == 1 else 1.0 - sig(logit)

    x = all_binary(2)
    with torch.no_grad():
        ens = model.log_prob(x).numpy()
        lp0 = model.log_prob_single(x, 0).numpy()
        lp1 = model.log_prob_single(x, 1).numpy()
    expect0, expect1, expect_ens, avg_logits = [], [], [], []
    for x0, x1 in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        p0 = bern(x0, b0) * bern(x1, b1 + w10 * x0)
        p1 = bern(x1, b1) * bern(x0, b0 + w01 * x1)
        expect0.append(math.log(p0))
        expect1.append(math.log(p1))
        expect_ens.append(math.log((p0 + p1) / 2))
        avg_logits.append(math.log(bern(x0, (b0 + b0 + w01 * x1) / 2)
                                   * bern(x1, (b1 + w10 * x0 + b1) / 2)))
    assert_allclose(lp0, expect0, rtol=1e-12)
    assert_allclose(lp1, expect1, rtol=1e-12)
    assert_allclose(ens, expect_ens, rtol=1e-12)
    assert np.exp(ens).sum() == pytest.approx(1.0, abs=1e-12)
    # neither the average of logits nor the average of log-probabilities
    assert np.abs(ens - np.array(avg_logits)).max() > 0.05
    assert np.abs(ens - (lp0 + lp1) / 2).max() > 0.05


def test_ensemble_log_prob_equals_logsumexp_of_single_masks():
    model = randomise(MADE(6, (32,), num_masks=5, seed=1).double(), std=1.0, seed=0)
    x = all_binary(6)
    with torch.no_grad():
        singles = torch.stack([model.log_prob_single(x, k).exp() for k in range(5)])
        assert_allclose(model.log_prob(x).numpy(), singles.mean(0).log().numpy(), rtol=1e-10)


def test_log_prob_hand_computed_and_stable():
    model = MADE(3, (4,), natural_ordering=True)
    with torch.no_grad():
        for layer in model.layers:
            layer.weight.zero_()
        model.out.bias.copy_(torch.tensor([0.0, math.log(3.0), 300.0]))  # p = 1/2, 3/4, ~1
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    with torch.no_grad():
        lp = model.log_prob(x).numpy()
    # log sigmoid(-300) = -300: a probability-based loss would give -inf or -100
    assert_allclose(lp, [math.log(0.5 * 0.25), math.log(0.5 * 0.75) - 300.0], rtol=1e-6)


# ----- sampling -------------------------------------------------------------------------
@pytest.mark.parametrize("num_masks", [1, 3])
def test_sample_shape_binary_reproducible(num_masks):
    model = randomise(MADE(7, (16,), num_masks=num_masks), std=1.0, seed=0)
    s1 = model.sample(40, generator=torch.Generator().manual_seed(2))
    s2 = model.sample(40, generator=torch.Generator().manual_seed(2))
    assert s1.shape == (40, 7) and s1.dtype == torch.float32
    assert torch.all((s1 == 0) | (s1 == 1))
    assert torch.equal(s1, s2)
    assert model.sample(0).shape == (0, 7)


@pytest.mark.parametrize("num_masks", [1, 3])
def test_sample_deterministic_pattern(num_masks):
    pattern = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0])
    model = MADE(5, (16, 16), num_masks=num_masks, seed=4)
    with torch.no_grad():
        for layer in model.layers:
            layer.weight.zero_()
        model.out.bias.copy_(100.0 * pattern - 50.0)  # logits +-50
    s = model.sample(30, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s, pattern.expand(30, 5))


@pytest.mark.parametrize("first, expected", [(1.0, [1.0, 1.0, 0.0]), (0.0, [0.0, 0.0, 1.0])])
def test_sample_feeds_earlier_draws_forward(first, expected):
    # natural order, no hidden layer: x_1 copies x_0, x_2 negates x_1
    model = MADE(3, (), natural_ordering=True)
    with torch.no_grad():
        model.out.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [100.0, 0.0, 0.0],
                                             [0.0, -100.0, 0.0]]))
        model.out.bias.copy_(torch.tensor([100.0 * first - 50.0, -50.0, 50.0]))
    s = model.sample(10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s, torch.tensor(expected).expand(10, 3))


@pytest.mark.parametrize("num_masks", [1, 3])
def test_sample_frequencies_match_probabilities(num_masks):
    d = 3
    model = randomise(MADE(d, (16,), num_masks=num_masks, seed=6), std=1.0, seed=5)
    x = all_binary(d).float()
    with torch.no_grad():
        p = model.log_prob(x).exp().numpy()
        p0 = model.log_prob_single(x, 0).exp().numpy()
    assert p.max() - p.min() > 0.1
    if num_masks > 1:  # sampling only mask 0 would be caught
        assert np.abs(p - p0).max() > 0.06
    s = model.sample(20_000, generator=torch.Generator().manual_seed(1)).numpy()
    codes = (s * np.array([4, 2, 1])).sum(axis=1).astype(int)  # same order as all_binary
    freq = np.bincount(codes, minlength=2**d) / len(codes)
    assert np.abs(freq - p).max() < 0.02


# ----- training ---------------------------------------------------------------------------
def correlated_bits(n: int, generator: torch.Generator) -> tuple[torch.Tensor, float]:
    """(n, 8) bits with known entropy: x0 ~ B(.5), x1, x2 = x0 xor B(.1), x3 ~ B(.5),
    x4 = x3, x5 = x0 xor x3, x6 ~ B(.2), x7 = x6 xor B(.1). Returns (data, entropy)."""

    def bern(p):
        return (torch.rand(n, generator=generator) < p).float()

    x0, x3, x6 = bern(0.5), bern(0.5), bern(0.2)
    cols = [x0, (x0 + bern(0.1)) % 2, (x0 + bern(0.1)) % 2, x3, x3, (x0 + x3) % 2, x6,
            (x6 + bern(0.1)) % 2]

    def h(p):
        return -p * math.log(p) - (1 - p) * math.log(1 - p)

    return torch.stack(cols, dim=1), 2 * math.log(2) + 3 * h(0.1) + h(0.2)


@pytest.mark.parametrize("num_masks", [1, 4])
def test_training_beats_independent_bernoulli(num_masks):
    g = torch.Generator().manual_seed(0)
    data, entropy = correlated_bits(4000, g)
    train, test = data[:3000], data[3000:]
    q = train.mean(0).clamp(1e-3, 1 - 1e-3)
    baseline = -(test * q.log() + (1 - test) * (1 - q).log()).sum(1).mean().item()
    model = MADE(8, (32,), num_masks=num_masks, seed=0, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    with torch.no_grad():
        nll_init = -model.log_prob(test).mean().item()
    for _ in range(250):
        idx = torch.randint(3000, (128,), generator=g)
        loss = -model.log_prob_single(train[idx]).mean()  # current mask
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.next_mask()
    with torch.no_grad():
        nll = -model.log_prob(test).mean().item()
    assert nll < nll_init
    assert nll < baseline - 1.5  # baseline is about 5.2 nats, the entropy 2.86
    assert nll < entropy + 0.25  # measured: 2.82 (one mask), 2.90 (ensemble of 4)


# ----- Gaussian MADE ----------------------------------------------------------------------
def grid(lim: float, n: int) -> tuple[torch.Tensor, float]:
    """(n*n, 2) float64 points of a square grid on [-lim, lim]^2 and the cell area."""
    t = torch.linspace(-lim, lim, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(t, t, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1), float(t[1] - t[0]) ** 2


def test_gaussian_made_defaults():
    model = GaussianMADE()
    assert model.n_in == 2 and model.hidden_sizes == (64, 64)
    mean, log_std = model.params(torch.zeros(3, 2))
    assert mean.shape == (3, 2) and log_std.shape == (3, 2)
    assert model(torch.zeros(3, 2)).shape == (3, 4)


@pytest.mark.parametrize("num_masks", [1, 3])
def test_gaussian_log_prob_is_the_chain_rule(num_masks):
    model = GaussianMADE(4, (32, 32), num_masks=num_masks, seed=1).double()
    randomise(model, std=0.4, seed=2)
    x = torch.randn(20, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        per_mask = []
        for k in range(num_masks):
            mean, log_std = model.params(x, k)
            normal = torch.distributions.Normal(mean, log_std.exp())
            per_mask.append(normal.log_prob(x).sum(1))
            assert_allclose(model.log_prob_single(x, k).numpy(), per_mask[-1].numpy(),
                            rtol=1e-12)
        expected = torch.logsumexp(torch.stack(per_mask), 0) - math.log(num_masks)
        assert_allclose(model.log_prob(x).numpy(), expected.numpy(), rtol=1e-12)


@pytest.mark.parametrize("num_masks", [1, 2])
@pytest.mark.parametrize("natural", [True, False])
def test_gaussian_density_integrates_to_one(natural, num_masks):
    model = GaussianMADE(2, (32, 32), num_masks=num_masks, natural_ordering=natural,
                         seed=3, generator=torch.Generator().manual_seed(1)).double()
    pts, area = grid(10.0, 321)
    with torch.no_grad():
        total = (model.log_prob(pts).exp().sum() * area).item()
        # the conditionals are not trivial: means and scales vary over the plane
        mean, log_std = model.params(pts)
    assert total == pytest.approx(1.0, abs=1e-2)
    assert mean.std(0).max() > 0.05 and log_std.std(0).max() > 0.05


@pytest.mark.parametrize("natural", [True, False])
def test_gaussian_autoregressive_by_backprop(natural):
    d = 5
    model = GaussianMADE(d, (64, 64), num_masks=3, natural_ordering=natural, seed=0,
                         activation="tanh").double()
    randomise(model, std=0.5, seed=1)
    x = torch.randn(32, d, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x.requires_grad_(True)
    for k in range(3):
        order = model.input_order(k)
        mean, log_std = model.params(x, k)
        for out in (mean, log_std):
            dep = input_dependence(out, x)  # (D, D)
            for j in range(d):
                later = order >= order[j]
                assert torch.all(dep[j, later] == 0)
                if order[j] > 0:
                    assert dep[j, ~later].max() > 0


def test_gaussian_sample_hand_built_chain():
    # x0 ~ N(1, 0.5^2), x1 | x0 ~ N(2 x0, 0.1^2)
    model = GaussianMADE(2, (), natural_ordering=True)
    with torch.no_grad():
        model.out.weight.zero_()
        model.out.weight[1, 0] = 2.0  # mean of x1 from x0
        model.out.bias.copy_(torch.tensor([1.0, 0.0, math.log(0.5), math.log(0.1)]))
    s = model.sample(20_000, generator=torch.Generator().manual_seed(0))
    assert s.shape == (20_000, 2)
    assert s[:, 0].mean().item() == pytest.approx(1.0, abs=0.02)
    assert s[:, 0].std().item() == pytest.approx(0.5, abs=0.02)
    resid = s[:, 1] - 2.0 * s[:, 0]
    assert resid.mean().item() == pytest.approx(0.0, abs=0.005)
    assert resid.std().item() == pytest.approx(0.1, abs=0.005)
    x = torch.tensor([[1.5, 2.8]])
    expected = (-0.5 * (0.5 / 0.5) ** 2 - math.log(0.5) - 0.5 * (0.2 / 0.1) ** 2 - math.log(0.1)
                - math.log(2 * math.pi))
    with torch.no_grad():
        assert model.log_prob(x).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("num_masks", [1, 3])
def test_gaussian_samples_match_density(num_masks):
    model = GaussianMADE(2, (32, 32), num_masks=num_masks, seed=2,
                         generator=torch.Generator().manual_seed(4)).double()
    s = model.sample(20_000, generator=torch.Generator().manual_seed(0))
    pts, area = grid(10.0, 321)
    with torch.no_grad():
        dens = model.log_prob(pts).exp() * area  # (N,) mass per cell
    cx, cy = s[:, 0].median(), s[:, 1].median()
    for sx, sy in itertools.product([1, -1], repeat=2):
        mass = dens[(sx * (pts[:, 0] - cx) > 0) & (sy * (pts[:, 1] - cy) > 0)].sum().item()
        freq = ((sx * (s[:, 0] - cx) > 0) & (sy * (s[:, 1] - cy) > 0)).double().mean().item()
        assert freq == pytest.approx(mass, abs=0.02)


# ----- devices ----------------------------------------------------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda():
    model = randomise(MADE(5, (16,), num_masks=3, seed=0), std=1.0, seed=0)
    x = all_binary(5).float()
    with torch.no_grad():
        cpu = model.log_prob(x)
        model = model.cuda()
        gpu = model.log_prob(x.cuda())
        model.next_mask()
    assert_allclose(gpu.cpu().numpy(), cpu.numpy(), rtol=1e-5, atol=1e-6)
    s = model.sample(16, generator=torch.Generator(device="cuda").manual_seed(0))
    assert s.device.type == "cuda" and torch.all((s == 0) | (s == 1))
    gm = GaussianMADE().cuda()
    assert gm.sample(4, generator=torch.Generator().manual_seed(0)).device.type == "cuda"
    assert torch.isfinite(gm.log_prob(torch.zeros(3, 2, device="cuda"))).all()


def test_log_prob_uses_bce_with_logits_values():
    model = randomise(MADE(4, (8,), num_masks=1), std=1.0, seed=3)
    x = all_binary(4).float()
    with torch.no_grad():
        manual = -F.binary_cross_entropy(torch.sigmoid(model.logits(x)), x, reduction="none")
        assert_allclose(model.log_prob(x).numpy(), manual.sum(1).numpy(), rtol=1e-5)
