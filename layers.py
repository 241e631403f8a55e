"""StyleGAN2 building blocks in pure PyTorch (docs/design.md §5 "Pure PyTorch only"; Karras et al. 2020).

Shared by the generator and the discriminators. StyleGAN2's official code builds the FIR filtering
(upfirdn2d) and the fused bias + leaky ReLU as custom CUDA kernels; here everything is F.conv2d, F.pad and
pointwise ops, so it runs on CPU, CUDA and under bf16 autocast alike.

Layout: (B, C, H, W) with H = time frames and W = mel bands, e.g. the generator's output (B, 1, T=200, F=64).
Equalised learning rate: weights stored as N(0, 1) / lr_mul, scaled at run time by lr_mul / sqrt(fan_in).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SQRT2 = 2 ** 0.5            # gain of leaky ReLU(0.2) so that activations keep unit variance (StyleGAN2 `def_gain`)
LRELU_SLOPE = 0.2           # StyleGAN2's leaky ReLU slope everywhere
BLUR_KERNEL = (1, 3, 3, 1)  # StyleGAN2's FIR resampling filter: binomial, i.e. a cheap low-pass


# ------------------------------------------------------------------------------------------------
# Activation
# ------------------------------------------------------------------------------------------------

def bias_leaky_relu(x: torch.Tensor, bias: torch.Tensor | None = None, negative_slope: float = LRELU_SLOPE,
                    scale: float = SQRT2) -> torch.Tensor:
    """Add a per-channel bias (channel = dim 1), apply leaky ReLU, multiply by `scale`.

    The standard-ops equivalent of StyleGAN2's `fused_bias_act` with act='lrelu'. `x` is (B, C) or
    (B, C, H, W); `bias` is (C,) or None.
    """
    if bias is not None:
        shape = [1, -1] + [1] * (x.ndim - 2)        # (1, C) or (1, C, 1, 1): broadcast over batch/space
        x = x + bias.to(x.dtype).view(shape)
    return F.leaky_relu(x, negative_slope) * scale


class BiasLeakyReLU(nn.Module):
    """Learned per-channel bias (initialised at 0) followed by leaky ReLU(0.2) * sqrt(2)."""

    def __init__(self, channels: int, negative_slope: float = LRELU_SLOPE, scale: float = SQRT2):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bias_leaky_relu(x, self.bias, self.negative_slope, self.scale)


# ------------------------------------------------------------------------------------------------
# Equalised-learning-rate layers
# ------------------------------------------------------------------------------------------------

class EqualLinear(nn.Module):
    """Fully connected layer with equalised learning rate.

    weight ~ N(0, 1) / lr_mul, used as weight * (lr_mul / sqrt(in_dim)); bias stored as bias_init / lr_mul
    and used as bias * lr_mul, so both start at their intended values but learn lr_mul times slower.
    `activation=True` applies bias + leaky ReLU(0.2) * sqrt(2) (the mapping network's layers);
    `bias_init=1` is what StyleGAN2's style affines use, so that styles start around 1.
    """

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: bool = False):
        super().__init__()
        if in_dim <= 0 or out_dim <= 0:
            raise ValueError(f"EqualLinear: in_dim and out_dim must be positive, got {in_dim}, {out_dim}")
        if lr_mul <= 0:
            raise ValueError(f"EqualLinear: lr_mul must be positive, got {lr_mul}")
        self.in_dim, self.out_dim = in_dim, out_dim
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init) / lr_mul)) if bias else None
        self.lr_mul = lr_mul
        self.scale = lr_mul / math.sqrt(in_dim)     # runtime weight gain: 1/sqrt(fan_in) when lr_mul = 1
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.scale
        b = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            return bias_leaky_relu(F.linear(x, w), b)
        return F.linear(x, w, b)

    def extra_repr(self) -> str:
        return (f"{self.in_dim}, {self.out_dim}, bias={self.bias is not None}, lr_mul={self.lr_mul}, "
                f"activation={self.activation}")


class EqualConv2d(nn.Module):
    """2-D convolution with equalised learning rate: weight ~ N(0, 1), used as weight / sqrt(in_ch * k * k)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True):
        super().__init__()
        if in_ch <= 0 or out_ch <= 0 or kernel_size <= 0:
            raise ValueError(f"EqualConv2d: channels and kernel_size must be positive, got "
                             f"in_ch={in_ch}, out_ch={out_ch}, kernel_size={kernel_size}")
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel_size
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.scale = 1 / math.sqrt(in_ch * kernel_size ** 2)   # 1/sqrt(fan_in)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_ch}, {self.out_ch}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, bias={self.bias is not None}")


# ------------------------------------------------------------------------------------------------
# FIR filtering (StyleGAN2's upfirdn2d, written with F.pad + depthwise F.conv2d)
# ------------------------------------------------------------------------------------------------

def fir_kernel(k=BLUR_KERNEL) -> torch.Tensor:
    """1-D taps -> 2-D separable FIR kernel (outer product) normalised to sum 1, float32 (K, K)."""
    k = torch.as_tensor(k, dtype=torch.float32, device="cpu")   # taps are data, not model state
    if k.ndim == 1:
        k = k[None, :] * k[:, None]                 # (K, K) separable outer product
    if k.ndim != 2 or k.sum() == 0:
        raise ValueError(f"fir_kernel: expected 1-D or 2-D taps with non-zero sum, got shape {tuple(k.shape)}")
    return k / k.sum()


class Blur(nn.Module):
    """Pad by `pad = (p0, p1)` on both spatial axes (before, after), then filter every channel with
    the FIR kernel. Negative pads crop. Output size per axis: n + p0 + p1 - K + 1.

    `upsample_factor` only multiplies the kernel by factor**2: after a stride-f transposed conv (or a
    zero insertion) only one pixel in f*f is non-zero, so the filter's gain must be f*f to keep the
    image's level (as StyleGAN2). Use `Upsample` for a plain 2x FIR upsampling.
    """

    def __init__(self, kernel=BLUR_KERNEL, pad: tuple[int, int] = (1, 1), upsample_factor: int = 1):
        super().__init__()
        k = fir_kernel(kernel) * upsample_factor ** 2
        # upfirdn2d is a true convolution, F.conv2d a correlation: flip (a no-op for symmetric taps).
        self.register_buffer("kernel", k.flip([0, 1]), persistent=False)
        self.pad = tuple(int(p) for p in pad)
        if len(self.pad) != 2:
            raise ValueError(f"Blur: pad must be (before, after), got {pad}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        p0, p1 = self.pad
        x = F.pad(x, [p0, p1, p0, p1])              # (B, C, H + p0 + p1, W + p0 + p1); F.pad order: W then H
        k = self.kernel.to(x.dtype)[None, None].expand(c, 1, *self.kernel.shape)  # (C, 1, K, K) depthwise
        return F.conv2d(x, k, groups=c)             # (B, C, H + p0 + p1 - K + 1, W + ...)

    def extra_repr(self) -> str:
        return f"kernel={tuple(self.kernel.shape)}, pad={self.pad}"


def upsample_zeros(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Zero insertion: (B, C, H, W) -> (B, C, f*H, f*W) with x at [f*i, f*j] and zeros elsewhere."""
    b, c, h, w = x.shape
    y = x.new_zeros(b, c, h, factor, w, factor)     # (B, C, H, f, W, f)
    y[:, :, :, 0, :, 0] = x
    return y.reshape(b, c, h * factor, w * factor)  # (B, C, f*H, f*W)


class Upsample(nn.Module):
    """2x FIR upsampling (StyleGAN2's `upsample2d`): zero insertion then `Blur` with gain 4.

    Used for the generator's to-output skip path. Pads (2, 1) for the 4-tap kernel, which keeps the
    output exactly f*H x f*W and centred (StyleGAN2: p = K - f, pad = ((p + 1) // 2 + f - 1, p // 2)).
    """

    def __init__(self, kernel=BLUR_KERNEL, factor: int = 2):
        super().__init__()
        p = len(kernel) - factor
        self.factor = factor
        self.blur = Blur(kernel, pad=((p + 1) // 2 + factor - 1, p // 2), upsample_factor=factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blur(upsample_zeros(x, self.factor))   # (B, C, f*H, f*W)


# ------------------------------------------------------------------------------------------------
# Minibatch standard deviation (StyleGAN2 discriminator epilogue; also the authors' projected D heads)
# ------------------------------------------------------------------------------------------------

def _largest_divisor_at_most(n: int, g: int) -> int:
    for d in range(min(n, g), 0, -1):
        if n % d == 0:
            return d
    return 1


class MinibatchStd(nn.Module):
    """Append `num_channels` feature maps holding the standard deviation across groups of samples.

    StyleGAN2: split the batch into groups of `group_size` samples (sample i belongs to group
    i mod (B / G)), take the std over each group per feature and pixel, average it over the features
    (of each of `num_channels` channel slices) and pixels, and broadcast that scalar back to every
    sample of the group as extra channels. It lets D see the batch's diversity, which discourages
    mode collapse. StyleGAN2 uses G = min(group_size, B) and needs B divisible by G; here G is the
    largest divisor of B not above group_size, so any batch size works (B = 7 -> G = 7 if group_size >= 7,
    else G = 1, i.e. std 0).
    (B, C, H, W) -> (B, C + num_channels, H, W).
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1):
        super().__init__()
        if group_size < 1 or num_channels < 1:
            raise ValueError(f"MinibatchStd: group_size and num_channels must be >= 1, got {group_size}, {num_channels}")
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        n = self.num_channels
        if c % n:
            raise ValueError(f"MinibatchStd: {c} channels not divisible by num_channels={n}")
        g = _largest_divisor_at_most(b, self.group_size)
        y = x.float().reshape(g, b // g, n, c // n, h, w)   # (G, M, n, C/n, H, W); M = B / G groups
        y = y - y.mean(dim=0)                       # deviation from the group mean
        y = (y.square().mean(dim=0) + 1e-8).sqrt()  # (M, n, C/n, H, W): std over each group (biased, as StyleGAN2)
        y = y.mean(dim=(2, 3, 4))                   # (M, n): one scalar per group and channel slice
        y = y.reshape(-1, n, 1, 1).repeat(g, 1, h, w)   # (B, n, H, W): sample i gets its group's (i mod M) value
        return torch.cat([x, y.to(x.dtype)], dim=1)     # (B, C + n, H, W)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"
