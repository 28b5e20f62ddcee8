"""ConvMixer on images (Trockman & Kolter 2022), beside a softmax patch-Transformer of the same size.

Both start from the same patch embedding (a p × p convolution with stride p: one token per patch)
and end in the same mean pooling and linear head; only the token mixer differs:

* ``ConvMixer2d`` — the paper's classifier: depth × [Residual(DepthwiseConv2d k×k → GELU → BN),
  PointwiseConv → GELU → BN]. Token mixing reaches k − 1 patches further per block.
* ``PatchTransformer`` — the shared backbone's ``postlib.models.Block`` (pre-norm residual mixer +
  MLP) over the patches in raster order, with learned positions. With the registered ``"softmax"``
  mixer, which is causal, patch i attends to patches ≤ i; the mean pool still sees every patch
  (the last one attends to all).

``load_digits_split`` reads scikit-learn's 8×8 digits, which ship inside the package (no download);
``train_image_classifier`` is the one training loop both models go through.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_positive_int, check_tensor
from ..models import Block


@dataclass
class ImageData:
    """Images (N, 1, 8, 8) scaled to [0, 1] and labels (N,) int64, split into train and test."""
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def load_digits_split(test_fraction: float = 0.25, seed: int = 0) -> ImageData:
    """scikit-learn's 1797 handwritten digits (8 × 8, 16 grey levels), shuffled with ``seed`` and split."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:   # pragma: no cover - depends on the environment
        raise ImportError("the digits data set ships with scikit-learn: pip install scikit-learn") from err
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    y = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(len(y) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return ImageData(x[train], y[train], x[test], y[test])


class ConvMixerBlock2d(nn.Module):
    """z' = BN(GELU(DepthwiseConv(z))) + z;  z_next = BN(GELU(PointwiseConv(z')))."""

    def __init__(self, dim: int, kernel_size: int):
        super().__init__()
        self.depthwise = nn.Conv2d(dim, dim, kernel_size, groups=dim, padding="same")
        self.norm1 = nn.BatchNorm2d(dim)
        self.pointwise = nn.Conv2d(dim, dim, 1)
        self.norm2 = nn.BatchNorm2d(dim)

    def forward(self, z):
        z = z + self.norm1(F.gelu(self.depthwise(z)))
        return self.norm2(F.gelu(self.pointwise(z)))


def _check_images(images, in_channels: int) -> None:
    check_tensor(images, "images", 4, f"(batch, channels={in_channels}, height, width)")
    if images.shape[1] != in_channels:
        raise ValueError(f"images must have shape (batch, channels={in_channels}, height, width), "
                         f"got {tuple(images.shape)}")


class ConvMixer2d(nn.Module):
    """The paper's ConvMixer-h/d classifier: patch embedding, ``depth`` blocks, pooling, linear head."""

    def __init__(self, dim: int = 32, depth: int = 4, kernel_size: int = 3, patch_size: int = 2,
                 n_classes: int = 10, in_channels: int = 1):
        super().__init__()
        for name, val in (("dim", dim), ("depth", depth), ("kernel_size", kernel_size),
                          ("patch_size", patch_size), ("n_classes", n_classes), ("in_channels", in_channels)):
            check_positive_int(val, name)
        self.in_channels = in_channels
        self.embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.embed_norm = nn.BatchNorm2d(dim)
        self.blocks = nn.ModuleList(ConvMixerBlock2d(dim, kernel_size) for _ in range(depth))
        self.head = nn.Linear(dim, n_classes)

    def forward(self, images):
        _check_images(images, self.in_channels)
        z = self.embed_norm(F.gelu(self.embed(images)))
        for block in self.blocks:
            z = block(z)
        return self.head(z.mean(dim=(2, 3)))


class PatchTransformer(nn.Module):
    """Patch embedding + learned positions → ``depth`` backbone blocks of ``mixer`` → norm, mean pool, head."""

    def __init__(self, dim: int = 32, depth: int = 2, patch_size: int = 2, image_size: int = 8, n_classes: int = 10,
                 in_channels: int = 1, mixer: str = "softmax", mlp_expansion: int = 1, mixer_config: dict | None = None):
        super().__init__()
        for name, val in (("dim", dim), ("depth", depth), ("patch_size", patch_size), ("image_size", image_size),
                          ("n_classes", n_classes), ("in_channels", in_channels)):
            check_positive_int(val, name)
        if image_size % patch_size:
            raise ValueError(f"image_size ({image_size}) must be divisible by patch_size ({patch_size})")
        self.in_channels = in_channels
        n_patches = (image_size // patch_size) ** 2
        self.embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.pos = nn.Parameter(torch.randn(1, n_patches, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(mixer, dim, mlp_expansion, **(mixer_config or {})) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, images):
        _check_images(images, self.in_channels)
        x = self.embed(images).flatten(2).transpose(1, 2)                 # (batch, patches, dim), raster order
        if x.shape[1] != self.pos.shape[1]:
            raise ValueError(f"images give {x.shape[1]} patches but the model was built for {self.pos.shape[1]} "
                             f"(image_size, patch_size)")
        x = x + self.pos
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x).mean(dim=1))


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass
class ImageTrainResult:
    name: str
    accuracy: float                                   # on the test split, after training
    curve: list = field(default_factory=list)         # (epoch, seconds, train loss, test accuracy)
    seconds: float = 0.0
    steps: int = 0
    parameters: int = 0
    model: object = field(default=None, repr=False, compare=False)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    model.eval()
    correct = sum(int((model(x[i:i + batch_size]).argmax(-1) == y[i:i + batch_size]).sum())
                  for i in range(0, len(y), batch_size))
    return correct / len(y)


def train_image_classifier(model: nn.Module, data: ImageData, *, name: str | None = None, epochs: int = 20,
                           seconds: float | None = None, batch_size: int = 64, lr: float = 3e-3,
                           weight_decay: float = 1e-2, seed: int = 0) -> ImageTrainResult:
    """AdamW with a cosine schedule over ``epochs`` (stopped early after ``seconds`` of training, if given),
    seeded batches; returns the test accuracy and the curve per epoch."""
    check_positive_int(epochs, "epochs")
    check_positive_int(batch_size, "batch_size")
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    n = len(data.train_y)
    steps_per_epoch = -(-n // batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    curve, steps, t0 = [], 0, time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n, generator=g)
        total = 0.0
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            loss = F.cross_entropy(model(data.train_x[idx]), data.train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            steps += 1
        elapsed = time.perf_counter() - t0
        curve.append((epoch + 1, elapsed, total / n, accuracy(model, data.test_x, data.test_y)))
        if seconds is not None and elapsed >= seconds:
            break
    model.eval()
    return ImageTrainResult(name or type(model).__name__, curve[-1][3], curve, time.perf_counter() - t0, steps,
                            num_parameters(model), model)
