"""PixelRNN (Row LSTM / GRU, Diagonal BiLSTM): normalisation, causality, sampling, learning."""

import itertools

import pytest
import torch
from torch import nn

from dlab.models.pixelcnn import MaskedConv2d
from dlab.models.pixelrnn import PixelRNN, PixelRNNConfig, RowRecurrence


@pytest.fixture(autouse=True)
def one_thread():
    """Recurrences step through tiny tensors: extra threads only add waiting on a busy CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


KINDS = [
    dict(cell="lstm", layer_type="row"),
    dict(cell="gru", layer_type="row"),
    dict(cell="lstm", layer_type="diagonal"),
    dict(cell="gru", layer_type="diagonal"),
]
KIND_IDS = ["row-lstm", "row-gru", "diagonal-lstm", "diagonal-gru"]


def all_binary_images(height, width):
    """Every binary image of the size, (2^(H W), 1, H, W) float64."""
    rows = list(itertools.product([0.0, 1.0], repeat=height * width))
    return torch.tensor(rows, dtype=torch.float64).view(-1, 1, height, width)


def sharpened(model, scale=3.0):
    """float64 copy with random weights scaled up so conditionals are far from 0.5."""
    model = model.double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    return model


def make(seed=0, **kw):
    torch.manual_seed(seed)
    return PixelRNN(**kw)


def in_image(positions, height, width):
    return {(a, b) for a, b in positions if 0 <= a < height and 0 <= b < width}


def mask_a_reads(s, height, width, k_first):
    """Pixels that the mask-A conv reads at the positions s: the rows above and the left."""
    rf = k_first // 2
    above = [(di, dj) for di in range(-rf, 0) for dj in range(-rf, rf + 1)]
    left = [(0, dj) for dj in range(-rf, 0)]
    return in_image({(a + di, b + dj) for a, b in s for di, dj in above + left}, height, width)


def row_lstm_receptive_field(p, height, width, n_layers, k, k_first):
    """Pixels that reach the logit at p in a Row LSTM, by walking the recurrences backwards.

    A state at (a, b) reads the layer input at (a, b - r .. b) (mask-B 1 x k conv) and the
    states at (a - 1, b - r .. b + r); a residual layer's output at q reads its input at q
    and through the recurrence. The mask-A conv then reads earlier pixels near each position.
    """
    r = k // 2
    s = {p}
    for _ in range(n_layers):
        states, frontier = set(s), set(s)
        while frontier:
            frontier = in_image({(a - 1, b + d) for a, b in frontier for d in range(-r, r + 1)},
                                height, width) - states
            states |= frontier
        s |= in_image({(a, b + d) for a, b in states for d in range(-r, 1)}, height, width)
    return mask_a_reads(s, height, width, k_first)


def diagonal_receptive_field(p, height, width, n_layers, k_first):
    """The same for the Diagonal BiLSTM.

    The left-to-right state at (a, b) reads the states at (a - 1, b) and (a, b - 1), so
    every layer input up and to the left of it; the right-to-left state, taken from the
    row above, (i - 1, j), reads every input up and to the right of (i - 1, j).
    """
    s = {p}
    for _ in range(n_layers):
        s = s | {(a, b) for a in range(height) for b in range(width)
                 for i, j in s if (a <= i and b <= j) or (a <= i - 1 and b >= j)}
    return mask_a_reads(s, height, width, k_first)


def receptive_field(p, height, width, kw):
    cfg = PixelRNNConfig(**kw)
    if kw["layer_type"] == "diagonal":
        return diagonal_receptive_field(p, height, width, cfg.n_layers, cfg.first_kernel_size)
    return row_lstm_receptive_field(p, height, width, cfg.n_layers, cfg.kernel_size,
                                    cfg.first_kernel_size)


def test_row_lstm_receptive_field_helper_by_hand():
    # 1 layer, k = 3, 3x3 mask A, logit at (3, 1) of a 4x5 image: the state triangle
    # {(3, 1), (2, 0..2), (1, 0..3), (0, 0..4)} reads inputs at (a, b - 1 .. b); mask A
    # then reads the row above each of those (columns b - 1 .. b + 1) and the left one.
    got = row_lstm_receptive_field((3, 1), 4, 5, n_layers=1, k=3, k_first=3)
    want = {(0, b) for b in range(5)} | {(1, b) for b in range(4)} \
        | {(2, b) for b in range(3)} | {(3, 0)}
    assert got == want
    # without the recurrence only rows 2 and 3 would be in reach of (3, 1)


def test_diagonal_receptive_field_helper_by_hand():
    # every earlier pixel but one: the last pixel of the row above is read by no layer
    # input at or before (i, j) unless the mask-A conv reaches it from row i (j >= W - 1 - rf)
    every_earlier = {(a, b) for a in range(4) for b in range(6) if (a, b) < (2, 1)}
    got = diagonal_receptive_field((2, 1), 4, 6, n_layers=2, k_first=3)
    assert got == every_earlier - {(1, 5)}
    got = diagonal_receptive_field((2, 4), 4, 6, n_layers=1, k_first=3)
    assert got == {(a, b) for a in range(4) for b in range(6) if (a, b) < (2, 4)}


@pytest.mark.parametrize("size", [(3, 3), (2, 4)])
@pytest.mark.parametrize("kw", KINDS, ids=KIND_IDS)
def test_probabilities_of_all_images_sum_to_one(size, kw):
    model = sharpened(make(hidden_channels=8, n_layers=2, **kw))
    x = all_binary_images(*size)
    with torch.no_grad():
        lp = model.log_prob(x)
        cond = torch.sigmoid(model.logits(x))
    assert lp.shape == (x.shape[0],)
    assert torch.exp(lp).sum().item() == pytest.approx(1.0, abs=1e-5)
    assert (cond - 0.5).abs().max().item() > 0.3  # not a uniform fake
    assert lp.max().item() - lp.min().item() > 3.0


@pytest.mark.parametrize("size", [(5, 6), (4, 4)])
@pytest.mark.parametrize("kw", [
    dict(cell="lstm", layer_type="row", n_layers=1, first_kernel_size=3),
    dict(cell="gru", layer_type="row", n_layers=2, first_kernel_size=3),
    dict(cell="lstm", layer_type="row", n_layers=1, kernel_size=5, first_kernel_size=3),
    dict(cell="lstm", layer_type="row", n_layers=2),
    dict(cell="lstm", layer_type="diagonal", n_layers=1, first_kernel_size=3),
    dict(cell="gru", layer_type="diagonal", n_layers=2, first_kernel_size=3),
], ids=["row-lstm", "row-gru-2", "row-lstm-k5", "row-lstm-7x7", "diag-lstm", "diag-gru-2"])
def test_gradient_of_each_logit_reaches_exactly_the_causal_context(size, kw):
    height, width = size
    model = make(hidden_channels=8, **kw).double()
    x = torch.rand(8, 1, height, width, dtype=torch.float64,
                   generator=torch.Generator().manual_seed(1), requires_grad=True)
    for i, j in itertools.product(range(height), range(width)):
        (grad,) = torch.autograd.grad(model.logits(x)[:, 0, i, j].sum(), x)
        for a, b in itertools.product(range(height), range(width)):
            if (a, b) >= (i, j):
                assert torch.all(grad[:, 0, a, b] == 0), f"logit {(i, j)} sees pixel {(a, b)}"
        reached = (grad != 0).any(dim=0)[0]  # (H, W)
        got = {(a, b) for a, b in itertools.product(range(height), range(width)) if reached[a, b]}
        assert got == receptive_field((i, j), height, width, kw), (i, j)
        if (i, j) > (0, 0):
            assert got  # at least one earlier pixel matters


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_row_recurrence_with_k1_equals_torch_rnn_down_each_column(cell):
    # with 1x1 kernels a row layer is an ordinary LSTM/GRU running down every column
    torch.manual_seed(0)
    layer = RowRecurrence(5, 1, cell).double()
    ref = (nn.LSTM if cell == "lstm" else nn.GRU)(5, 5, batch_first=True).double()
    w_ih = layer.input_to_state.weight[:, :, 0, 0]  # (G*5, 5)
    w_hh = layer.state_to_state.weight[:, :, 0]  # (G*5, 5)
    b_ih, b_hh = layer.input_to_state.bias, layer.state_to_state.bias
    if cell == "lstm":  # ours [o, f, i, g] -> torch [i, f, g, o]
        order = [2, 1, 3, 0]

        def perm(t):
            return torch.cat([t.chunk(4)[k] for k in order])
    else:  # both [r, z, n]
        def perm(t):
            return t
    with torch.no_grad():
        ref.weight_ih_l0.copy_(perm(w_ih))
        ref.weight_hh_l0.copy_(perm(w_hh))
        ref.bias_ih_l0.copy_(perm(b_ih))
        ref.bias_hh_l0.copy_(perm(b_hh))
    x = torch.randn(2, 5, 4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    seqs = x.permute(0, 3, 2, 1).reshape(2 * 3, 4, 5)  # (B*W, H, C): one sequence per column
    out, _ = ref(seqs)  # (B*W, H, C)
    want = out.reshape(2, 3, 4, 5).permute(0, 3, 2, 1)  # (B, C, H, W)
    torch.testing.assert_close(layer(x), want)


def test_mask_shapes_by_hand():
    model = make(hidden_channels=4, n_layers=2, first_kernel_size=3)
    masked = [m for m in model.modules() if isinstance(m, MaskedConv2d)]
    assert [m.mask_type for m in masked] == ["A", "B", "B"]
    a = torch.tensor([[1, 1, 1], [1, 0, 0], [0, 0, 0]], dtype=torch.float32)
    b = torch.tensor([[1, 1, 0]], dtype=torch.float32)  # 1 x 3 along the row
    assert torch.equal(masked[0].mask, a.expand(4, 1, 3, 3))
    assert torch.equal(masked[1].mask, b.expand(16, 4, 1, 3))
    assert "layers.0.input_to_state.mask" in dict(model.named_buffers())


@pytest.mark.parametrize("kw", KINDS[:2], ids=KIND_IDS[:2])
def test_mask_is_applied_in_forward_and_raw_weights_are_kept(kw):
    model = make(hidden_channels=8, n_layers=2, **kw)
    masked = [m for m in model.modules() if isinstance(m, MaskedConv2d)]
    x = torch.bernoulli(torch.full((4, 1, 5, 6), 0.5), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        before = model.logits(x)
        for m in masked:
            assert (m.weight[m.mask == 0] != 0).all()  # raw init kept, not zeroed
        planted = []
        for m in masked:
            junk = 100 * torch.randn(int((m.mask == 0).sum()))
            m.weight[m.mask == 0] = junk
            planted.append(junk)
        after = model.logits(x)
    assert torch.equal(before, after)
    for m, junk in zip(masked, planted, strict=True):
        assert torch.equal(m.weight[m.mask == 0], junk)

    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    kept = [m.weight.detach().clone() for m in masked]
    opt.zero_grad()
    (-model.log_prob(x).mean()).backward()
    opt.step()
    for m, w0 in zip(masked, kept, strict=True):
        assert torch.all(m.weight.grad[m.mask == 0] == 0)
        assert torch.equal(m.weight[m.mask == 0], w0[m.mask == 0])
        assert not torch.equal(m.weight[m.mask == 1], w0[m.mask == 1])


def test_exact_parameter_counts_and_default_construction():
    def count(**kw):
        return sum(p.numel() for p in PixelRNN(hidden_channels=8, n_layers=1, **kw).parameters())

    stem, residual, head = 8 * 49 + 8, 8 * 8 + 8, (8 * 8 + 8) + (8 + 1)
    # row: 1x3 input-to-state and 1x3 state-to-state, 8 -> G*8 each
    assert count(cell="lstm") == stem + 2 * (8 * 32 * 3 + 32) + residual + head
    assert count(cell="gru") == stem + 2 * (8 * 24 * 3 + 24) + residual + head
    # diagonal: two directions of 1x1 input-to-state and 2x1 state-to-state
    assert count(layer_type="diagonal") == stem + 2 * ((8 * 32 + 32) + (8 * 32 * 2 + 32)) \
        + residual + head
    default = PixelRNN()
    assert default.config == PixelRNNConfig(64, 2, "lstm", "row", 3, 7)
    assert len(default.layers) == 2


@pytest.mark.parametrize("kw", KINDS, ids=KIND_IDS)
def test_sample_shape_binary_and_seeded(kw):
    model = make(hidden_channels=8, n_layers=1, **kw)
    s1 = model.sample(3, 4, 7, generator=torch.Generator().manual_seed(5))
    s2 = model.sample(3, 4, 7, generator=torch.Generator().manual_seed(5))
    assert s1.shape == (3, 1, 4, 7) and s1.dtype == torch.float32
    assert torch.all((s1 == 0) | (s1 == 1))
    assert torch.equal(s1, s2)


@pytest.mark.parametrize("kw", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("bias, value", [(50.0, 1.0), (-50.0, 0.0)])
def test_sample_of_a_constant_model(kw, bias, value):
    model = make(hidden_channels=8, n_layers=2, **kw)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.head[-1].bias.fill_(bias)
    s = model.sample(2, 3, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s, torch.full((2, 1, 3, 5), value))


@pytest.mark.parametrize("kw", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("tap", ["left", "above"])
def test_sample_of_a_hand_built_model_that_inverts_a_neighbour(kw, tap):
    # All recurrent weights zero: an LSTM/GRU state then stays exactly 0 and the residual
    # stream is the mask-A conv. logit = 50 - 100 relu(2 x_nb - 1): 1 unless the neighbour
    # is 1; outside the image the neighbour reads 0 padding, so stripes start with 1.
    model = make(hidden_channels=8, n_layers=2, **kw)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        c = 3  # centre of the 7x7 mask-A kernel
        if tap == "left":
            model.input_conv.weight[0, 0, c, c - 1] = 1.0
        else:
            model.input_conv.weight[0, 0, c - 1, c] = 1.0
        model.head[1].weight[0, 0, 0, 0] = 1.0
        model.head[3].weight[0, 0, 0, 0] = -100.0
        model.head[3].bias.fill_(50.0)
    s = model.sample(2, 4, 5, generator=torch.Generator().manual_seed(0))
    i, j = torch.meshgrid(torch.arange(4), torch.arange(5), indexing="ij")
    stripes_ = ((j if tap == "left" else i) % 2 == 0).float()
    assert torch.equal(s, stripes_.expand(2, 1, 4, 5))


@pytest.mark.parametrize("kw, scale", [(KINDS[0], 4.0), (KINDS[2], 3.0)],
                         ids=["row-lstm", "diagonal-lstm"])
def test_sample_frequencies_match_probabilities(kw, scale):
    model = sharpened(make(hidden_channels=8, n_layers=1, **kw), scale=scale).float()
    x = all_binary_images(2, 2).float()
    with torch.no_grad():
        probs = model.log_prob(x).exp()
    assert probs.max().item() > 0.15 and probs.min().item() < 0.01  # far from uniform 1/16
    s = model.sample(20_000, 2, 2, generator=torch.Generator().manual_seed(7))
    codes = (s.view(-1, 4) * torch.tensor([8.0, 4.0, 2.0, 1.0])).sum(1).long()
    freq = torch.bincount(codes, minlength=16).double() / 20_000
    assert (freq - probs.double()).abs().max().item() < 0.02


def stripes(n, generator, size=6, flip=0.05):
    """Vertical stripes on even or odd columns (random phase), each pixel flipped w.p. flip."""
    phase = torch.randint(0, 2, (n, 1, 1, 1), generator=generator)
    cols = torch.arange(size).view(1, 1, 1, size)
    clean = ((cols + phase) % 2).float().expand(n, 1, size, size)
    noise = (torch.rand(n, 1, size, size, generator=generator) < flip).float()
    return (clean + noise) % 2


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_training_lowers_nll_on_stripes(cell):
    g = torch.Generator().manual_seed(0)
    train, test = stripes(512, g), stripes(256, g)
    model = make(seed=0, hidden_channels=16, n_layers=1, cell=cell)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with torch.no_grad():
        nll0 = -model.log_prob(test).mean().item()
    for _ in range(80):
        batch = train[torch.randint(0, 512, (32,), generator=g)]
        loss = -model.log_prob(batch).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        nll = -model.log_prob(test).mean().item()
    # 36 fair coins: 24.9 nats; the true source scores 7.2 nats on this test set
    assert nll0 > 20
    assert nll < 8.5


@pytest.mark.parametrize("kw", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("size", [(28, 28), (7, 11)])
def test_log_prob_any_size_equals_bernoulli_formula(size, kw):
    model = make(hidden_channels=8, n_layers=1, **kw).double()
    g = torch.Generator().manual_seed(4)
    x = torch.bernoulli(torch.full((2, 1, *size), 0.3, dtype=torch.float64), generator=g)
    with torch.no_grad():
        lp = model.log_prob(x)
        q = torch.sigmoid(model.logits(x))
        one_by_one = torch.cat([model.log_prob(x[k : k + 1]) for k in range(2)])
    want = (x * q.log() + (1 - x) * (1 - q).log()).sum(dim=(1, 2, 3))
    assert lp.shape == (2,)
    torch.testing.assert_close(lp, want)
    torch.testing.assert_close(lp, one_by_one)
    assert torch.all(lp < 0)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="cell"):
        PixelRNN(cell="rnn")
    with pytest.raises(ValueError, match="layer_type"):
        PixelRNN(layer_type="column")
    with pytest.raises(ValueError, match="binary"):
        make(hidden_channels=4, n_layers=1).log_prob(torch.full((1, 1, 2, 2), 0.5))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kw", KINDS, ids=KIND_IDS)
def test_runs_on_the_parameters_device(kw):
    model = make(hidden_channels=8, n_layers=1, **kw).cuda()
    s = model.sample(2, 3, 4, generator=torch.Generator().manual_seed(0))
    assert s.device.type == "cuda"
    assert model.log_prob(s).device.type == "cuda"
