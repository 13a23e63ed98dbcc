"""Generators and discriminators for 28x28 grey images: an MLP pair and a DCGAN pair.

Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014: a generator G maps
noise z ~ N(0, I) to an image, a discriminator D scores how real an image looks, and
the two play min_G max_D E_x[log D(x)] + E_z[log(1 - D(G(z)))] (eq. 1).

Every discriminator here returns a *logit* (B,), not a probability: the losses use
`binary_cross_entropy_with_logits`, which is the same BCE computed without overflow.
Every generator ends in tanh, so images live in [-1, 1]; real images are scaled the
same way (x / 127.5 - 1) before they meet a discriminator.

- `MLPGenerator` / `MLPDiscriminator`: the course manual's networks, generator
  100-128-256-512-784 with ReLU between layers and tanh out, and discriminator
  784-512-256-1 with LeakyReLU 0.2 between layers. Widths and depth are arguments so a
  study can change them.
- The stabilised MLP pair ("mlp_stable" in `build_gan`): the same generator, and the
  same discriminator with spectral normalisation on every linear layer (Miyato, Kataoka,
  Koyama and Yoshida, "Spectral Normalization for Generative Adversarial Networks",
  ICLR 2018): each weight matrix W is used as W / sigma(W), its largest singular value
  estimated by one step of power iteration per training forward pass, so each layer
  (and, with LeakyReLU, the whole discriminator) is at most 1-Lipschitz. A
  discriminator that cannot sharpen without bound keeps giving the generator useful
  gradients instead of winning outright.
- `DCGANGenerator` / `DCGANDiscriminator`: Radford, Metz and Chintala, "Unsupervised
  Representation Learning with Deep Convolutional GANs", ICLR 2016, scaled to 28x28:
  the generator projects z to a 7x7 map, doubles it twice with transposed convolutions
  (batch norm and ReLU after each) and ends in a 3x3 convolution to one channel with
  tanh (measured at the quick profile: more digits recognised than with a transposed
  convolution straight to one channel, for a little more time); the discriminator halves the
  image twice with strided convolutions (LeakyReLU 0.2, batch norm after the first)
  and ends in one linear unit. Weights start from N(0, 0.02) as in that paper.

No training code lives here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

IMAGE_SHAPE = (1, 28, 28)
N_PIXELS = 28 * 28


def _check_widths(widths: Sequence[int], what: str) -> tuple[int, ...]:
    widths = tuple(int(w) for w in widths)
    if not widths or min(widths) < 1:
        raise ValueError(f"{what} needs at least one hidden layer of width >= 1, got {widths}")
    return widths


class MLPGenerator(nn.Module):
    """z (B, latent_dim) -> images (B, 1, 28, 28) in [-1, 1].

    Args:
        latent_dim: length of the noise vector z (the manual: 100).
        hidden: widths of the hidden layers (the manual: 128, 256, 512), each followed
            by ReLU (as in the manual); the last layer has 784 units and tanh.
        batch_norm: batch normalisation before every hidden ReLU (Radford et al.
            2016 put it in every generator layer but the output); the manual has none.
    """

    def __init__(self, latent_dim: int = 100, hidden: Sequence[int] = (128, 256, 512),
                 batch_norm: bool = False):
        super().__init__()
        if int(latent_dim) < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        self.latent_dim = int(latent_dim)
        self.hidden = _check_widths(hidden, "MLPGenerator")
        self.batch_norm = bool(batch_norm)
        layers: list[nn.Module] = []
        width = self.latent_dim
        for h in self.hidden:
            layers += ([nn.Linear(width, h, bias=False), nn.BatchNorm1d(h)] if batch_norm
                       else [nn.Linear(width, h)])
            layers.append(nn.ReLU())
            width = h
        layers += [nn.Linear(width, N_PIXELS), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(len(z), *IMAGE_SHAPE)  # (B, 784) -> (B, 1, 28, 28)


class MLPDiscriminator(nn.Module):
    """images (B, 1, 28, 28) (or (B, 784)) -> logits (B,).

    Args:
        hidden: widths of the hidden layers (the manual: 512, 256), each followed by
            LeakyReLU(0.2); one output unit gives the logit of "real".
        spectral_norm: wrap every linear layer in spectral normalisation (Miyato et al.
            2018); the manual's discriminator has none.
    """

    def __init__(self, hidden: Sequence[int] = (512, 256), spectral_norm: bool = False):
        super().__init__()
        self.hidden = _check_widths(hidden, "MLPDiscriminator")
        self.spectral_norm = bool(spectral_norm)

        def linear(n_in: int, n_out: int) -> nn.Module:
            layer = nn.Linear(n_in, n_out)
            return nn.utils.parametrizations.spectral_norm(layer) if spectral_norm else layer

        layers: list[nn.Module] = []
        width = N_PIXELS
        for h in self.hidden:
            layers += [linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        layers.append(linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(len(x), N_PIXELS)).squeeze(1)  # (B, 784) -> (B, 1) -> (B,)


def dcgan_init_(module: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """Radford et al. (2016), section 4: convolution and linear weights from N(0, 0.02),
    batch-norm scales from N(1, 0.02), every bias 0. Returns `module`, changed in place."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * 0.02)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                m.weight.copy_(1.0 + torch.randn(m.weight.shape, generator=generator) * 0.02)
                m.bias.zero_()
    return module


class DCGANGenerator(nn.Module):
    """z (B, latent_dim) -> images (B, 1, 28, 28) in [-1, 1].

    z -> Linear -> (B, 2w, 7, 7) -> BN, ReLU
      -> ConvTranspose(4x4, stride 2, pad 1) -> (B, w, 14, 14) -> BN, ReLU
      -> ConvTranspose(4x4, stride 2, pad 1) -> (B, w/2, 28, 28) -> BN, ReLU
      -> Conv(3x3, pad 1) -> (B, 1, 28, 28) -> tanh.
    A 4x4 transposed convolution with stride 2 and padding 1 maps size n to
    (n - 1) * 2 - 2 + 4 = 2n exactly, so 7 -> 14 -> 28.

    Args:
        latent_dim: length of z.
        width: w, the channels at 14x14 (2w at 7x7, w // 2 at 28x28); at least 2.
        generator: optional torch.Generator for the N(0, 0.02) initial weights.
    """

    def __init__(self, latent_dim: int = 100, width: int = 32,
                 generator: torch.Generator | None = None):
        super().__init__()
        if int(latent_dim) < 1 or int(width) < 2:
            raise ValueError(f"latent_dim must be >= 1 and width >= 2, got {latent_dim}, "
                             f"{width}")
        self.latent_dim, self.width = int(latent_dim), int(width)
        w = self.width
        self.project = nn.Linear(self.latent_dim, 2 * w * 7 * 7, bias=False)
        self.net = nn.Sequential(
            nn.BatchNorm2d(2 * w), nn.ReLU(),
            nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1, bias=False),  # 7 -> 14
            nn.BatchNorm2d(w), nn.ReLU(),
            nn.ConvTranspose2d(w, w // 2, 4, stride=2, padding=1, bias=False),  # 14 -> 28
            nn.BatchNorm2d(w // 2), nn.ReLU(),
            nn.Conv2d(w // 2, 1, 3, padding=1),  # 28 -> 28, one channel
            nn.Tanh(),
        )
        dcgan_init_(self, generator)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(len(z), 2 * self.width, 7, 7)  # (B, 2w*49) -> (B, 2w, 7, 7)
        return self.net(h)


class DCGANDiscriminator(nn.Module):
    """images (B, 1, 28, 28) -> logits (B,).

    x -> Conv(4x4, stride 2, pad 1) -> (B, w, 14, 14) -> LeakyReLU 0.2
      -> Conv(4x4, stride 2, pad 1) -> (B, 2w, 7, 7) -> BN, LeakyReLU 0.2
      -> flatten -> Linear -> (B,).
    No batch norm on the input layer (Radford et al. 2016, section 3).

    Args:
        width: w, the channels at 14x14 (2w at 7x7).
        generator: optional torch.Generator for the N(0, 0.02) initial weights.
    """

    def __init__(self, width: int = 32, generator: torch.Generator | None = None):
        super().__init__()
        if int(width) < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.width = w = int(width)
        self.net = nn.Sequential(
            nn.Conv2d(1, w, 4, stride=2, padding=1),  # 28 -> 14
            nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1, bias=False),  # 14 -> 7
            nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2),
        )
        self.out = nn.Linear(2 * w * 7 * 7, 1)
        dcgan_init_(self, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.net(x).flatten(1)  # (B, 2w, 7, 7) -> (B, 2w*49)
        return self.out(h).squeeze(1)  # (B, 1) -> (B,)


STABILISERS = ("spectral_norm", "batch_norm")  # the architectural fixes of "mlp_stable"


def build_gan(kind: str, latent_dim: int = 100, g_hidden: Sequence[int] = (128, 256, 512),
              d_hidden: Sequence[int] = (512, 256), width: int = 32,
              generator: torch.Generator | None = None,
              stabilisers: Sequence[str] = ("batch_norm", "spectral_norm")) -> nn.ModuleDict:
    """A generator/discriminator pair in one module, so one state_dict holds both.

    kind: "mlp" (the manual's pair; uses g_hidden, d_hidden), "mlp_stable" (the same with
    the `stabilisers` named: "spectral_norm" in D, "batch_norm" in G) or "dcgan" (uses
    width).
    Returns nn.ModuleDict with keys "generator" and "discriminator".
    """
    if unknown := set(stabilisers) - set(STABILISERS):
        raise ValueError(f"unknown stabiliser(s) {sorted(unknown)}; use {', '.join(STABILISERS)}")
    if kind in ("mlp", "mlp_stable"):
        fixes = set(stabilisers) if kind == "mlp_stable" else set()
        g: nn.Module = MLPGenerator(latent_dim, g_hidden, batch_norm="batch_norm" in fixes)
        d: nn.Module = MLPDiscriminator(d_hidden, spectral_norm="spectral_norm" in fixes)
    elif kind == "dcgan":
        g = DCGANGenerator(latent_dim, width, generator)
        d = DCGANDiscriminator(width, generator)
    else:
        raise ValueError(f"unknown GAN kind {kind!r}; use mlp, mlp_stable or dcgan")
    return nn.ModuleDict({"generator": g, "discriminator": d})
