"""TinyGPT, its pre-training corpus and its trainer: real behaviour on small runs."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from course_lib.data.pretraining import EOT, SOURCES, code_files, is_validation, load_corpus, prose_documents
from course_lib.models.tinygpt import TinyGPT, TinyGPTConfig
from course_lib.exercises.pretraining import next_token_loss
from course_lib.train.loop import learning_rate
from course_lib.train.pretrain import Pretrainer, TrainConfig, sample_batch, validation_loss

SMALL = TinyGPTConfig(vocab_size=2048, context=32, dim=32, n_layers=2, n_heads=2)
QUICK = TrainConfig(batch_size=8, lr=3e-3, warmup_steps=3, eval_every=5, eval_windows=8)


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


def small_model(seed=0, cfg=SMALL) -> TinyGPT:
    torch.manual_seed(seed)
    return TinyGPT(cfg)


# ---- the model ------------------------------------------------------------------------------
def test_forward_shape_and_tied_unembedding():
    model = small_model()
    ids = torch.randint(0, SMALL.vocab_size, (3, 10))
    logits = model(ids)
    assert logits.shape == (3, 10, SMALL.vocab_size)
    # Tied: the output layer is the embedding table itself, not a copy.
    assert not any("head" in name for name, _ in model.named_parameters())
    d = SMALL.dim
    per_block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d)
    expected = SMALL.vocab_size * d + SMALL.context * d + SMALL.n_layers * per_block + 2 * d
    assert model.num_parameters() == expected
    assert model.num_parameters(embeddings=False) == expected - SMALL.vocab_size * d - SMALL.context * d


def test_attention_is_causal():
    """Changing a later token must not change the predictions at earlier positions."""
    model = small_model().eval()
    ids = torch.randint(0, SMALL.vocab_size, (1, 12))
    changed = ids.clone()
    changed[0, 8] = (changed[0, 8] + 1) % SMALL.vocab_size
    a, b = model(ids), model(changed)
    assert torch.allclose(a[0, :8], b[0, :8], atol=1e-6)
    assert not torch.allclose(a[0, 8:], b[0, 8:], atol=1e-6)


def test_context_and_config_are_checked():
    model = small_model()
    with pytest.raises(ValueError, match="exceeds the context"):
        model(torch.zeros(1, SMALL.context + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="divisible"):
        TinyGPTConfig(dim=30, n_heads=4)
    with pytest.raises(ValueError, match="n_layers"):
        TinyGPTConfig(n_layers=0)


def test_generate_is_deterministic_and_stops_at_eos():
    model = small_model()
    greedy = model.generate([1, 2, 3], 20, temperature=0)
    assert len(greedy) == 20 and greedy == model.generate([1, 2, 3], 20, temperature=0)
    # Longer than the context: generation slides its window instead of failing.
    assert len(model.generate([5] * SMALL.context, 5, temperature=0)) == 5
    sampled = model.generate([1], 30, temperature=1.0, generator=torch.Generator().manual_seed(3))
    assert sampled == model.generate([1], 30, temperature=1.0, generator=torch.Generator().manual_seed(3))
    stop = greedy[4]
    stopped = model.generate([1, 2, 3], 20, temperature=0, eos_id=stop)
    assert stopped[-1] == stop and len(stopped) == greedy.index(stop) + 1
    with pytest.raises(ValueError, match="empty"):
        model.generate([], 3)


def test_save_and_load_round_trip(tmp_path):
    model = small_model(seed=4)
    path = tmp_path / "tiny.pt"
    model.save(path)
    loaded = TinyGPT.load(path)
    assert loaded.cfg == model.cfg
    ids = torch.randint(0, SMALL.vocab_size, (2, 9))
    assert torch.equal(model.eval()(ids), loaded.eval()(ids))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a TinyGPT checkpoint"):
        TinyGPT.load(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError):
        TinyGPT.load(tmp_path / "missing.pt")


# ---- the corpus -----------------------------------------------------------------------------
def test_corpus_sources_splits_and_tokenizer(corpus):
    assert corpus.vocab_size == 2048
    assert corpus.eot_id is not None
    for source in SOURCES:
        train, val = corpus.train[source], corpus.val[source]
        assert train.dtype == torch.int64 and len(val) > 10_000 and len(train) > 5 * len(val)
        assert int(train.max()) < corpus.vocab_size and int(train.min()) >= 0
        assert corpus.stats[source]["train_tokens"] == len(train)
    # Code outweighs prose by far: the standard library is mostly code.
    assert len(corpus.train["code"]) > 3 * len(corpus.train["prose"])
    text = "def f(x):\n    return x ** 2  # naïve, 東京, 🙂"
    assert corpus.decode(corpus.encode(text)) == text
    assert corpus.encode(EOT) == [corpus.eot_id]
    assert 2.5 < corpus.stats["bytes_per_token"] < 5
    assert "train tokens" in corpus.summary()


def test_corpus_documents_are_what_they_claim():
    files = code_files()
    assert files and not any("test" in p.parts or p.name.startswith("test_") for p in files)
    assert not any("encodings" in p.parts for p in files)
    prose = prose_documents()
    assert any("The \"if\" statement" in d or "if_stmt" in d for d in prose)
    # The split is a property of each document's text: fixed, and about one in ten.
    share = sum(map(is_validation, prose)) / len(prose)
    assert 0.05 < share < 0.15


# ---- the trainer ----------------------------------------------------------------------------
def test_learning_rate_warms_up_then_decays():
    def lr(progress, step):
        return learning_rate(progress, step, peak=1.0, warmup_steps=10, min_ratio=0.1)

    assert lr(0.0, 0) == pytest.approx(0.1)
    assert lr(0.1, 9) == pytest.approx(1.0)
    assert lr(0.1, 10) < 1.0
    assert lr(1.0, 100) == pytest.approx(0.1)
    values = [lr(f / 10, 10 + f) for f in range(11)]
    assert values == sorted(values, reverse=True)


def test_sample_batch_follows_the_mixture(corpus):
    g = torch.Generator().manual_seed(0)
    inputs, targets = sample_batch(corpus.train, {"code": 1.0}, 4, 16, g)
    assert inputs.shape == targets.shape == (4, 16)
    assert torch.equal(inputs[:, 1:], targets[:, :-1])
    streams = {"prose": torch.zeros(100, dtype=torch.long), "code": torch.ones(100, dtype=torch.long)}
    mixed, _ = sample_batch(streams, {"prose": 0.25, "code": 0.75}, 400, 8, g)
    share_code = mixed[:, 0].float().mean().item()
    assert 0.65 < share_code < 0.85


def test_training_lowers_the_loss_and_uses_the_given_loss_fn(corpus):
    calls = []

    def counting_loss(logits, targets):
        calls.append(1)
        return next_token_loss(logits, targets)

    trainer = Pretrainer(small_model(), corpus, QUICK, loss_fn=counting_loss, device="cpu")
    log = trainer.run(steps=40, live=False, progress=False)
    assert trainer.step == 40 and len(log.per_step["loss"]) == 40
    assert log.eval_steps == list(range(0, 41, QUICK.eval_every))
    for source in SOURCES:
        assert log.evals[source][-1] < log.evals[source][0] - 0.5  # 7.6 -> about 6.7
    assert len(calls) >= 40
    assert trainer.tokens == 40 * QUICK.batch_size * SMALL.context


def test_resume_after_interruption_matches_an_uninterrupted_run(corpus, tmp_path):
    straight = Pretrainer(small_model(), corpus, QUICK, seed=1, device="cpu")
    straight.run(steps=16, live=False, progress=False)

    checkpoint = tmp_path / "run.ckpt"
    holder = {}

    def interrupting_loss(logits, targets):
        if holder["trainer"].model.training and holder["trainer"].step == 9:
            raise KeyboardInterrupt  # as the notebook's stop button does, mid-step
        return next_token_loss(logits, targets)

    first = Pretrainer(small_model(), corpus, QUICK, seed=1, checkpoint=checkpoint,
                       loss_fn=interrupting_loss, device="cpu")
    holder["trainer"] = first
    first.run(steps=16, live=False, progress=False)
    assert first.step == 9 and checkpoint.is_file()

    resumed = Pretrainer(small_model(seed=99), corpus, QUICK, seed=1, checkpoint=checkpoint, device="cpu")
    assert resumed.step == 9
    resumed.run(steps=16, live=False, progress=False)
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    assert resumed.log.per_step == straight.log.per_step
    assert resumed.log.eval_steps == sorted(straight.log.eval_steps + [9])  # and where it stopped


def test_checkpoint_refuses_another_shape_and_bad_budgets(corpus, tmp_path):
    checkpoint = tmp_path / "a.ckpt"
    trainer = Pretrainer(small_model(), corpus, QUICK, checkpoint=checkpoint, device="cpu")
    trainer.run(steps=2, live=False, progress=False)
    bigger = dataclasses.replace(SMALL, dim=64)
    with pytest.raises(ValueError, match="another shape"):
        Pretrainer(TinyGPT(bigger), corpus, QUICK, checkpoint=checkpoint, device="cpu")
    for bad in ({"steps": 0}, {"seconds": -1}, {}, {"steps": 2.5}):
        with pytest.raises(ValueError):
            trainer.run(**bad, live=False, progress=False)
    with pytest.raises(ValueError, match="vocabulary"):
        Pretrainer(TinyGPT(dataclasses.replace(SMALL, vocab_size=100)), corpus, QUICK)
    with pytest.raises(ValueError, match="mixture"):
        TrainConfig(mixture=(("poetry", 1.0),))


def test_validation_loss_is_fixed_windows(corpus):
    model = small_model()
    a = validation_loss(model, corpus.val["prose"], windows=8)
    assert a == validation_loss(model, corpus.val["prose"], windows=8)
    # Untrained: close to the loss of a uniform guess, log(2048) = 7.62 nats.
    assert 7.0 < a < 8.5
    with pytest.raises(ValueError, match="fewer than one window"):
        validation_loss(model, corpus.val["prose"][:10])


# ---- model collapse ---------------------------------------------------------------------------
def test_distinct_ngrams():
    from course_lib.train.collapse import distinct_ngrams

    assert distinct_ngrams([[1, 2, 3, 4]], 2) == 1.0
    assert distinct_ngrams([[1, 2, 1, 2, 1, 2]], 2) == 2 / 5
    assert distinct_ngrams([[7, 7], [7, 7]], 2) == 0.5


def test_self_training_runs_generations(corpus):
    from course_lib.train.collapse import self_training

    results = self_training(corpus, SMALL, QUICK, generations=1, steps=5, n_sequences=8, length=20,
                            device="cpu", progress=False)
    assert [r["generation"] for r in results] == [0, 1]
    assert results[1]["trained_on"] == "generation 0's samples"
    for r in results:
        assert 0 < r["distinct_2grams"] <= 1 and 0 < r["distinct_3grams"] <= 1
        assert r["distinct_3grams"] >= r["distinct_2grams"] - 1e-9 or r["distinct_3grams"] > 0
        assert 5 < r["real_prose_loss"] < 9


def test_live_curve_draws_the_log(corpus):
    from course_lib.train.loop import RunLog
    from course_lib.train.pretrain import LiveCurve

    log = RunLog(steps=[1, 2, 3], per_step={"loss": [7.0, 6.0, 5.0]}, eval_steps=[0, 3],
                 evals={"prose": [7.6, 5.5], "code": [7.6, 5.2]})
    curve = LiveCurve()
    curve.draw(log)
    train, prose, code = curve.figure.data
    assert list(train.x) == [1, 2, 3] and train.y[0] == 7.0 and 5.0 < train.y[-1] < 7.0  # smoothed
    assert list(prose.x) == [0, 3] and list(prose.y) == [7.6, 5.5] and list(code.y) == [7.6, 5.2]


def test_a_first_version_checkpoint_resumes_with_its_log(corpus, tmp_path):
    """Checkpoints written before the run log was a RunLog keep their model, optimizer and curve."""
    checkpoint = tmp_path / "old.ckpt"
    trainer = Pretrainer(small_model(), corpus, QUICK, checkpoint=checkpoint, device="cpu")
    trainer.run(steps=7, live=False, progress=False, sample_every=5)
    saved = torch.load(checkpoint, weights_only=True)
    log = saved.pop("log")
    saved.pop("format")
    saved["step"] = 7
    saved["history"] = {"train_steps": log["steps"], "train_loss": log["per_step"]["loss"],
                        "eval_steps": log["eval_steps"], "val_loss": log["evals"], "tokens": trainer.tokens,
                        "seconds": log["seconds"], "samples": saved.pop("samples")}
    torch.save(saved, checkpoint)
    resumed = Pretrainer(small_model(seed=5), corpus, QUICK, checkpoint=checkpoint, device="cpu")
    assert resumed.step == 7 and resumed.log.per_step == trainer.log.per_step
    assert resumed.log.evals == trainer.log.evals and resumed.samples == trainer.samples
    assert all(torch.equal(a, b) for a, b in zip(resumed.model.parameters(), trainer.model.parameters()))


def test_a_time_budget_ends_the_run_and_measures_where_it_ended(corpus):
    trainer = Pretrainer(small_model(), corpus, QUICK, device="cpu")
    log = trainer.run(seconds=0.5, live=False, progress=False)
    assert 0 < trainer.step < 10_000 and log.eval_steps[-1] == trainer.step and not log.stopped
