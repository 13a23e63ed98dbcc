"""PixelCNN: exact normalisation, masks by back-propagation, sampling, learning."""

import itertools

import pytest
import torch

from dlab.models.pixelcnn import MaskedConv2d, PixelCNN, PixelCNNConfig


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: extra threads only add waiting when the CPU is shared."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


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
    return PixelCNN(**kw)


def raster_later_or_equal(p, height, width):
    i, j = p
    return {(a, b) for a in range(height) for b in range(width) if (a, b) >= (i, j)}


def pixelcnn_receptive_field(p, height, width, n_layers, k, k_first):
    """Pixels whose value reaches the logit at p, by walking the masks backwards.

    A 'same' conv at output q reads its input at q + d for d in the mask's offsets;
    positions outside the image are zero padding and carry nothing.
    """

    def offsets(size, include_centre):
        r = size // 2
        above = {(di, dj) for di in range(-r, 0) for dj in range(-r, r + 1)}
        left = {(0, dj) for dj in range(-r, 1 if include_centre else 0)}
        return above | left

    def step(positions, offs):
        return {
            (a + di, b + dj)
            for a, b in positions
            for di, dj in offs
            if 0 <= a + di < height and 0 <= b + dj < width
        }

    s = {p}
    for _ in range(n_layers):
        s = step(s, offsets(k, True))  # residual block: skip path is the centre tap
    return step(s, offsets(k_first, False))


@pytest.mark.parametrize("size", [(3, 3), (2, 4)])
@pytest.mark.parametrize("kw", [
    dict(channels=8, n_layers=1, kernel_size=3),
    dict(channels=8, n_layers=2, kernel_size=5),
    dict(channels=6, n_layers=3, kernel_size=3, first_kernel_size=3),
])
def test_probabilities_of_all_images_sum_to_one(size, kw):
    model = sharpened(make(**kw))
    x = all_binary_images(*size)
    with torch.no_grad():
        lp = model.log_prob(x)
        cond = torch.sigmoid(model.logits(x))
    assert lp.shape == (x.shape[0],)
    assert torch.exp(lp).sum().item() == pytest.approx(1.0, abs=1e-5)
    # not a uniform fake: conditionals far from 0.5 and image probabilities spread out
    assert (cond - 0.5).abs().max().item() > 0.3
    assert lp.max().item() - lp.min().item() > 3.0


@pytest.mark.parametrize("size", [(5, 6), (4, 4)])
@pytest.mark.parametrize("kw", [
    dict(channels=8, n_layers=1, kernel_size=3),
    dict(channels=8, n_layers=2, kernel_size=3, first_kernel_size=3),
    dict(channels=8, n_layers=1, kernel_size=5, first_kernel_size=5),
])
def test_gradient_of_each_logit_reaches_exactly_the_masked_receptive_field(size, kw):
    height, width = size
    model = make(**kw).double()
    x = torch.rand(8, 1, height, width, dtype=torch.float64,
                   generator=torch.Generator().manual_seed(1), requires_grad=True)
    cfg = PixelCNNConfig(**kw)
    for i, j in itertools.product(range(height), range(width)):
        (grad,) = torch.autograd.grad(model.logits(x)[:, 0, i, j].sum(), x)
        reached = (grad != 0).any(dim=0)[0]  # (H, W): nonzero for some image in the batch
        for a, b in raster_later_or_equal((i, j), height, width):
            assert torch.all(grad[:, 0, a, b] == 0), f"logit {(i, j)} sees pixel {(a, b)}"
        got = {(a, b) for a, b in itertools.product(range(height), range(width)) if reached[a, b]}
        want = pixelcnn_receptive_field((i, j), height, width, cfg.n_layers,
                                        cfg.kernel_size, cfg.first_kernel_size)
        assert got == want, (i, j)
        if j > 0:
            assert (i, j - 1) in got
        if i > 0:
            assert (i - 1, j) in got


def test_receptive_field_helper_by_hand():
    # one 3x3 mask-B block after a 3x3 mask-A conv, logit at (2, 2) of a 3x4 image:
    # A reads (1, 1..3), (2, 1); B first widens to (1, 1..3) and (2, 1), (2, 2).
    got = pixelcnn_receptive_field((2, 2), 3, 4, n_layers=1, k=3, k_first=3)
    assert got == {(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (1, 2), (1, 3), (2, 0), (2, 1)}
    # the blind spot: logit (2, 0) cannot see (0, 3) with these sizes
    assert (0, 3) not in pixelcnn_receptive_field((2, 0), 3, 4, n_layers=1, k=3, k_first=3)


def test_mask_shapes_by_hand():
    model = make(channels=4, n_layers=1, kernel_size=3, first_kernel_size=5)
    masked = [m for m in model.modules() if isinstance(m, MaskedConv2d)]
    assert [m.mask_type for m in masked] == ["A", "B"]
    a = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0],
                      [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.float32)
    b = torch.tensor([[1, 1, 1], [1, 1, 0], [0, 0, 0]], dtype=torch.float32)
    assert torch.equal(masked[0].mask, a.expand(4, 1, 5, 5))
    assert torch.equal(masked[1].mask, b.expand(2, 2, 3, 3))
    names = dict(model.named_buffers())
    assert "input_conv.mask" in names and "blocks.0.net.3.mask" in names
    assert all("mask" not in n for n, _ in model.named_parameters())


def test_mask_is_applied_in_forward_and_raw_weights_are_kept():
    model = make(channels=8, n_layers=2, kernel_size=3)
    masked = [m for m in model.modules() if isinstance(m, MaskedConv2d)]
    assert len(masked) == 3
    x = torch.bernoulli(torch.full((4, 1, 6, 5), 0.5), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        before = model.logits(x)
        # raw parameters at masked taps hold their random init, not zeros
        for m in masked:
            assert (m.weight[m.mask == 0] != 0).all()
        planted = []
        for m in masked:
            junk = 100 * torch.randn(int((m.mask == 0).sum()))
            m.weight[m.mask == 0] = junk
            planted.append(junk)
        after = model.logits(x)
    assert torch.equal(before, after)
    for m, junk in zip(masked, planted, strict=True):
        assert torch.equal(m.weight[m.mask == 0], junk)  # forward did not overwrite them

    # an optimiser step changes unmasked taps only: masked taps get exactly zero gradient
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    kept = [m.weight.detach().clone() for m in masked]
    opt.zero_grad()
    (-model.log_prob(x).mean()).backward()
    opt.step()
    for m, w0 in zip(masked, kept, strict=True):
        assert torch.all(m.weight.grad[m.mask == 0] == 0)
        assert torch.equal(m.weight[m.mask == 0], w0[m.mask == 0])
        assert not torch.equal(m.weight[m.mask == 1], w0[m.mask == 1])


def test_layers_are_not_one_linear_map():
    # the logits of a stack of convolutions without non-linearities would be affine in x
    model = make(channels=8, n_layers=2)
    g = torch.Generator().manual_seed(3)
    x1, x2 = torch.rand(2, 1, 5, 5, generator=g), torch.rand(2, 1, 5, 5, generator=g)
    with torch.no_grad():
        f = model.logits
        gap = f(x1 + x2) - f(x1) - f(x2) + f(torch.zeros_like(x1))
    assert gap.abs().max().item() > 1e-3


def test_exact_parameter_count_and_default_construction():
    # 7x7 A conv 1->8: 392+8; block: 1x1 8->4: 32+4, 3x3 B 4->4: 144+4, 1x1 4->8: 32+8;
    # head: 1x1 8->8: 64+8, 1x1 8->1: 8+1
    model = PixelCNN(channels=8, n_layers=1, kernel_size=3)
    assert sum(p.numel() for p in model.parameters()) == 400 + 36 + 148 + 40 + 72 + 9
    default = PixelCNN()
    assert default.config == PixelCNNConfig(channels=64, n_layers=7, kernel_size=3,
                                            first_kernel_size=7)
    assert len(default.blocks) == 7


def test_sample_shape_binary_and_seeded():
    model = make(channels=8, n_layers=1)
    s1 = model.sample(3, 4, 7, generator=torch.Generator().manual_seed(5))
    s2 = model.sample(3, 4, 7, generator=torch.Generator().manual_seed(5))
    assert s1.shape == (3, 1, 4, 7) and s1.dtype == torch.float32
    assert torch.all((s1 == 0) | (s1 == 1))
    assert torch.equal(s1, s2)
    assert not any(p.requires_grad and p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("bias, value", [(50.0, 1.0), (-50.0, 0.0)])
def test_sample_of_a_constant_model(bias, value):
    model = make(channels=8, n_layers=2)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.head[-1].bias.fill_(bias)
    s = model.sample(2, 3, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s, torch.full((2, 1, 3, 5), value))


@pytest.mark.parametrize("tap", ["left", "above"])
def test_sample_of_a_hand_built_model_that_inverts_a_neighbour(tap):
    # logit = 50 - 100 * relu(2 x_nb - 1): the pixel is 1 unless its neighbour is 1; the
    # neighbour outside the image reads 0 padding, so the first column / row is all ones.
    model = make(channels=8, n_layers=2)
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
    stripes = ((j if tap == "left" else i) % 2 == 0).float()  # 1, 0, 1, 0, ...
    assert torch.equal(s, stripes.expand(2, 1, 4, 5))


def test_sample_frequencies_match_probabilities():
    model = sharpened(make(channels=8, n_layers=1), scale=3.5).float()
    x = all_binary_images(2, 2).float()
    with torch.no_grad():
        probs = model.log_prob(x).exp()
    assert probs.max().item() > 0.2 and probs.min().item() < 0.01  # far from uniform 1/16
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


def test_training_lowers_nll_on_stripes():
    g = torch.Generator().manual_seed(0)
    train, test = stripes(512, g), stripes(256, g)
    model = make(seed=0, channels=16, n_layers=2)
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
    # 36 fair coins would be 24.9 nats; the source entropy is ln 2 + 36 H(0.05) = 7.8 nats
    assert nll0 > 20
    assert nll < 8.5  # the true source scores 7.2 nats on this test set


@pytest.mark.parametrize("size", [(28, 28), (7, 11)])
def test_log_prob_any_size_equals_bernoulli_formula(size):
    model = make(channels=8, n_layers=2).double()
    g = torch.Generator().manual_seed(4)
    x = torch.bernoulli(torch.full((3, 1, *size), 0.3, dtype=torch.float64), generator=g)
    with torch.no_grad():
        lp = model.log_prob(x)
        q = torch.sigmoid(model.logits(x))
        one_by_one = torch.cat([model.log_prob(x[k : k + 1]) for k in range(3)])
    want = (x * q.log() + (1 - x) * (1 - q).log()).sum(dim=(1, 2, 3))
    assert lp.shape == (3,)
    torch.testing.assert_close(lp, want)
    torch.testing.assert_close(lp, one_by_one)
    assert torch.all(lp < 0)


def test_bad_inputs_raise():
    model = make(channels=8, n_layers=1)
    with pytest.raises(ValueError, match="binary"):
        model.log_prob(torch.full((1, 1, 3, 3), 0.5))
    with pytest.raises(ValueError, match="shape"):
        model.log_prob(torch.zeros(1, 3, 3))
    with pytest.raises(ValueError, match="odd"):
        PixelCNN(kernel_size=4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_the_parameters_device():
    model = make(channels=8, n_layers=1).cuda()
    s = model.sample(2, 3, 4, generator=torch.Generator().manual_seed(0))
    assert s.device.type == "cuda"
    assert model.log_prob(s).device.type == "cuda"


@pytest.mark.parametrize("kernel,kind", [(7, "A"), (7, "B"), (5, "B"), ((5, 3), "A"),
                                         ((1, 3), "B"), (1, "B")])
def test_cropped_kernel_equals_the_whole_masked_kernel(kernel, kind):
    """forward convolves with the kernel's rows down to the centre only (the rows below are
    masked; kernels under 5 rows keep the whole kernel); its output and every gradient
    equal the whole masked kernel's."""
    torch.manual_seed(0)
    conv = MaskedConv2d(3, 4, kernel, kind).double()
    with torch.no_grad():
        conv.weight.normal_()  # masked taps stay non-zero in the raw weight
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    w = torch.randn(2, 4, 6, 5, dtype=torch.float64)
    results = []
    for form in (conv.forward, conv.dense_forward):
        xi = x.clone().requires_grad_(True)
        y = form(xi)
        results.append([y, *torch.autograd.grad((y * w).sum(), [xi, conv.weight, conv.bias])])
    for a, b in zip(*results, strict=True):
        assert a.shape == b.shape
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)
