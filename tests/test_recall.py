"""The recall task (course_lib.data.recall) and the LSTM-against-attention race (course_lib.train.recall)."""
import math

import pytest
import torch
import torch.nn as nn

from course_lib.data.recall import RecallTask
from course_lib.train.recall import (
    RecallAttention,
    RecallLSTM,
    compare_recall,
    count_parameters,
    curriculum_length,
    fact_influence,
    recall_accuracy,
    train_recall,
)

TASK = RecallTask(n_keys=8, n_values=8)


def decode(task: RecallTask, ids: torch.Tensor):
    """Every fact in one sequence as {position: (key, value)}, and the asked key."""
    facts = {}
    for position, token in enumerate(ids[:-1].tolist()):
        if task.n_values <= token < task.query_token(0):
            facts[position] = divmod(token - task.n_values, task.n_values)
    return facts, ids[-1].item() - task.query_token(0)


class Oracle(nn.Module):
    """Answers by reading the sequence: the value of the fact whose key the question asks for."""

    def __init__(self, task):
        super().__init__()
        self.task = task
        self.unused = nn.Parameter(torch.zeros(1))  # gives the model a device

    def forward(self, ids):
        logits = torch.zeros(len(ids), self.task.n_values)
        for row, sequence in enumerate(ids):
            facts, asked = decode(self.task, sequence)
            value = next(value for key, value in facts.values() if key == asked)
            logits[row, value] = 50.0  # sure of it: its probabilities are one-hot
        return logits


def test_the_asked_fact_sits_at_the_distance_and_its_value_is_the_target():
    seq_len, distance = 40, 13
    ids, targets = TASK.batch(64, seq_len, distance, torch.Generator().manual_seed(0))
    assert ids.shape == (64, seq_len) and targets.shape == (64,)
    assert ids.dtype == targets.dtype == torch.int64
    for sequence, target in zip(ids, targets):
        facts, asked = decode(TASK, sequence)
        assert 0 <= asked < TASK.n_keys  # the last token is a question
        assert sorted(key for key, _ in facts.values()) == list(range(TASK.n_keys))  # each key once
        assert facts[seq_len - 1 - distance] == (asked, target.item())


def test_distractors_are_lone_values_never_facts_or_questions():
    ids, _ = TASK.batch(64, 50, (1, 49), torch.Generator().manual_seed(1))
    is_value = ids < TASK.n_values
    is_query = ids >= TASK.query_token(0)
    assert (is_value.sum(dim=1) == 50 - TASK.n_keys - 1).all()  # all but the facts and the question
    assert is_query[:, -1].all() and not is_query[:, :-1].any()
    assert (ids < TASK.vocab_size).all()


def test_a_distance_range_is_sampled_over_its_whole_span():
    seq_len, low, high = 30, 3, 20
    ids, _ = TASK.batch(1000, seq_len, (low, high), torch.Generator().manual_seed(2))
    distances = set()
    for sequence in ids:
        facts, asked = decode(TASK, sequence)
        distances |= {seq_len - 1 - position for position, (key, _) in facts.items() if key == asked}
    assert distances == set(range(low, high + 1))


def test_a_distance_range_gives_each_doubling_of_distance_about_the_same_share():
    seq_len = 136
    ids, _ = TASK.batch(4000, seq_len, (1, 127), torch.Generator().manual_seed(3))
    counts = [0] * 7  # distances 1, 2-3, 4-7, ..., 64-127
    for sequence in ids:
        facts, asked = decode(TASK, sequence)
        distance = next(seq_len - 1 - position for position, (key, _) in facts.items() if key == asked)
        counts[distance.bit_length() - 1] += 1
    assert all(abs(count / 4000 - 1 / 7) < 0.03 for count in counts), counts


def test_a_seed_repeats_the_batch():
    first = TASK.batch(8, 30, (1, 29), torch.Generator().manual_seed(5))
    again = TASK.batch(8, 30, (1, 29), torch.Generator().manual_seed(5))
    other = TASK.batch(8, 30, (1, 29), torch.Generator().manual_seed(6))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0])


@pytest.mark.parametrize("seq_len, distance, message", [
    (20, 0, "between 1 and seq_len - 1"),
    (20, 20, "between 1 and seq_len - 1"),
    (20, (1, 25), "between 1 and seq_len - 1"),
    (20, (9, 3), "empty"),
    (8, 3, "at least n_keys \\+ 1"),
])
def test_impossible_distances_and_lengths_are_explained(seq_len, distance, message):
    with pytest.raises(ValueError, match=message):
        TASK.batch(4, seq_len, distance)


def test_bad_task_sizes_are_explained():
    with pytest.raises(ValueError, match="n_values must be at least 2"):
        RecallTask(n_keys=3, n_values=1)
    with pytest.raises(ValueError, match="n_keys must be between 1 and 26"):
        RecallTask(n_keys=27)
    with pytest.raises(ValueError, match="batch_size"):
        TASK.batch(0, 20, 3)


def test_show_writes_facts_values_and_the_question():
    task = RecallTask(n_keys=2, n_values=4)
    ids = [3, task.fact_token(1, 2), 0, task.fact_token(0, 3), task.query_token(1)]
    assert task.show(ids) == "3 B2 0 A3 B?"


def test_both_models_answer_with_one_logit_per_value_and_have_similar_sizes():
    ids, _ = TASK.batch(5, 24, (1, 23), torch.Generator().manual_seed(0))
    lstm, attention = RecallLSTM(TASK), RecallAttention(TASK)
    assert lstm(ids).shape == attention(ids).shape == (5, TASK.n_values)
    n_lstm, n_attention = count_parameters(lstm), count_parameters(attention)
    assert abs(n_lstm - n_attention) < 0.1 * n_attention, (n_lstm, n_attention)


def test_the_curriculum_grows_to_full_length_by_half_way():
    lengths = [curriculum_length(step, 100, 12, 72) for step in range(100)]
    assert lengths[0] == 12 and lengths[50] == 72 and lengths[-1] == 72
    assert lengths == sorted(lengths)


@pytest.mark.parametrize("model_class", [RecallLSTM, RecallAttention])
def test_a_short_training_run_lowers_the_loss(model_class):
    task = RecallTask(n_keys=2, n_values=4)  # small enough to learn in 100 steps
    torch.manual_seed(0)
    model = model_class(task)
    result = train_recall(model, 100, max_len=10, min_len=10, device="cpu", seed=0, progress=False)
    losses = result["losses"]
    assert len(losses) == result["steps"] == 100 and result["seconds"] > 0
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert first > 0.8 * math.log(task.n_values)  # starts near chance
    assert last < 0.3 * first, (first, last)


def test_training_sees_the_same_batches_for_the_same_seed_and_restores_the_threads():
    threads = torch.get_num_threads()
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        runs.append(train_recall(RecallLSTM(TASK), 5, max_len=30, device="cpu", seed=3, progress=False))
    assert runs[0]["losses"] == runs[1]["losses"]
    assert torch.get_num_threads() == threads  # one thread only while training


def test_accuracy_is_one_for_an_oracle_and_near_chance_for_a_constant_guess():
    distances = (1, 5, 30)
    perfect = recall_accuracy(Oracle(TASK), distances, seq_len=32, n_examples=64, device="cpu")
    assert perfect == {1: 1.0, 5: 1.0, 30: 1.0}

    class AlwaysZero(Oracle):
        def forward(self, ids):
            return torch.zeros(len(ids), self.task.n_values).index_fill_(1, torch.tensor([0]), 1.0)

    guessed = recall_accuracy(AlwaysZero(TASK), distances, seq_len=32, n_examples=512, device="cpu")
    assert list(guessed) == list(distances)
    assert all(abs(accuracy - 1 / TASK.n_values) < 0.06 for accuracy in guessed.values()), guessed


def test_compare_recall_reports_both_models_at_every_distance_and_seed():
    result = compare_recall(distances=(1, 2, 8), steps=20, device="cpu", seeds=(0, 1), n_examples=32,
                            progress=False)
    assert set(result.accuracy) == set(result.parameters) == set(result.seconds) == {"LSTM", "attention"}
    for by_distance in result.accuracy.values():
        assert list(by_distance) == [1, 2, 8]
        assert all(len(values) == 2 and all(0.0 <= a <= 1.0 for a in values) for values in by_distance.values())
    assert result.steps == 20 and result.seq_len == 16 and result.seeds == (0, 1)
    assert all(len(runs) == 2 and all(len(losses) == 20 for losses in runs) for runs in result.losses.values())
    table = result.table()
    assert "LSTM" in table and "attention" in table and f"{result.parameters['LSTM']:,d}" in table
    assert len(result.verdicts()) == 3
    with pytest.raises(ValueError, match="at least one seed"):
        compare_recall(distances=(1,), steps=1, seeds=(), device="cpu")


@pytest.fixture(scope="module")
def race():
    """The race at a small seeded size, three seeds: distances up to 32, 300 steps."""
    return compare_recall(distances=(1, 4, 32), steps=300, device="cpu", seeds=(0, 1, 2), n_examples=128,
                          progress=False)


def test_the_trained_lstm_forgets_far_facts_and_attention_does_not(race):
    # B2's lesson, on every seed: the LSTM right about near facts and much worse about far ones;
    # attention right at every distance.
    lstm, attention = race.accuracy["LSTM"], race.accuracy["attention"]
    assert min(lstm[1]) > 0.85 and max(lstm[32]) < min(lstm[1]) - 0.5, lstm
    assert all(min(values) > 0.9 for values in attention.values()), attention
    assert "is higher, beyond the spread" in race.verdicts()[0]  # LSTM: near beyond far
    assert "No clear difference" in race.verdicts()[1]  # attention: near and far alike


def test_a_trained_lstms_fact_fades_with_distance_and_attentions_does_not(race):
    # B1's straw, measured on trained models: the push of the asked fact on the answer, every seed.
    for seed in range(3):
        lstm = {d: values[seed] for d, values in race.influence["LSTM"].items()}
        attention = {d: values[seed] for d, values in race.influence["attention"].items()}
        assert lstm[1] > 0.6 and lstm[1] > lstm[4] > lstm[32] and lstm[32] < 0.5 * lstm[1], lstm
        assert min(attention.values()) > 0.9, attention


def test_the_answer_follows_the_fact_fully_for_an_oracle_and_not_at_all_for_a_constant_guess():
    assert fact_influence(Oracle(TASK), (1, 20), seq_len=24, n_examples=32, device="cpu") == {1: 1.0, 20: 1.0}

    class Constant(Oracle):
        def forward(self, ids):
            return torch.zeros(len(ids), self.task.n_values)

    assert fact_influence(Constant(TASK), (1, 20), seq_len=24, n_examples=32, device="cpu") == {1: 0.0, 20: 0.0}


def test_fact_influence_leaves_the_model_as_it_was():
    model = RecallLSTM(TASK)
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    influence = fact_influence(model, (1, 4), seq_len=16, n_examples=8, device="cpu")
    assert list(influence) == [1, 4] and all(value > 0 for value in influence.values())
    assert model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
