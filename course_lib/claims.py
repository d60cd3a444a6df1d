"""The course's answers to the open "Evaluate the claim" parts (on-ramp, A, B, C), shown once the
learner has written one. They have no single right wording, so they are not graded:

    reveal_model_answer("A_lifecycle", my_answer)

D and E end with claims that have right answers; those are graded exercises (course_lib/exercises).
"""
from __future__ import annotations

MIN_WORDS = 15  # an answer of this many words or more is an attempt; then the course's answer shows

MODEL_ANSWERS = {
    "00_onramp": """\
1. SmolLM2 receives token ids: " strawberry" is one token, one number, and nothing in that number
   spells s-t-r-a-w-b-e-r-r-y. Counting its r's asks about something the model was never given. It
   is a failure of the input, and says little about reasoning in general.
2. From text that spells words out (spelling lists, puzzles, "s-t-r-a-w-b-e-r-r-y" written with
   dashes), pre-training can tie a token to its letters. And at answer time the letters can be put
   in as separate tokens, as the spelled-out prompt above did; a model can also be trained to spell a
   word out before counting, or to call a tool (`"strawberry".count("r")`).
3. How it was sampled (the temperature), how many tries were made and how many were right, the exact
   prompt and the exact model. One screenshot is one draw from a distribution.""",
    "A_lifecycle": """\
1. Read your own counts from A1: for SmolLM2, English is the cheapest, and languages far from its
   training mix take several times as many tokens for the same sentence. Each extra token costs
   money and time to generate, and fills the context window sooner, so the same conversation is
   dearer, slower and shorter in those languages. "Treats all languages equally" is not what the
   tokenizer does.
2. No: it receives token ids, and each id becomes a row of the embedding table. Before the first
   layer the "meaning" is that learned vector, the same in every sentence; after a few layers the
   vector depends on the context: the uses of " bank" with the same meaning (river or money) ended
   up closer to each other than to the uses with the other meaning.
3. The knowledge and the assistant behaviour sit in the same weights. The chat format is what calls
   up the behaviour that fine-tuning taught; without it, the same model continues text.
4. Tokens per sentence in each language (cost, speed, context), quality measured per language on
   held-out tasks, and how much of each language the training data held.""",
    "B_why_transformers_won": """\
1. Read your B3 figures: the one-at-a-time loop reached a small share of your chip's peak, the
   all-at-once product a much larger one. An architecture that must process tokens in order leaves
   most of the chip idle while it trains, so it needs more time or more chips for the same data.
2. Generating a reply ran far below the bound because each new token is a small product (one row
   against the weights) whose cost is moving the weights from memory, plus per-step overheads, not
   arithmetic. Ask for measured tokens per second and a price per million tokens at serving batch
   sizes, and the memory each conversation needs.
3. The equations decide what is computed, not what it costs: the same maths with less memory
   traffic was faster and smaller. An architecture is judged by how it runs on real chips.
4. A design that scales linearly usually keeps a fixed-size summary of the past, as the LSTM does,
   and so gives up exact access to every earlier token. Test it as B2 did: recall a fact from
   further and further back, with more and more facts to hold.""",
    "C_pretraining": """\
1. At 10^24 FLOPs, Hoffmann et al.'s fit asks for about 41 billion parameters and 4 trillion tokens,
   the Epoch AI refit about 96 billion and 1.7 trillion: tens of billions of parameters, not 500
   billion. At Chinchilla's rough 20 tokens a parameter, a 500-billion-parameter model needs about
   10 trillion tokens (6ND: about 3 × 10^25 FLOPs), of the order of all the good text C6 counts.
2. In the stored runs the same compute bought a worse model on the polluted crawl than on the clean
   text, on all three seeds (their ranges do not overlap). Ask what the 500B model
   read: how it was deduplicated and filtered, and what mix of sources.
3. No: at each budget of the stored sweep the biggest TinyGPT was the worst, and the best was a
   smaller one, whose size grew as the budget grew. Too big for its budget means too
   few tokens per parameter.
4. Its loss (or a benchmark) on general text before and after, beside the specialist gain: C5's run
   showed code loss falling while prose loss rose.""",
}


def reveal_model_answer(notebook: str, answer) -> None:
    """The course's answer, once `answer` (the learner's text) is an attempt; never raises."""
    from IPython.display import Markdown, display
    if notebook not in MODEL_ANSWERS:
        raise KeyError(f"no model answer for {notebook!r}; there are {sorted(MODEL_ANSWERS)}")
    words = len(answer.split()) if isinstance(answer, str) else 0
    if words < MIN_WORDS:
        print(f"✏️  Write your answer in the cell above first ({MIN_WORDS} words or more: a sentence or two "
              "per question), then run this cell again: the course's answer appears here.")
        return
    display(Markdown(f"**The course's answer** (compare it with yours; yours may say more):\n\n"
                     f"{MODEL_ANSWERS[notebook]}"))
