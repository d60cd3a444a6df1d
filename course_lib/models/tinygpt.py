"""TinyGPT: the small GPT the learner grows, in one file, top to bottom.

A GPT is a stack of identical blocks between an embedding table and an unembedding. Each block lets
every position look back at the earlier ones (causal self-attention), then thinks about what it saw
on its own (a small feed-forward network). Both steps add to a running vector ("the residual
stream") instead of replacing it, and both normalise their input first ("pre-norm"), which keeps
training stable. The unembedding reuses the embedding table ("tied"), saving vocab x dim numbers.

Pre-trained in notebook C, fine-tuned in D, trained with GRPO in E.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from tokenizers import Tokenizer

from course_lib.models.llama import init_weights, pick_token


@dataclass(frozen=True)
class TinyGPTConfig:
    vocab_size: int = 2048
    context: int = 128  # the most tokens the model sees at once
    dim: int = 128  # width of the residual stream
    n_layers: int = 4
    n_heads: int = 4
    dropout: float = 0.0

    def __post_init__(self):
        for name in ("vocab_size", "context", "dim", "n_layers", "n_heads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TinyGPTConfig.{name} must be a whole number >= 1, got {value!r}")
        if self.dim % self.n_heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by n_heads ({self.n_heads})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


def pad_right(rows: list[list[int]], pad_id: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Token-id rows of different lengths as one (len(rows), longest) tensor, padded on the right.
    For a causal model the padding after a row changes nothing at the row's own positions."""
    batch = torch.full((len(rows), max(map(len, rows))), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        batch[i, :len(row)] = torch.tensor(row, dtype=torch.long)
    return batch.to(device)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: TinyGPTConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim)  # queries, keys and values in one matmul
        self.proj = nn.Linear(cfg.dim, cfg.dim)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, time, dim = x.shape
        q, k, v = self.qkv(x).split(dim, dim=-1)
        # (batch, time, dim) -> (batch, heads, time, head_dim): each head attends on its own slice.
        q, k, v = (t.view(batch, time, self.n_heads, dim // self.n_heads).transpose(1, 2) for t in (q, k, v))
        # torch's fused attention: softmax(q k^T / sqrt(d)) v with the causal rule, never
        # materialising the time x time matrix where a fused kernel is available.
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(batch, time, dim))


class MLP(nn.Module):
    def __init__(self, cfg: TinyGPTConfig):
        super().__init__()
        self.up = nn.Linear(cfg.dim, 4 * cfg.dim)
        self.down = nn.Linear(4 * cfg.dim, cfg.dim)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.down(F.gelu(self.up(x))))


class Block(nn.Module):
    def __init__(self, cfg: TinyGPTConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.dim)
        self.attn = CausalSelfAttention(cfg)
        self.norm2 = nn.LayerNorm(cfg.dim)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyGPT(nn.Module):
    def __init__(self, cfg: TinyGPTConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.position = nn.Embedding(cfg.context, cfg.dim)  # learned, one vector per position
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(cfg.dim)
        self.apply(init_weights)
        for name, p in self.named_parameters():
            if name.endswith(("proj.weight", "down.weight")):
                # GPT-2: the layers that write into the residual stream start smaller, one factor
                # of sqrt(2 * n_layers), so the stream's size does not grow with depth at the start.
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layers))
            elif name.endswith(".bias"):
                nn.init.zeros_(p)

    @property
    def device(self) -> torch.device:
        return self.embed.weight.device

    def num_parameters(self, embeddings: bool = True) -> int:
        """All trainable numbers; embeddings=False leaves out the token and position tables (the
        count scaling laws use, as Kaplan et al. 2020 and Hoffmann et al. 2022 do)."""
        total = sum(p.numel() for p in self.parameters())
        if not embeddings:
            total -= self.embed.weight.numel() + self.position.weight.numel()
        return total

    def features(self, ids: torch.Tensor) -> torch.Tensor:
        """The final, normalised residual stream (batch, time, dim): what the unembedding reads, and
        what a reward model's scalar head reads instead (notebook D)."""
        time = ids.shape[1]
        if time > self.cfg.context:
            raise ValueError(f"sequence of {time} tokens exceeds the context of {self.cfg.context}")
        x = self.embed(ids) + self.position(torch.arange(time, device=ids.device))
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def unembed(self, features: torch.Tensor) -> torch.Tensor:
        """Logits over the vocabulary from final vectors. Tied: the logit of a token is
        <final vector, that token's embedding>."""
        return features @ self.embed.weight.T

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits (batch, time, vocab) for the token after each position of `ids` (batch, time)."""
        return self.unembed(self.features(ids))

    @torch.no_grad()
    def generate(self, prompt_ids: list[int], max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, eos_id: int | None = None,
                 generator: torch.Generator | None = None) -> list[int]:
        """The new token ids after `prompt_ids`: predict, pick (greedy at temperature 0), append, repeat.

        With no KV cache, each step re-reads the last `context` tokens: simple, and fast enough
        for a model this small. Stops early at `eos_id`.
        """
        if not prompt_ids:
            raise ValueError("the prompt is empty: give at least one token id")
        was_training = self.training
        self.eval()
        ids = list(prompt_ids)
        new: list[int] = []
        for _ in range(max_new_tokens):
            window = torch.tensor([ids[-self.cfg.context:]], device=self.device)
            token = pick_token(self.unembed(self.features(window)[0, -1]), temperature, top_k, generator)
            ids.append(token)
            new.append(token)
            if token == eos_id:
                break
        self.train(was_training)
        return new

    @torch.no_grad()
    def generate_batch(self, prompts: list[list[int]], max_new_tokens: int, eos_id: int, temperature: float = 0.0,
                       generator: torch.Generator | None = None) -> list[tuple[list[int], bool]]:
        """Continuations of many prompts at once: (new ids, whether eos_id ended it) for each.

        The rows are padded on the right. A causal model's position t never sees what comes after
        it, so the padding changes nothing: each row's next token is read at its own last position.
        Greedy at temperature 0, else sampled (with `generator`, for repeatable draws).
        """
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 means greedy), got {temperature}")
        longest = max(len(p) for p in prompts) + max_new_tokens
        if longest > self.cfg.context:
            raise ValueError(f"a prompt plus {max_new_tokens} new tokens needs {longest} positions; "
                             f"the model has {self.cfg.context}")
        was_training = self.training
        self.eval()
        rows = [list(p) for p in prompts]
        new: list[list[int]] = [[] for _ in prompts]
        done = [False] * len(prompts)
        for _ in range(max_new_tokens):
            active = [i for i, d in enumerate(done) if not d]
            if not active:
                break
            features = self.features(pad_right([rows[i] for i in active], eos_id, self.device))
            last = torch.tensor([len(rows[i]) - 1 for i in active], device=features.device)
            # Only each row's last position is unembedded: the vocabulary-wide product at every
            # position would be most of the work.
            logits = self.unembed(features[torch.arange(len(active), device=features.device), last]).float()
            if temperature == 0:
                picked = logits.argmax(-1).tolist()
            else:
                probs = (logits / temperature).softmax(-1).cpu()
                picked = torch.multinomial(probs, 1, generator=generator)[:, 0].tolist()
            for i, token in zip(active, picked):
                rows[i].append(token)
                new[i].append(token)
                done[i] = token == eos_id
        self.train(was_training)
        return list(zip(new, done))

    def save(self, path: str | Path, tokenizer: Tokenizer | None = None, half: bool = False) -> None:
        """Config and weights in one file (written to a temporary name, then renamed).

        tokenizer: stored with the weights, so that the file works on its own (the corpus's
        tokenizer depends on the Python version that built it). half: weights in float16, half
        the size (the course's shipped checkpoint); they load back as float32.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        weights = {k: v.half() if half and v.is_floating_point() else v for k, v in self.state_dict().items()}
        saved = {"config": asdict(self.cfg), "weights": weights}
        if tokenizer is not None:
            saved["tokenizer"] = tokenizer.to_str()
        torch.save(saved, tmp)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> "TinyGPT":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no TinyGPT checkpoint at {path}")
        try:
            saved = torch.load(path, map_location=device, weights_only=True)
            model = cls(TinyGPTConfig(**saved["config"]))
            model.load_state_dict(saved["weights"])  # float16 weights are cast to the model's float32
        except Exception as error:
            raise ValueError(f"{path} is not a TinyGPT checkpoint this version can read ({error})") from error
        return model.to(device)

    @staticmethod
    def load_tokenizer(path: str | Path) -> Tokenizer | None:
        """The tokenizer saved with a checkpoint, or None if it was saved without one."""
        saved = torch.load(Path(path), map_location="cpu", weights_only=True)
        return Tokenizer.from_str(saved["tokenizer"]) if "tokenizer" in saved else None
