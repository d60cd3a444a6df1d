"""Int8 weights for the Llama of llama.py: every matrix row as 8-bit integers and one float scale.

Generating a token multiplies every weight matrix by one vector, so a CPU generates about as fast as
it can read the weights from memory: 540 MB a token for SmolLM2 in float32, a quarter of that in int8.

    scale[r] = max |W[r, :]| / 127           one number per row (per output channel)
    q[r, c]  = round(W[r, c] / scale[r])     an integer in -127 .. 127
    W[r, c] ~ q[r, c] * scale[r]             off by at most scale[r] / 2

One scale per row, not one for the whole matrix: a row of small weights keeps its precision even
when another row holds a large one. -128 is never used, so the range is symmetric around 0.
Activations, norms and attention stay in floating point; only the matrices shrink.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib.models.llama import Llama


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(q, scale): int8 values (rows, cols) and float32 scales (rows,) with weight ~ q * scale[:, None]."""
    weight = weight.float()
    scale = weight.abs().amax(dim=1) / 127
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero row: any scale is exact
    q = torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scale


KERNEL_BLOCK = 16


def int8_matmul(x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x @ (q * scale[:, None]).T without building the float matrix: (..., cols) -> (..., rows)."""
    # The CPU kernel reads rows in blocks of 16 and crashes the process on any other width.
    if x.device.type != "cpu" or q.shape[1] % KERNEL_BLOCK:
        return expanded_int8_matmul(x, q, scale)
    # One CPU kernel reads the int8 rows and their scales as it multiplies. It is fast with bfloat16
    # inputs (about 3x float32's matrix-vector product on SmolLM2's matrices) and slow with float32
    # ones, so x goes in as bfloat16 and the product comes back in x's dtype.
    flat = x.reshape(-1, x.shape[-1]).to(torch.bfloat16)
    product = torch._weight_int8pack_mm(flat, q, scale.to(torch.bfloat16))
    return product.to(x.dtype).view(*x.shape[:-1], q.shape[0])


def expanded_int8_matmul(x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The same product in two plain steps: each row's scale factors out of its dot products."""
    return F.linear(x, q.to(x.dtype)) * scale.to(x.dtype)


class Int8Linear(nn.Module):
    """nn.Linear without bias, its weight held as int8 rows and their scales."""

    def __init__(self, q: torch.Tensor, scale: torch.Tensor):
        super().__init__()
        self.register_buffer("q", q)
        self.register_buffer("scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return int8_matmul(x, self.q, self.scale)


class Int8Embedding(nn.Module):
    """The tied embedding table in int8. A token's row is also its output channel in the
    unembedding, so the one per-row scale serves the lookup and the logits alike."""

    def __init__(self, q: torch.Tensor, scale: torch.Tensor):
        super().__init__()
        self.register_buffer("q", q)
        self.register_buffer("scale", scale)

    @property
    def weight(self) -> torch.Tensor:
        """The table expanded back to float32 (vocab, dim), for the widgets that read it."""
        return self.q.float() * self.scale[:, None]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.q[ids].to(self.scale.dtype) * self.scale[ids, None]

    def unembed(self, x: torch.Tensor) -> torch.Tensor:
        return int8_matmul(x, self.q, self.scale)


def quantize_model(model: Llama, quantize: Callable = quantize_int8) -> Llama:
    """Replace, in place, every matrix of `model` (each block's four: q, k and v stacked, the output,
    gate and up stacked, down; and the embedding) by its int8 form, made by `quantize(weight) ->
    (q, scale)` (a learner's own, say). On the "meta" device this gives the int8 model's shapes
    without computing anything."""
    def quantized(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q, scale = quantize(weight.detach())
        if q.dtype != torch.int8 or q.shape != weight.shape or tuple(scale.shape) != (weight.shape[0],):
            raise ValueError(f"quantize should return int8 values of shape {tuple(weight.shape)} and one scale "
                             f"per row, shape ({weight.shape[0]},); got {q.dtype} {tuple(q.shape)} and "
                             f"{tuple(scale.shape)}")
        return q.contiguous(), scale.float()

    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Linear):
                setattr(module, name, Int8Linear(*quantized(child.weight)))
    model.embed = Int8Embedding(*quantized(model.embed.weight))
    return model
