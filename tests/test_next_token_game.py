"""NextTokenGame on the real SmolLM2, driven from Python the way a notebook would: guesses, ranks,
losses, the bars, and guesses that are empty, long, several tokens or not Latin text."""
import functools
import html
import math

import pytest
import torch

from course_lib.models.smollm import load_smollm2
from course_lib.widgets.next_token_game import DEFAULT_PROMPTS, MAX_GUESS_CHARS, NextTokenGame
from course_lib.widgets.tokens import display_piece

FRANCE = "The capital of France is"


@pytest.fixture(scope="module")
def smol():
    return load_smollm2(device="cpu", progress=False)


@pytest.fixture(scope="module")
def shared(smol):
    # One game for the module: each forward pass is cached per prompt, and setting the prompt resets it.
    return NextTokenGame(smol)


@pytest.fixture
def game(shared):
    shared.prompt = FRANCE
    return shared


@functools.lru_cache(maxsize=None)
def _distribution(smol, prompt):
    return torch.softmax(smol.logits(smol.encode(prompt)).double(), dim=-1)


def distribution(smol, prompt):
    """The model's own next-token probabilities, computed here without the widget (cached: CPU time)."""
    return _distribution(smol, prompt)


def test_paris_is_the_top_choice_after_the_capital_of_france(game, smol):
    result = game.guess(" Paris")
    probabilities = distribution(smol, FRANCE)
    paris = smol.encode(" Paris")
    assert paris == [7042]
    assert int(probabilities.argmax()) == paris[0]  # checked against the model itself, not assumed
    assert result["rank"] == 1 and result["in_top"]
    assert result["token_ids"] == paris and result["first_token_text"] == " Paris"
    assert result["probability"] == pytest.approx(float(probabilities[paris[0]]), rel=1e-6)
    assert result["loss_nats"] == pytest.approx(-math.log(result["probability"]), rel=1e-9)
    assert "top choice" in game.message and f"{result['loss_nats']:.2f} nats" in game.message
    assert game.guess_box.value == " Paris"


def test_a_guess_without_its_leading_space_is_tried_with_one(game):
    result = game.guess("Paris")
    assert result["scored_text"] == " Paris" and result["rank"] == 1
    assert "tried with and without a leading space" in game.message
    assert "“␣Paris” is scored" in game.message


def test_a_nonsense_guess_ranks_far_down_with_a_low_probability_and_a_big_loss(game, smol):
    result = game.guess(" xylophone")
    assert result["rank"] > 100 and result["probability"] < 1e-3 and not result["in_top"]
    assert result["loss_nats"] > math.log(1e3)
    # The rank counts the tokens the model finds more likely.
    probabilities = distribution(smol, FRANCE)
    first = result["token_ids"][0]
    assert result["rank"] == int((probabilities > probabilities[first]).sum()) + 1
    # Shown as its own bar below the top list.
    guess_bar = game.figure.data[1]
    assert list(guess_bar.x) == pytest.approx([result["probability"]])
    assert game.figure.layout.yaxis.ticktext[-1].startswith("your guess:")


def test_top_tokens_are_sorted_and_sum_to_at_most_one(game, smol):
    top = game.top_tokens()
    assert len(top) == 10 and top[0][0] == " Paris"
    probabilities = [p for _, p in top]
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0 < sum(probabilities) <= 1 + 1e-9
    exact = distribution(smol, FRANCE).topk(10)
    assert probabilities == pytest.approx(exact.values.tolist(), rel=1e-6)
    assert [text for text, _ in top] == [smol.token_label(i) for i in exact.indices.tolist()]


def test_the_bars_match_top_tokens_and_the_guess_is_highlighted(game, smol):
    assert set(game.figure.layout.yaxis.ticktext) == {"?"}  # nothing is given away before the reveal
    assert not any(game.figure.data[0].x)
    game.guess(" London")
    top = game.top_tokens()
    bars = game.figure.data[0]
    assert list(bars.x) == pytest.approx([p for _, p in top])
    ids = distribution(smol, FRANCE).topk(10).indices.tolist()
    labels = [html.escape(display_piece(smol.token_bytes[i]), quote=False) for i in ids]
    assert list(game.figure.layout.yaxis.ticktext) == labels
    assert labels[0] == "␣Paris"
    colours = list(bars.marker.color)
    london = [text for text, _ in top].index(" London")
    assert colours[london] != colours[0] and len(set(colours)) == 2  # only the guess is orange
    assert list(game.figure.data[1].x) == []  # in the top list: no separate bar


def test_an_empty_guess_gets_a_friendly_message(game):
    assert game.guess("") is None
    assert "Type your guess" in game.message
    assert set(game.figure.layout.yaxis.ticktext) == {"?"}


def test_an_emoji_guess_is_scored_by_its_first_byte_level_token(game):
    result = game.guess("🍓")
    assert result["n_tokens"] > 1 and result["rank"] >= 1
    assert 0 < result["probability"] < 1 and math.isfinite(result["loss_nats"])
    assert "first token" in game.message and "raw bytes" in game.message
    assert game.guess("北京")["rank"] >= 1  # CJK works too


def test_a_guess_of_several_tokens_scores_its_first_token_and_says_so(game, smol):
    result = game.guess(" Pneumonia")
    ids = smol.encode(" Pneumonia")
    assert len(ids) > 1 and result["token_ids"] == ids and result["n_tokens"] == len(ids)
    assert result["first_token_text"] == smol.token_label(ids[0])
    probabilities = distribution(smol, FRANCE)
    assert result["probability"] == pytest.approx(float(probabilities[ids[0]]), rel=1e-6)
    assert f"is {len(ids)} tokens" in game.message and "only its first token" in game.message


def test_a_very_long_guess_is_truncated_with_a_notice(game):
    result = game.guess(" Paris" * 100)
    assert result["truncated"] and result["rank"] == 1
    assert f"only its first {MAX_GUESS_CHARS} are used" in game.message


def test_next_prompt_cycles_and_hides_the_answer(game):
    game.guess(" Paris")
    assert game.next_prompt() == DEFAULT_PROMPTS[1]
    assert game.message == "" and game.guess_box.value == ""
    assert set(game.figure.layout.yaxis.ticktext) == {"?"}
    for _ in range(len(DEFAULT_PROMPTS) - 1):
        game.next_prompt()
    assert game.prompt == DEFAULT_PROMPTS[0]
    assert "prompt 1 of 5" in game.prompt_view.value


def test_any_prompt_can_be_set_and_an_empty_one_is_refused(game):
    game.prompt = "The opposite of hot is"  # one of the list: the counter follows
    assert "prompt 4 of 5" in game.prompt_view.value
    game.prompt = "Water freezes at zero degrees"
    assert "your own prompt" in game.prompt_view.value and "Water freezes" in game.prompt_view.value
    assert len(game.top_tokens()) == 10
    for bad in ["", "   ", None]:
        with pytest.raises(ValueError, match="non-empty"):
            game.prompt = bad
    assert game.prompt == "Water freezes at zero degrees"


def test_the_buttons_drive_the_same_code(game):
    game.guess_box.value = "Paris"
    game.reveal_button.click()
    assert "top choice" in game.message and game.figure.layout.yaxis.ticktext[0] == "␣Paris"
    game.next_button.click()
    assert game.prompt == DEFAULT_PROMPTS[1]


def test_bad_arguments_are_refused(smol):
    with pytest.raises(ValueError, match="at least one prompt"):
        NextTokenGame(smol, prompts=[])
    with pytest.raises(ValueError, match="top"):
        NextTokenGame(smol, top=0)
    with pytest.raises(ValueError, match="non-empty"):
        NextTokenGame(smol, prompts=["ok", ""])
