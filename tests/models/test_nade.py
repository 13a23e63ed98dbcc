"""NADE: exact normalisation, the autoregressive property, a naive reference, sampling."""

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy.testing import assert_allclose

from dlab.models.nade import NADE, RunningSum


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
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * std)
    return model


def naive_log_prob(W, c, V, b, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's equations, one example and one dimension at a time.

    Returns (logits (B, D), log p(x) (B,)) with probabilities, not logits, in the sum.
    """
    logits, logp = [], []
    for i in range(x.shape[0]):
        row, total = [], 0.0
        for d in range(x.shape[1]):
            h = torch.sigmoid(c + W[:, :d] @ x[i, :d])  # h_d from x_<d only
            row.append(b[d] + V[d] @ h)
            p = torch.sigmoid(row[-1])
            total = total + x[i, d] * torch.log(p) + (1 - x[i, d]) * torch.log(1 - p)
        logits.append(torch.stack(row))
        logp.append(total)
    return torch.stack(logits), torch.stack(logp)


def test_parameter_shapes_and_count():
    model = NADE(7, 5)
    assert model.W.shape == (5, 7) and model.c.shape == (5,)
    assert model.V.shape == (7, 5) and model.b.shape == (7,)
    assert sum(p.numel() for p in model.parameters()) == 2 * 7 * 5 + 5 + 7
    assert model.W.dtype == torch.float32


def test_init_is_reproducible_with_a_generator():
    a = NADE(6, 4, generator=torch.Generator().manual_seed(3))
    b = NADE(6, 4, generator=torch.Generator().manual_seed(3))
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("d, h, seed", [(8, 16, 0), (10, 7, 1), (9, 1, 2)])
def test_probabilities_sum_to_one_over_all_inputs(d, h, seed):
    model = randomise(NADE(d, h).double(), std=2.0, seed=seed)
    x = all_binary(d)
    with torch.no_grad():
        p = model.log_prob(x).exp()
    assert p.sum().item() == pytest.approx(1.0, abs=1e-5)
    # far from uniform: a fake that ignores the data and returns -D log 2 would pass the sum
    assert p.max().item() > 8.0 / 2**d


def test_matches_naive_per_dimension_loop():
    d, h = 9, 6
    model = randomise(NADE(d, h).double(), std=1.5, seed=4)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(12, d, generator=g) < 0.5).double()
    params = [model.W, model.c, model.V, model.b]
    ref_logits, ref_logp = naive_log_prob(*params, x)
    logits, logp = model.logits(x), model.log_prob(x)
    assert_allclose(logits.detach().numpy(), ref_logits.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert_allclose(logp.detach().numpy(), ref_logp.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert torch.equal(model(x), logits)
    # the gradients used for training agree too
    grads = torch.autograd.grad(logp.sum(), params)
    ref_grads = torch.autograd.grad(ref_logp.sum(), params)
    for g, ref in zip(grads, ref_grads, strict=True):
        assert_allclose(g.numpy(), ref.numpy(), rtol=1e-9, atol=1e-12)


def test_autoregressive_property_by_backprop():
    d, h = 8, 10
    model = randomise(NADE(d, h).double(), std=1.0, seed=5)
    x = torch.randn(16, d, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x.requires_grad_(True)
    logits = model.logits(x)
    for j in range(d):
        (grad,) = torch.autograd.grad(logits[:, j].sum(), x, retain_graph=True)
        dep = grad.abs().sum(dim=0)  # (D,): how much logit j moved with each input
        assert torch.all(dep[j:] == 0), f"logit {j} depends on x_{j} or a later input"
        # NADE's weights are dense: every earlier input feeds logit j
        assert torch.all(dep[:j] > 0), f"logit {j} ignores an earlier input"


def test_log_prob_is_stable_for_extreme_logits():
    d = 5
    model = NADE(d, 3)
    with torch.no_grad():
        model.W.zero_()
        model.V.zero_()
        model.b.fill_(200.0)  # p(x_d = 1) = sigmoid(200): 1.0 in float32
    ones, zeros = torch.ones(1, d), torch.zeros(1, d)
    with torch.no_grad():
        assert model.log_prob(ones).item() == pytest.approx(0.0, abs=1e-6)
        # log sigmoid(-200) = -200 exactly; probabilities would give -inf (or -100 clamped)
        assert model.log_prob(zeros).item() == pytest.approx(-200.0 * d, rel=1e-6)


def test_log_prob_hand_computed():
    # zero weights: independent bits with p(x_d = 1) = sigmoid(b_d)
    model = NADE(3, 2)
    with torch.no_grad():
        model.W.zero_()
        model.V.zero_()
        model.b.copy_(torch.tensor([0.0, math.log(3.0), -math.log(4.0)]))  # p = 1/2, 3/4, 1/5
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    expected = [math.log(0.5 * 0.25 * 0.2), math.log(0.5 * 0.75 * 0.8)]
    with torch.no_grad():
        assert_allclose(model.log_prob(x).numpy(), expected, rtol=1e-6)


def test_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        NADE(4, 3).log_prob(torch.zeros(2, 5))
    with pytest.raises(ValueError):
        NADE(0, 3)


def test_sample_shape_binary_and_reproducible():
    model = randomise(NADE(6, 5), std=1.0, seed=0)
    s1 = model.sample(50, generator=torch.Generator().manual_seed(7))
    s2 = model.sample(50, generator=torch.Generator().manual_seed(7))
    assert s1.shape == (50, 6) and s1.dtype == torch.float32
    assert torch.all((s1 == 0) | (s1 == 1))
    assert torch.equal(s1, s2)
    assert model.sample(0).shape == (0, 6)


def test_sample_deterministic_pattern():
    model = NADE(6, 4)
    pattern = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0])
    with torch.no_grad():
        model.W.zero_()
        model.V.zero_()
        model.b.copy_(100.0 * pattern - 50.0)  # logits +-50
    s = model.sample(20, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s, pattern.expand(20, 6))


@pytest.mark.parametrize("first", [0.0, 1.0])
def test_sample_feeds_earlier_draws_forward(first):
    # one hidden unit that copies x_0 (h = sigmoid(-50 + 100 x_0)); every later bit
    # copies it, so samples are all-ones or all-zeros depending on the first bit only
    d = 5
    model = NADE(d, 1)
    with torch.no_grad():
        model.W.zero_()
        model.W[0, 0] = 100.0
        model.c.fill_(-50.0)
        model.V.fill_(100.0)
        model.b.fill_(-50.0)
        model.V[0] = 0.0
        model.b[0] = 50.0 if first else -50.0
    s = model.sample(10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s, torch.full((10, d), first))


def test_sample_frequencies_match_probabilities():
    d = 3
    model = randomise(NADE(d, 4), std=1.5, seed=11)
    x = all_binary(d).float()
    with torch.no_grad():
        p = model.log_prob(x).exp().numpy()
    assert p.max() - p.min() > 0.1  # a non-trivial distribution to match
    s = model.sample(20_000, generator=torch.Generator().manual_seed(0)).numpy()
    codes = (s * np.array([4, 2, 1])).sum(axis=1).astype(int)  # same order as all_binary
    freq = np.bincount(codes, minlength=2**d) / len(codes)
    assert np.abs(freq - p).max() < 0.02


def test_training_beats_independent_bernoulli():
    # x_0 ~ B(1/2); x_1..x_3 copy x_0; x_4 ~ B(1/2); x_5 copies x_4: entropy 2 log 2,
    # while independent bits cost 6 log 2
    g = torch.Generator().manual_seed(0)
    a = (torch.rand(3000, 1, generator=g) < 0.5).float()
    c = (torch.rand(3000, 1, generator=g) < 0.5).float()
    data = torch.cat([a, a, a, a, c, c], dim=1)
    train, test = data[:2000], data[2000:]
    q = train.mean(0).clamp(1e-3, 1 - 1e-3)
    baseline = -(test * q.log() + (1 - test) * (1 - q).log()).sum(1).mean().item()
    model = NADE(6, 16, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    with torch.no_grad():
        nll_init = -model.log_prob(test).mean().item()
    for step in range(200):
        batch = train[(step * 100) % 2000 : (step * 100) % 2000 + 100]
        loss = -model.log_prob(batch).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        nll = -model.log_prob(test).mean().item()
    assert nll < nll_init
    assert nll < baseline - 2.0  # baseline is about 6 log 2 = 4.16 nats
    assert nll < 2 * math.log(2) + 0.1  # measured: 1.40 against 1.386


def test_logits_match_binary_cross_entropy_definition():
    model = randomise(NADE(4, 3), std=1.0, seed=2)
    x = all_binary(4).float()
    with torch.no_grad():
        lp = model.log_prob(x)
        manual = -F.binary_cross_entropy(torch.sigmoid(model.logits(x)), x, reduction="none")
    assert_allclose(lp.numpy(), manual.sum(1).numpy(), rtol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda():
    model = randomise(NADE(5, 4), std=1.0, seed=0)
    x = all_binary(5).float()
    with torch.no_grad():
        cpu = model.log_prob(x)
        model = model.cuda()
        gpu = model.log_prob(x.cuda())
    assert_allclose(gpu.cpu().numpy(), cpu.numpy(), rtol=1e-5, atol=1e-6)
    s = model.sample(8, generator=torch.Generator(device="cuda").manual_seed(0))
    assert s.device.type == "cuda" and torch.all((s == 0) | (s == 1))
    assert model.sample(8, generator=torch.Generator().manual_seed(0)).device.type == "cuda"


@pytest.mark.parametrize("d,h,chunk", [(7, 5, 1), (7, 5, 3), (7, 5, 8), (12, 4, 5), (1, 3, 8)])
def test_running_sum_matches_dense_form_and_its_gradients(d, h, chunk):
    """The chunked running sum (the CPU path) gives the dense form's logits and, through
    its hand-written backward pass, the same gradients for every parameter and the input
    as autograd through the dense form."""
    model = randomise(NADE(d, h).double(), std=1.5, seed=d + chunk)
    gen = torch.Generator().manual_seed(chunk)
    x = torch.randn(6, d, generator=gen, dtype=torch.float64)  # real-valued: dx is tested
    weights = torch.randn(6, d, generator=gen, dtype=torch.float64)
    got, want = [], []
    for form, out in ((lambda v: RunningSum.apply(v, model.W, model.c, model.V, model.b,
                                                  chunk), got),
                      (model.dense_logits, want)):
        xi = x.clone().requires_grad_(True)
        logits = form(xi)
        out.append(logits.detach())
        out.extend(torch.autograd.grad((logits * weights).sum(), [xi, *model.parameters()]))
    for a, b in zip(got, want, strict=True):
        assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-12)


def test_running_sum_gradients_match_finite_differences():
    model = randomise(NADE(9, 3).double(), std=1.0, seed=1)
    x = torch.randn(4, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(2),
                    requires_grad=True)
    params = [p.detach().clone().requires_grad_(True) for p in model.parameters()]
    assert torch.autograd.gradcheck(lambda x, W, c, V, b: RunningSum.apply(x, W, c, V, b, 4),
                                    (x, *params))


def test_cpu_logits_use_the_running_sum(monkeypatch):
    """NADE.logits on a CPU goes through RunningSum (the dense form is the GPU path)."""
    calls = []
    monkeypatch.setattr(RunningSum, "apply", lambda *a: calls.append(a) or torch.zeros(1))
    NADE(5, 3).logits(torch.zeros(2, 5))
    assert len(calls) == 1
