"""A readable Llama, the architecture of SmolLM2, top to bottom.

    token ids -> embedding -> N x [RMSNorm -> attention (RoPE, grouped-query) -> + residual
                                   RMSNorm -> SwiGLU feed-forward          -> + residual]
              -> RMSNorm -> unembedding (tied to the embedding) -> logits

Two extras make it a teaching model as well as a fast one:
- a KV cache, so generating token t+1 only runs the new token through the stack (and a static one,
  for CUDA graphs on a GPU);
- optional capture of every layer's attention weights and hidden states, for the widgets.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class LlamaConfig:
    vocab_size: int = 49152
    dim: int = 576              # width of the residual stream (the embedding size)
    n_layers: int = 30
    n_heads: int = 9            # query heads
    n_kv_heads: int = 3         # key/value heads, each shared by n_heads // n_kv_heads query heads
    hidden_dim: int = 1536      # width inside the SwiGLU feed-forward
    norm_eps: float = 1e-5
    rope_theta: float = 100000.0
    max_seq_len: int = 8192

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads


class RMSNorm(nn.Module):
    """Rescale each vector to unit root-mean-square, then by a learned per-channel gain:

        x * rsqrt(mean(x**2) + eps) * weight
    """

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The formula above in one fused kernel instead of six small ones: it runs 61 times per token.
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def rope_angles(head_dim: int, max_len: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotation angle for every position and every pair of channels."""
    # Always computed on the CPU, also while the model is being built on the "meta" device.
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64, device="cpu") / head_dim)
    angles = torch.outer(torch.arange(max_len, dtype=torch.float64, device="cpu"), inv_freq)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (0,1), (2,3), ... of x by an angle that grows with position.

    The GGUF file stores the Q and K weights so that rotated pairs sit side by side ("interleaved"),
    the layout of Meta's original Llama code. x: (batch, heads, time, head_dim); cos/sin: (time, head_dim/2).
    """
    pairs = x.float().unflatten(-1, (-1, 2))
    even, odd = pairs[..., 0], pairs[..., 1]
    rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
    return rotated.flatten(-2).type_as(x)


@dataclass
class KVCache:
    """Keys and values of every past position, per layer, so they are computed once."""

    keys: list[torch.Tensor] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)

    @property
    def length(self) -> int:
        return self.keys[0].shape[2] if self.keys else 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if layer == len(self.keys):
            self.keys.append(k)
            self.values.append(v)
        else:
            self.keys[layer] = torch.cat((self.keys[layer], k), dim=2)
            self.values[layer] = torch.cat((self.values[layer], v), dim=2)
        return self.keys[layer], self.values[layer]

    def keep_rows(self, rows: torch.Tensor) -> None:
        """Keep only these rows of the batch (the sequences still being generated)."""
        self.keys = [k[rows] for k in self.keys]
        self.values = [v[rows] for v in self.values]


class StaticKVCache:
    """Keys and values in buffers made once, for `max_len` positions: every decoding step has the
    same shapes and writes in place, and the position is a tensor too. That is what a CUDA graph
    needs (it replays the same kernels on the same memory), and a plain step runs it as well."""

    def __init__(self, cfg: LlamaConfig, batch: int, max_len: int, device, dtype):
        shape = (batch, cfg.n_kv_heads, max_len, cfg.head_dim)
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layers)]
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layers)]
        self.position = torch.zeros((), dtype=torch.long, device=device)  # where the next token goes
        self.max_len = max_len

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        where = self.position + torch.arange(k.shape[2], device=k.device)
        self.keys[layer].index_copy_(2, where, k)
        self.values[layer].index_copy_(2, where, v)
        return self.keys[layer], self.values[layer]  # all max_len positions: the mask hides the unwritten


class Attention(nn.Module):
    """Causal self-attention with RoPE and grouped-query heads (9 query heads share 3 K/V heads)."""

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        # The query, key and value projections stacked into one matrix, as nanoGPT's c_attn: one
        # matrix-vector product instead of three, faster when generating (see column_major in smollm.py).
        self.qkv_sizes = (cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim)
        self.qkv_proj = nn.Linear(cfg.dim, sum(self.qkv_sizes), bias=False)
        self.o_proj = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.dim, bias=False)
        # Another implementation of attention(q, k, v, mask) to run instead (see Llama.using_attention).
        self.attention_fn = None

    def forward(self, x, cos, sin, layer, cache, capture, mask=None):
        """mask: (batch, 1, time, keys), True = allowed, for a left-padded batch (see padded_causal_mask);
        None: plain causal attention."""
        batch, time, _ = x.shape
        q, k, v = self.qkv_proj(x).split(self.qkv_sizes, dim=-1)
        q = q.view(batch, time, self.n_heads, self.head_dim).transpose(1, 2)
        k = k.view(batch, time, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = v.view(batch, time, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.update(layer, k, v)
        # Query i sits at absolute position past + i and may see keys 0 .. past + i.
        past = k.shape[2] - time
        if capture is None and self.attention_fn is None:
            # The fused kernel: same maths as below without materialising the time x time matrix.
            if mask is None and past > 0 and time > 1:
                mask = causal_mask(time, k.shape[2], x.device)
            out = F.scaled_dot_product_attention(q, k, v, is_causal=mask is None and past == 0 and time > 1,
                                                 enable_gqa=True, attn_mask=mask)
        else:
            groups = self.n_heads // self.n_kv_heads
            k_full, v_full = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
            if mask is None:
                mask = causal_mask(time, k.shape[2], x.device)
            if self.attention_fn is not None:
                out = self.attention_fn(q, k_full, v_full, mask)
            else:
                scores = q @ k_full.transpose(-2, -1) / math.sqrt(self.head_dim)
                weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
                capture.attentions.append(weights)
                out = weights @ v_full
        return self.o_proj(out.transpose(1, 2).reshape(batch, time, -1))


def causal_mask(n_queries: int, n_keys: int, device=None) -> torch.Tensor:
    """Boolean (n_queries, n_keys), True where attention is allowed; queries are the last positions."""
    offset = n_keys - n_queries
    return torch.ones(n_queries, n_keys, dtype=torch.bool, device=device).tril(diagonal=offset)


def padded_causal_mask(pad: torch.Tensor, n_queries: int, n_keys: int) -> torch.Tensor:
    """Boolean (batch, 1, n_queries, n_keys) for rows left-padded by pad[row] tokens: causal, and no
    query sees a padding key. A padding query sees itself only, so that no row of weights is empty
    (an empty row would be 0/0, and its NaN would reach the real tokens through the values)."""
    keys = torch.arange(n_keys, device=pad.device)
    queries = keys[n_keys - n_queries:]
    real = keys[None, None, :] >= pad[:, None, None]
    return ((causal_mask(n_queries, n_keys, pad.device) & real) | (keys[None, :] == queries[:, None]))[:, None]


class FeedForward(nn.Module):
    """SwiGLU: a gated two-layer MLP, down(silu(gate(x)) * up(x))."""

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.gate_up_proj = nn.Linear(cfg.dim, 2 * cfg.hidden_dim, bias=False)  # gate and up, stacked
        self.down_proj = nn.Linear(cfg.hidden_dim, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.ffn = FeedForward(cfg)

    def forward(self, x, cos, sin, layer, cache, capture, mask=None):
        x = x + self.attn(self.attn_norm(x), cos, sin, layer, cache, capture, mask)
        return x + self.ffn(self.ffn_norm(x))


@dataclass
class Capture:
    """What a forward pass recorded: one (batch, heads, queries, keys) attention tensor per layer,
    and the residual stream before the first layer and after each layer (batch, time, dim)."""

    attentions: list[torch.Tensor] = field(default_factory=list)
    hidden_states: list[torch.Tensor] = field(default_factory=list)


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """A fresh, untrained model's weights: small random numbers (GPT-2's scheme), so that its first
    guesses are close to uniform over the vocabulary. Loading real weights replaces them."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=std)


class TiedEmbedding(nn.Embedding):
    """The token table, used twice: a token id looks up its row on the way in, and on the way out the
    final vector is compared with every row ("tied" unembedding): logit = <final vector, token's row>."""

    def unembed(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T


class Llama(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = TiedEmbedding(cfg.vocab_size, cfg.dim)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        cos, sin = rope_angles(cfg.head_dim, cfg.max_seq_len, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(init_weights)

    @property
    def device(self) -> torch.device:
        return self.rope_cos.device

    def forward(self, ids: torch.Tensor, cache: KVCache | None = None, capture: Capture | None = None,
                pad: torch.Tensor | None = None):
        """Logits (batch, time, vocab) for the token after each position of `ids` (batch, time).

        With a cache, `ids` are the new tokens only; their positions continue after the cached ones.
        pad: for rows of different lengths left-padded to one, each row's number of padding tokens
        (batch,): they are masked out, and a row's positions count from its first real token.
        """
        mask = None
        if isinstance(cache, StaticKVCache):
            # Positions and mask from cache.position, a tensor: nothing reads a number back to
            # Python, which a CUDA graph could not replay.
            positions = cache.position + torch.arange(ids.shape[1], device=ids.device)
            cos, sin = self.rope_cos[positions], self.rope_sin[positions]
            keys = torch.arange(cache.max_len, device=ids.device)
            mask = (keys[None, :] <= positions[:, None])[None, None]  # written keys, up to each query
        else:
            start = cache.length if cache is not None else 0
            end = start + ids.shape[1]
            if end > self.cfg.max_seq_len:
                raise ValueError(f"sequence of {end} tokens exceeds the context of {self.cfg.max_seq_len}")
            if pad is None:
                cos, sin = self.rope_cos[start:end], self.rope_sin[start:end]
            else:  # each row's own positions: (batch, 1, time, head_dim / 2), broadcast over the heads
                positions = (torch.arange(start, end, device=ids.device)[None] - pad[:, None]).clamp(min=0)
                cos, sin = self.rope_cos[positions][:, None], self.rope_sin[positions][:, None]
                mask = padded_causal_mask(pad, ids.shape[1], end)
        x = self.embed(ids)
        if capture is not None:
            capture.hidden_states.append(x)
        for layer, block in enumerate(self.blocks):
            x = block(x, cos, sin, layer, cache, capture, mask)
            if capture is not None:
                capture.hidden_states.append(x)
        if isinstance(cache, StaticKVCache):
            cache.position += ids.shape[1]
        return self.embed.unembed(self.norm(x))

    @contextmanager
    def using_attention(self, attention_fn):
        """Run every layer's attention through `attention_fn(q, k, v, mask)` inside the block, e.g. a
        learner's own implementation; q, k, v: (batch, heads, time, head_dim), mask: True = allowed.
        Attention weights are not captured meanwhile."""
        attentions = [block.attn for block in self.blocks]
        for attention in attentions:
            attention.attention_fn = attention_fn
        try:
            yield self
        finally:
            for attention in attentions:
                attention.attention_fn = None

    @torch.inference_mode()
    def stream(
        self,
        prompt_ids: list[int],
        max_new_tokens: int,
        temperature: float = 0.0,
        top_k: int | None = None,
        eos_id: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Iterator[int]:
        """Yield new token ids one at a time: the inference loop of the on-ramp's stage 6.

        temperature 0 is greedy (argmax); above 0 the token is sampled from softmax(logits / T),
        optionally restricted to the top_k most likely tokens.
        """
        if not prompt_ids:
            raise ValueError("the prompt is empty: give at least one token id")
        cache = KVCache()
        ids = torch.tensor([list(prompt_ids)], device=self.device)
        for _ in range(max_new_tokens):
            if cache.length + ids.shape[1] > self.cfg.max_seq_len:
                break
            logits = self(ids, cache=cache)[0, -1]
            token = pick_token(logits, temperature, top_k, generator)
            yield token
            if token == eos_id:
                break
            ids = torch.tensor([[token]], device=self.device)

    def generate(self, prompt_ids: list[int], max_new_tokens: int, **kwargs) -> list[int]:
        """All the new token ids of `stream` at once."""
        return list(self.stream(prompt_ids, max_new_tokens, **kwargs))

    @torch.inference_mode()
    def generate_static(self, prompt_ids: list[int], max_new_tokens: int, temperature: float = 0.0,
                        top_k: int | None = None, eos_id: int | None = None,
                        generator: torch.Generator | None = None) -> list[int]:
        """generate's tokens (the same ones: tests/test_smollm.py), with a StaticKVCache. On a CUDA
        GPU each decoding step is then one CUDA graph replay: the step's few hundred kernels start
        together, not one Python call each, so the GPU, not Python, sets the pace (bench/gpu_check.py)."""
        if not prompt_ids:
            raise ValueError("the prompt is empty: give at least one token id")
        room = min(len(prompt_ids) + max_new_tokens, self.cfg.max_seq_len)
        cache = StaticKVCache(self.cfg, 1, room, self.device, self.norm.weight.dtype)  # the activations
        logits = self(torch.tensor([list(prompt_ids)], device=self.device), cache=cache)[0, -1]
        token_in = torch.zeros((1, 1), dtype=torch.long, device=self.device)

        def step() -> torch.Tensor:
            return self(token_in, cache=cache)[0, -1]

        if self.device.type == "cuda":
            step = cuda_graph(step, cache)
        new: list[int] = []
        for _ in range(max_new_tokens):
            token = pick_token(logits, temperature, top_k, generator)
            new.append(token)
            if token == eos_id or len(new) == max_new_tokens or len(prompt_ids) + len(new) > room:
                break  # (the last token is written into the cache by the step that follows it)
            token_in.fill_(token)
            logits = step()
        return new

    def sample(self, prompt_ids: list[int], n: int, max_new_tokens: int, **kwargs) -> list[list[int]]:
        """n continuations of one prompt, made together: sample_each on n copies of it."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        return self.sample_each([prompt_ids] * n, max_new_tokens, **kwargs)

    @torch.inference_mode()
    def sample_each(
        self,
        prompts: list[list[int]],
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        eos_id: int | None = None,
        generator: torch.Generator | None = None,
    ) -> list[list[int]]:
        """One continuation of each prompt, all made together: the prompts go through the model as one
        batch (left-padded to the longest, the padding masked out), then each step's new tokens do.
        The weights stream from memory once per step for the whole batch, so a step of several rows
        costs far less than that many steps of one (bench/batched_replies.py measures it). A row
        stops at eos_id (kept as its last token) and leaves the batch; the loop stops when every row
        has, or at max_new_tokens. temperature 0 is greedy: each row then gets exactly the reply its
        prompt gets alone (tests/test_smollm.py)."""
        if not prompts or not all(prompts):
            raise ValueError("a prompt is empty: give each at least one token id")
        longest = max(map(len, prompts))
        pad = torch.tensor([longest - len(p) for p in prompts], device=self.device)
        ids = torch.tensor([[0] * (longest - len(p)) + list(p) for p in prompts], device=self.device)
        pad = pad if pad.any() else None  # prompts of one length: the plain causal path
        cache = KVCache()
        replies: list[list[int]] = [[] for _ in prompts]
        growing = list(range(len(prompts)))  # the reply each row of the batch belongs to
        for _ in range(max_new_tokens):
            if cache.length + ids.shape[1] > self.cfg.max_seq_len:
                break
            tokens = pick_tokens(self(ids, cache=cache, pad=pad)[:, -1], temperature, top_k, generator)
            for reply, token in zip(growing, tokens.tolist()):
                replies[reply].append(token)
            still = [row for row, reply in enumerate(growing) if replies[reply][-1] != eos_id]
            if not still:
                break
            if len(still) < len(growing):  # finished rows leave the batch, and their cache with them
                rows = torch.tensor(still, device=self.device)
                cache.keep_rows(rows)
                tokens, growing = tokens[still], [growing[row] for row in still]
                pad = pad[rows] if pad is not None else None
            ids = tokens[:, None].to(self.device)
        return replies


def cuda_graph(step, cache: StaticKVCache):
    """step, captured once as a CUDA graph: the returned function replays it and returns its output
    (the same tensor each time, rewritten). Warm-up runs first, on a side stream, as PyTorch asks;
    they write where the next real step will write, and the cache's position is put back."""
    start = cache.position.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            step()
            cache.position.copy_(start)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = step()  # recorded, not run: the position is still `start`

    def replay() -> torch.Tensor:
        graph.replay()
        return out

    return replay


def pick_tokens(logits: torch.Tensor, temperature: float, top_k: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """One token id per row of logits (batch, vocab): argmax at temperature 0, else a temperature
    sample from softmax(logits / T), optionally among each row's top_k only."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 means greedy), got {temperature}")
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(logits.softmax(-1).cpu(), 1, generator=generator)[:, 0]


def pick_token(logits: torch.Tensor, temperature: float, top_k: int | None = None,
               generator: torch.Generator | None = None) -> int:
    """One token id from a logits vector (see pick_tokens)."""
    return int(pick_tokens(logits[None], temperature, top_k, generator)[0])
