"""Notebook D's data and runs: the instruction and preference sets, SFT, the reward model and DPO,
on small seeded models with the course's real tokenizer."""
from __future__ import annotations

import collections

import pytest
import torch

from course_lib.data.instructions import (ASSISTANT, FLAWS, QUESTIONS, USER, chat_prompt, function_docs, instruction_examples,
                                          preference_pairs, summary_of)
from course_lib.data.pretraining import EOT, is_validation
from course_lib.models.tinygpt import TinyGPT, TinyGPTConfig
from course_lib.train import post_training as pt
from course_lib.train.live import LiveLines

SMALL = dict(context=128, dim=32, n_layers=2, n_heads=2)


@pytest.fixture(scope="module")
def course_base():
    model, tokenizer, source = pt.load_base_model("cpu", prefer_learners=False)
    return model, tokenizer, source


@pytest.fixture(scope="module")
def tokenizer(course_base):
    return course_base[1]


def small_model(tokenizer, seed=0) -> TinyGPT:
    torch.manual_seed(seed)
    return TinyGPT(TinyGPTConfig(vocab_size=tokenizer.get_vocab_size(), **SMALL))


# ---- the data --------------------------------------------------------------------------------
def test_summaries_are_first_sentences_and_unusable_ones_are_dropped():
    assert summary_of("Return the sum of a and b.\n\nMore text here.") == "Return the sum of a and b."
    assert summary_of("Return the sum\nof a and b") == "Return the sum of a and b."
    assert summary_of("dumps(obj, *, skipkeys=False) -> str\n\nSerialize.") is None  # a signature line
    assert summary_of("Short.") is None
    assert summary_of("lower case start is not a sentence of an answer.") is None
    assert summary_of("A" * 200 + ".") is None


def test_held_out_functions_are_exactly_those_pre_training_never_read():
    docs = function_docs()
    assert len(docs) > 1000 and len({d.name for d in docs}) == len(docs)
    train, held_out = instruction_examples("train"), instruction_examples("held_out")
    assert len(train) + len(held_out) == len(docs)
    assert not {e.name for e in train} & {e.name for e in held_out}
    by_name = {d.name: d for d in docs}
    assert all(is_validation(by_name[e.name].docstring) for e in held_out)
    assert not any(is_validation(by_name[e.name].docstring) for e in train)
    assert 0.05 < len(held_out) / len(docs) < 0.2
    example = held_out[0]
    assert example.prompt.startswith(USER) and example.prompt.endswith(ASSISTANT + "\n")
    assert example.name in example.prompt and example.response == by_name[example.name].summary
    assert instruction_examples("held_out") == held_out  # deterministic
    with pytest.raises(ValueError, match="split"):
        instruction_examples("test")


def test_preference_pairs_have_a_flawed_rejected_answer_of_each_kind():
    for split in ("train", "held_out"):
        pairs = preference_pairs(split)
        counts = collections.Counter(p.flaw for p in pairs)
        assert set(counts) == set(FLAWS) and max(counts.values()) - min(counts.values()) <= 1
        for p in pairs:
            assert p.chosen != p.rejected
            if p.flaw == "cut off":
                assert p.chosen.startswith(p.rejected) and len(p.rejected) < len(p.chosen)
            elif p.flaw == "rambles on":
                assert p.rejected.startswith(p.chosen + " ")  # then another question, and its answer
                rest = p.rejected[len(p.chosen) + 1:]
                assert any(rest.startswith(q.split("{name}")[0]) for q in QUESTIONS)
            else:
                assert p.rejected in {d.summary for d in function_docs()}


# ---- conversations as tensors ----------------------------------------------------------------
def test_the_mask_selects_exactly_the_answer_and_its_end(tokenizer):
    prompts = [chat_prompt("What does json.dumps do?"), chat_prompt("Explain x.")]
    answers = ["Serialize obj to a JSON formatted str.", "It is a name."]
    conversations = pt.Conversations(tokenizer, prompts, answers, context=128)
    inputs, labels, mask = conversations.batch([0, 1], "cpu")
    assert inputs.shape == labels.shape == mask.shape
    for b, answer in enumerate(answers):
        assert tokenizer.decode(labels[b][mask[b]].tolist(), skip_special_tokens=False) == answer + EOT
        n = int(mask[b].sum())
        # Inputs and labels are the same conversation shifted by one token.
        ids, _ = conversations.encoded[b]
        assert inputs[b, :len(ids) - 1].tolist() == ids[:-1] and labels[b, :len(ids) - 1].tolist() == ids[1:]
        assert n == len(tokenizer.encode(answer).ids) + 1
    ids, lengths = conversations.sequences([0, 1], "cpu")
    assert lengths.tolist() == [len(e[0]) for e in conversations.encoded]
    with pytest.raises(ValueError, match="as many responses"):
        pt.Conversations(tokenizer, prompts, answers[:1], context=128)


def test_sft_loss_ignores_the_prompt(tokenizer):
    """Changing the prompt's predictions changes nothing; changing the answer's does."""
    conversations = pt.Conversations(tokenizer, [chat_prompt("What does a do?")], ["It does b."], 128)
    inputs, labels, mask = conversations.batch([0], "cpu")
    logits = torch.randn(*inputs.shape, tokenizer.get_vocab_size(), generator=torch.Generator().manual_seed(0))
    base = pt.sft_loss(logits, labels, mask)
    edited = logits.clone()
    edited[~mask] = 100.0
    assert torch.equal(pt.sft_loss(edited, labels, mask), base)
    edited[mask] = 0.0
    assert not torch.isclose(pt.sft_loss(edited, labels, mask), base)


def test_batched_generation_equals_one_prompt_at_a_time(tokenizer):
    model = small_model(tokenizer, seed=3).eval()
    eos = tokenizer.token_to_id(EOT)
    prompts = [tokenizer.encode(chat_prompt(q)).ids for q in ("What does json.dumps do?", "Hi?", "Explain pathlib.Path.mkdir.")]
    batched = model.generate_batch(prompts, 12, eos)
    for prompt, (new, ended) in zip(prompts, batched):
        single = model.generate(prompt, 12, temperature=0, eos_id=eos)
        assert new == single and ended == (single[-1] == eos)
    with pytest.raises(ValueError, match="positions"):
        model.generate_batch(prompts, 200, eos)


def test_format_and_overlap_measures():
    assert pt.follows_format("Return the sum.", ended=True)
    assert not pt.follows_format("Return the sum.", ended=False)  # ran out of tokens
    assert not pt.follows_format("   ", ended=True)
    assert not pt.follows_format("Return\nthe sum.", ended=True)
    assert not pt.follows_format(f"Return. {USER} more", ended=True)
    assert pt.word_overlap("Return the sum.", "return THE sum") == 1.0
    assert pt.word_overlap("abc", "xyz") == 0.0
    assert pt.word_overlap("a b", "a c") == pytest.approx(0.5)


# ---- the base model --------------------------------------------------------------------------
def test_the_course_base_model_loads_with_its_tokenizer(course_base):
    model, tokenizer, source = course_base
    assert model.cfg.vocab_size == tokenizer.get_vocab_size() == 2048
    assert "course's base TinyGPT" in source and "validation loss" in source
    # It is a trained model: it continues Python's documentation far better than chance (ln 2048 = 7.6).
    conversations = pt.Conversations.of_examples(tokenizer, instruction_examples("held_out")[:40], model.cfg.context)
    assert pt.response_loss(model, conversations) < 6.0


def test_a_learner_base_model_is_preferred_when_saved(tmp_path, monkeypatch, tokenizer):
    model = small_model(tokenizer, seed=1)
    path = tmp_path / "C_base.pt"
    model.save(path, tokenizer=tokenizer)
    monkeypatch.setattr(pt, "learner_base_path", lambda: path)
    loaded, loaded_tokenizer, source = pt.load_base_model("cpu")
    assert "your base TinyGPT" in source and loaded.cfg == model.cfg
    assert loaded_tokenizer.to_str() == tokenizer.to_str()
    assert "course's" in pt.load_base_model("cpu", prefer_learners=False)[2]


def test_half_precision_save_loads_back_as_float32(tmp_path, tokenizer):
    model = small_model(tokenizer)
    model.save(tmp_path / "m.pt", half=True)
    loaded = TinyGPT.load(tmp_path / "m.pt")
    assert loaded.embed.weight.dtype == torch.float32
    assert torch.allclose(loaded.embed.weight, model.embed.weight, atol=1e-3)
    assert TinyGPT.load_tokenizer(tmp_path / "m.pt") is None


# ---- the runs ----------------------------------------------------------------------------------
def test_sft_lowers_the_answer_loss_and_is_seeded(tokenizer):
    examples = instruction_examples("train")[:64]
    conversations = pt.Conversations.of_examples(tokenizer, examples, 128)
    runs = []
    for _ in range(2):
        model = small_model(tokenizer)
        before = pt.response_loss(model, conversations)
        log = pt.supervised_finetune(model, conversations, steps=40, held_out=conversations, lr=3e-3,
                                     batch_size=8, eval_every=20, live=False, progress=False)
        runs.append(log.per_step["loss"])
    after = log.last("held-out answer loss")
    assert log.evals["held-out answer loss"][0] == pytest.approx(before)
    assert after < before - 1.0
    assert runs[0] == runs[1]


def test_the_reward_model_learns_to_rank_and_reads_only_the_conversation(tokenizer):
    pairs = pt.PairSet(tokenizer, preference_pairs("train")[:60], 128)
    backbone = small_model(tokenizer)
    reward_model, log = pt.train_reward_model(backbone, pairs, steps=40, held_out=pairs, lr=3e-3, batch_size=8,
                                              eval_every=20, live=False, progress=False)
    assert log.evals["held-out accuracy"][0] == 0.5  # a zero head: every pair a tie
    assert pt.pairwise_accuracy(reward_model, pairs)["all"] > 0.8
    # The backbone was copied, not trained in place.
    assert torch.equal(backbone.embed.weight, small_model(tokenizer).embed.weight)
    # Padding after a conversation does not change its reward.
    ids, lengths = pairs.chosen.sequences([0], "cpu")
    padded = torch.cat([ids, torch.full((1, 5), 7)], dim=1)
    assert torch.allclose(reward_model(ids, lengths), reward_model(padded, lengths), atol=1e-5)


def test_dpo_widens_the_margin_and_drifts_from_the_reference(tokenizer):
    pairs = pt.PairSet(tokenizer, preference_pairs("train")[:48], 128)
    held = pt.Conversations.of_examples(tokenizer, instruction_examples("held_out")[:16], 128)
    policy = small_model(tokenizer)
    reference_copy = small_model(tokenizer)
    assert pt.kl_from_reference(policy, reference_copy, held) == pytest.approx(0.0, abs=1e-6)
    log = pt.train_dpo(policy, pairs, beta=0.5, steps=30, held_out=pairs, held_out_conversations=held, lr=3e-3,
                       batch_size=8, eval_every=15, live=False, progress=False)
    assert log.evals["held-out accuracy"][0] == 0.5 and log.evals["KL from reference"][0] == 0.0
    assert log.last("held-out accuracy") > 0.8
    assert sum(log.per_step["reward margin"][-5:]) / 5 > 0.5
    assert log.last("KL from reference") > 0.0
    assert log.per_step["rejected: log p − reference"][-1] < log.per_step["chosen: log p − reference"][-1]


def test_runs_refuse_a_bad_budget_and_report_a_broken_loss(tokenizer):
    conversations = pt.Conversations.of_examples(tokenizer, instruction_examples("train")[:8], 128)
    model = small_model(tokenizer)
    with pytest.raises(ValueError, match="steps"):
        pt.supervised_finetune(model, conversations, steps=0, live=False, progress=False)
    with pytest.raises(FloatingPointError, match="loss became"):
        pt.supervised_finetune(model, conversations, steps=2, live=False, progress=False,
                               loss_fn=lambda logits, labels, mask: logits.sum() * float("nan"))


def test_live_lines_update_by_name():
    plot = LiveLines({"loss": 0, "accuracy": 1}, ["a", "b"], "t", ["x", "y"])
    plot.update({"loss": ([1, 2], [3.0, 2.0])})
    assert list(plot.figure.data[0].y) == [3.0, 2.0] and list(plot.figure.data[1].y) == []
    with pytest.raises(ValueError, match="no line named"):
        plot.update({"nope": ([1], [1])})
    with pytest.raises(ValueError, match="panel"):
        LiveLines({"loss": 2}, ["a"], "t", ["x"])


def test_the_rlhf_recipe_names_every_stage_and_where_the_course_runs_it():
    from course_lib.widgets.recipe import RLHF_STAGES, rlhf_recipe

    page = rlhf_recipe().data
    for stage, source, product, where in RLHF_STAGES:
        assert stage in page and where in page
    assert page.count("→") == len(RLHF_STAGES) - 1 and "DPO" in page
