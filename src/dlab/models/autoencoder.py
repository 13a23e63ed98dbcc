"""Autoencoders: a dense one for flattened images and a convolutional denoising one.

An autoencoder learns an encoder f and a decoder g with g(f(x)) close to x, where the
code z = f(x) is smaller than x, so the network must keep what matters about x
(Hinton and Salakhutdinov, "Reducing the dimensionality of data with neural networks",
Science 2006). A denoising autoencoder is trained to map a corrupted x~ back to the
clean x (Vincent et al., "Extracting and composing robust features with denoising
autoencoders", ICML 2008), which makes the code describe the digit, not the noise.

Both models end in a sigmoid, for images scaled to [0, 1].
"""

from __future__ import annotations

from torch import Tensor, nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,  # negative slope 0.01
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by name: relu, leaky_relu, tanh or sigmoid."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; use one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def halving_widths(width: int, depth: int) -> tuple[int, ...]:
    """Hidden widths of one side: `depth` layers starting at `width`, each half the last.

    halving_widths(128, 2) == (128, 64), the manual's encoder before its 32-unit code.
    """
    if depth < 1 or width < 2 ** (depth - 1):
        raise ValueError(f"width {width} cannot be halved over {depth} hidden layers")
    return tuple(width // 2 ** i for i in range(depth))


class DenseAutoencoder(nn.Module):
    """n_in -> hidden... -> latent -> reversed(hidden)... -> n_in, sigmoid output.

    The activation follows every layer but the last, the code layer included (as in
    the manual's Keras model, whose 32-unit code is a ReLU layer).

    Args:
        n_in: D, input size (784 for flattened 28x28 images).
        hidden: widths of the encoder's hidden layers, e.g. (128, 64); the decoder
            mirrors them.
        latent: K, the code size.
        activation: relu, leaky_relu, tanh or sigmoid.
    """

    def __init__(self, n_in: int = 784, hidden: tuple[int, ...] = (128, 64), latent: int = 32,
                 activation: str = "relu"):
        super().__init__()
        if n_in < 1 or latent < 1 or any(h < 1 for h in hidden):
            raise ValueError(f"sizes must be positive: n_in={n_in}, hidden={hidden}, "
                             f"latent={latent}")
        self.n_in, self.hidden, self.latent = n_in, tuple(hidden), latent
        enc_sizes = [n_in, *hidden, latent]
        dec_sizes = [latent, *reversed(hidden), n_in]
        self.encoder = nn.Sequential(*_dense_stack(enc_sizes, activation, last_act=True))
        self.decoder = nn.Sequential(*_dense_stack(dec_sizes, activation, last_act=False),
                                     nn.Sigmoid())

    def encode(self, x: Tensor) -> Tensor:
        """(B, D) -> (B, K)."""
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        """(B, K) -> (B, D) in (0, 1)."""
        return self.decoder(z)

    def forward(self, x: Tensor) -> Tensor:
        """(B, D) -> (B, D) reconstruction."""
        return self.decode(self.encode(x))


def _dense_stack(sizes: list[int], act: str, last_act: bool) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if last_act or i < len(sizes) - 2:
            layers.append(make_activation(act))
    return layers


class ConvDenoisingAutoencoder(nn.Module):
    """Convolutional autoencoder with a real bottleneck of `bottleneck` numbers.

    Encoder: `depth` blocks of (3x3 conv, batch norm, activation); the first two have stride 2
    (28 -> 14 -> 7 for MNIST), later ones stride 1; block i has channels * 2^i maps.
    The last maps are flattened and a linear layer gives the code z (B, K): the
    bottleneck, smaller than the image (K < H*W). The decoder mirrors this with a
    linear layer, 3x3 transposed convolutions of stride 2 (or 3x3 convolutions where
    the encoder kept the size), each with batch norm and the activation, and a final 3x3
    convolution to one channel, sigmoid. Batch normalisation (Ioffe and Szegedy, ICML
    2015) is there for speed: without it this network first learns the mean digit and
    stays on that plateau for several hundred Adam steps.

    Args:
        size: H = W of the square input images (28 for MNIST).
        channels: C, maps of the first conv block.
        depth: number of conv blocks on each side (>= 1).
        bottleneck: K, the code size.
        activation: relu, leaky_relu, tanh or sigmoid.
    """

    def __init__(self, size: int = 28, channels: int = 32, depth: int = 2,
                 bottleneck: int = 32, activation: str = "relu"):
        super().__init__()
        if size < 4 or channels < 1 or depth < 1 or bottleneck < 1:
            raise ValueError(f"bad sizes: size={size}, channels={channels}, depth={depth}, "
                             f"bottleneck={bottleneck}")
        self.size, self.bottleneck = size, bottleneck
        widths = [channels * 2 ** i for i in range(depth)]
        strides = [2 if i < 2 else 1 for i in range(depth)]
        sizes = [size]  # spatial size before each block, then after the last
        for s in strides:
            sizes.append((sizes[-1] - 1) // s + 1)  # 3x3, padding 1: ceil(n / stride)
        self.code_shape = (widths[-1], sizes[-1], sizes[-1])

        enc: list[nn.Module] = []
        for c_in, c_out, s in zip([1, *widths[:-1]], widths, strides, strict=True):
            enc += [nn.Conv2d(c_in, c_out, 3, stride=s, padding=1), nn.BatchNorm2d(c_out),
                    make_activation(activation)]
        self.features = nn.Sequential(*enc)
        n_maps = widths[-1] * sizes[-1] ** 2
        self.to_code = nn.Linear(n_maps, bottleneck)
        self.from_code = nn.Sequential(nn.Linear(bottleneck, n_maps), make_activation(activation))

        dec: list[nn.Module] = []
        for i in reversed(range(depth)):
            c_in, c_out = widths[i], widths[max(i - 1, 0)]
            if strides[i] == 2:
                # (n - 1) * 2 - 2 + 3 + p = 2n - 1 + p: p = 1 restores an even size
                pad = sizes[i] - (2 * sizes[i + 1] - 1)
                dec.append(nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1,
                                              output_padding=pad))
            else:
                dec.append(nn.Conv2d(c_in, c_out, 3, padding=1))
            dec += [nn.BatchNorm2d(c_out), make_activation(activation)]
        dec += [nn.Conv2d(widths[0], 1, 3, padding=1), nn.Sigmoid()]
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: Tensor) -> Tensor:
        """(B, 1, H, W) -> (B, K)."""
        return self.to_code(self.features(x).flatten(1))  # (B, C', h, w) -> (B, C'*h*w)

    def decode(self, z: Tensor) -> Tensor:
        """(B, K) -> (B, 1, H, W) in (0, 1)."""
        maps = self.from_code(z).view(len(z), *self.code_shape)  # (B, C', h, w)
        return self.decoder(maps)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 1, H, W) noisy -> (B, 1, H, W) denoised."""
        return self.decode(self.encode(x))


def manual_style_encoder() -> nn.Sequential:
    """An encoder with the layer sizes of the manual's denoising model (for its defect).

    conv 3x3 (32) -> 2x2 max-pool -> conv 3x3 (64) -> 2x2 max-pool -> conv 3x3 (128):
    (B, 1, 28, 28) -> (B, 128, 7, 7), i.e. 6,272 'features' per 784-pixel image.
    """
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # (B, 32, 14, 14)
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # (B, 64, 7, 7)
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(),                   # (B, 128, 7, 7)
    )
