"""PixelCNN for binary images (van den Oord, Kalchbrenner and Kavukcuoglu, 2016).

"Pixel Recurrent Neural Networks" (ICML 2016), section 3.4 and Figure 5: the joint
distribution of an H x W binary image is factorised in raster order,

    p(x) = prod_{i=1}^{H*W} p(x_i | x_1, ..., x_{i-1}),

and every conditional is a Bernoulli whose logit is computed by a stack of masked
convolutions. A mask-A convolution (centre pixel excluded) reads the input image; the
mask-B convolutions after it (centre included) read feature maps that already exclude
the centre pixel, so the logit at pixel i never sees pixel i or any later pixel.

The masks are buffers multiplied into the weight inside ``forward``; the raw weight
parameter is never overwritten, so an optimiser can change masked entries only if
their gradient is non-zero, and it is exactly zero.

Inputs are binary ``x in {0, 1}``; the network is fed ``2x - 1 in {-1, +1}`` so that
zero padding (outside the image) differs from both pixel values.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class PixelCNNConfig:
    channels: int = 64  # width of the residual stream (2h in the paper's Figure 5)
    n_layers: int = 7  # residual blocks, each holding one k x k mask-B convolution
    kernel_size: int = 3  # k of the mask-B convolutions (odd)
    first_kernel_size: int = 7  # size of the mask-A input convolution (odd), 7 in the paper


class MaskedConv2d(nn.Conv2d):
    """A 'same'-padded convolution that sees only pixels before the centre in raster order.

    Mask type 'A' excludes the centre tap, type 'B' includes it; taps right of the centre
    in the centre row and all taps in lower rows are zero. Single-channel images need no
    mask across channels (the paper's colour-channel split), so every channel pair gets
    the same spatial mask.

    Args:
        in_channels: C_in.
        out_channels: C_out.
        kernel_size: int k (k x k kernel) or (kh, kw); both odd.
        mask_type: 'A' or 'B'.
    Shapes: input (B, C_in, H, W) -> output (B, C_out, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, mask_type: str):
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        if kh % 2 == 0 or kw % 2 == 0 or kh < 1 or kw < 1:
            raise ValueError(f"masked kernel sizes must be odd and positive, got {(kh, kw)}")
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
        super().__init__(in_channels, out_channels, (kh, kw), padding=(kh // 2, kw // 2))
        ci, cj = kh // 2, kw // 2
        mask = torch.ones(kh, kw)
        mask[ci, cj + (mask_type == "B") :] = 0  # centre row: the centre (A) and its right
        mask[ci + 1 :, :] = 0  # every row below the centre
        self.mask_type = mask_type
        self.register_buffer("mask", mask.expand_as(self.weight).clone())  # (C_out, C_in, kh, kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # every tap below the centre row is masked to zero, so the kernel's top kh // 2 + 1
        # rows over an image padded above and at the sides (not below) give the same
        # output with (kh // 2 + 1) / kh of the work. Measured forward and backward, batch
        # 64 of 28x28, one thread: 7x7 at 64 channels 0.30 against 0.47 s, mask A 7x7 1 -> 64
        # 0.033 against 0.044 s; 3x3 gained nothing (32 channels 0.037 against 0.030 s), so
        # kernels under 5 rows keep the whole kernel
        if self.kernel_size[0] < 5:
            return self.dense_forward(x)
        top = self.kernel_size[0] // 2 + 1
        ph, pw = self.padding
        return F.conv2d(F.pad(x, (pw, pw, ph, 0)), (self.weight * self.mask)[:, :, :top],
                        self.bias)

    def dense_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The same output from the whole masked kernel ('same' padding on all sides)."""
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class ResidualBlock(nn.Module):
    """Figure 5 of the paper: ReLU, 1x1 (c -> c/2), ReLU, k x k mask B, ReLU, 1x1 (c/2 -> c), + x.

    Shapes: (B, c, H, W) -> (B, c, H, W).
    """

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        half = channels // 2
        self.net = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, half, 1),
            nn.ReLU(),
            MaskedConv2d(half, half, kernel_size, "B"),
            nn.ReLU(),
            nn.Conv2d(half, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


def _check_images(x: torch.Tensor) -> None:
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"expected images of shape (B, 1, H, W), got {tuple(x.shape)}")


def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x) = sum over pixels of x log s(l) + (1 - x) log(1 - s(l)) = -sum BCE(l, x).

    Args:
        logits: (B, 1, H, W) Bernoulli logits, one per pixel.
        x: (B, 1, H, W) binary images.
    Returns: (B,) log-likelihoods in nats.
    """
    if not torch.all((x == 0) | (x == 1)):
        raise ValueError("log_prob expects binary images (every pixel 0 or 1)")
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")  # (B, 1, H, W)
    return -bce.sum(dim=(1, 2, 3))


@torch.no_grad()
def sample_raster(model: nn.Module, n: int, height: int, width: int, generator=None,
                  context: int | None = None):
    """Draw n images pixel by pixel in raster order, one forward pass per pixel.

    Only rows 0..i are fed when row i is drawn: both pixel models are causal in rows, so
    the logits of rows <= i do not depend on the rows below (they are masked out, and the
    recurrences run top to bottom). A model whose logit at (i, j) reads only pixels in
    rows i - r .. i and columns j - r .. j + r (a PixelCNN: r = its receptive field)
    passes ``context=r``, and only that window is fed: every feature inside the logit's
    cone is then computed from the same pixels as in the whole image, so the logit is the
    same, at a cost that does not grow with the image.

    Args:
        model: a module with ``logits(x: (B, 1, h, w)) -> (B, 1, h, w)``.
        n, height, width: number and size of the images.
        generator: optional torch.Generator for the uniform draws (any device).
        context: r above, or None to feed every row up to i at full width.
    Returns: (n, 1, height, width) float tensor of 0s and 1s on the model's device.
    """
    if n < 1 or height < 1 or width < 1:
        raise ValueError(f"n, height and width must be positive, got {(n, height, width)}")
    p = next(model.parameters())
    x = torch.zeros(n, 1, height, width, device=p.device, dtype=p.dtype)
    draw_device = generator.device if generator is not None else p.device
    for i in range(height):
        top = 0 if context is None else max(0, i - context)
        for j in range(width):
            left = 0 if context is None else max(0, j - context)
            right = width if context is None else min(width, j + context + 1)
            window = x[:, :, top : i + 1, left:right]  # (n, 1, rows, cols)
            logit = model.logits(window)[:, 0, i - top, j - left]  # (n,)
            u = torch.rand(n, generator=generator, device=draw_device, dtype=p.dtype)
            x[:, 0, i, j] = (u.to(p.device) < torch.sigmoid(logit)).to(p.dtype)
    return x


class PixelCNN(nn.Module):
    """PixelCNN density model over binary images of any size.

    Architecture: mask-A conv (first_kernel_size^2, 1 -> channels); ``n_layers`` residual
    blocks with a kernel_size^2 mask-B conv each; head ReLU, 1x1 (channels -> channels),
    ReLU, 1x1 (channels -> 1): one Bernoulli logit per pixel.

    Args:
        channels: width of the residual stream (>= 2; the blocks' bottleneck is channels // 2).
        n_layers: number of residual blocks (>= 0).
        kernel_size: odd size k of the mask-B convolutions.
        first_kernel_size: odd size of the mask-A convolution.
    """

    def __init__(
        self,
        channels: int = PixelCNNConfig.channels,
        n_layers: int = PixelCNNConfig.n_layers,
        kernel_size: int = PixelCNNConfig.kernel_size,
        first_kernel_size: int = PixelCNNConfig.first_kernel_size,
    ):
        super().__init__()
        if channels < 2 or n_layers < 0:
            raise ValueError(f"need channels >= 2 and n_layers >= 0, got {channels}, {n_layers}")
        self.config = PixelCNNConfig(channels, n_layers, kernel_size, first_kernel_size)
        self.input_conv = MaskedConv2d(1, channels, first_kernel_size, "A")
        self.blocks = nn.Sequential(*[ResidualBlock(channels, kernel_size) for _ in range(n_layers)])
        self.head = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, 1, 1)
        )

    @classmethod
    def from_config(cls, config: PixelCNNConfig) -> "PixelCNN":
        return cls(config.channels, config.n_layers, config.kernel_size, config.first_kernel_size)

    @property
    def receptive_field(self) -> int:
        """r such that logit (i, j) reads only rows i - r .. i, columns j - r .. j + r.

        The mask-A convolution reaches first_kernel_size // 2 rows up and columns
        aside, each mask-B block kernel_size // 2 more; the 1x1 convolutions none.
        """
        c = self.config
        return c.first_kernel_size // 2 + c.n_layers * (c.kernel_size // 2)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits: logit[b, 0, i, j] depends only on pixels before (i, j).

        Args:
            x: (B, 1, H, W) images in [0, 1] (binary for a likelihood; real values are
               accepted so that gradients with respect to the input can be taken).
        Returns: (B, 1, H, W) logits of p(x_ij = 1 | earlier pixels).
        """
        _check_images(x)
        h = self.input_conv(2 * x - 1)  # (B, channels, H, W); centred input
        return self.head(self.blocks(h))  # (B, 1, H, W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-likelihood in nats of binary images x (B, 1, H, W); returns (B,)."""
        return bernoulli_log_prob(self.logits(x), x)

    def sample(self, n: int, height: int, width: int, generator=None) -> torch.Tensor:
        """n binary images (n, 1, height, width) drawn pixel by pixel in raster order."""
        return sample_raster(self, n, height, width, generator, context=self.receptive_field)
