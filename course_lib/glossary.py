"""The course's glossary: every term a notebook uses, defined once in plain words.

    from course_lib.glossary import glossary
    glossary("RoPE")      # one entry, shown by the notebook cell
    glossary()            # all of them

`python -m autograder generate` writes GLOSSARY.md at the repository's root from TERMS, and a test
(tests/test_glossary.py) fails where a notebook uses a term before it defines it (in bold) or links
its entry here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    name: str
    meaning: str
    pattern: str  # how the term is spotted in a notebook's text (a regular expression)

    @property
    def anchor(self) -> str:
        """The entry's anchor in GLOSSARY.md, as GitHub and JupyterLab make it from the heading."""
        return re.sub(r"[^a-z0-9 -]", "", self.name.lower()).replace(" ", "-")


TERMS = (
    Term("AdamW", "The optimizer most language models are trained with: a gradient step whose size is "
         "adapted per parameter from running averages of its recent gradients, plus weight decay (a small "
         "pull of every weight toward 0).", r"\bAdamW\b"),
    Term("attention", "The step in which each token's vector takes in information from earlier tokens: it "
         "scores every earlier token for relevance, turns the scores into weights with a softmax, and adds "
         "up those tokens' values with the weights.", r"\battention\b"),
    Term("broadcasting", "PyTorch's rule for combining tensors of different shapes: a dimension of size 1 "
         "is stretched to match the other tensor, so a (2, 1) column subtracted from a (2, 5) grid takes "
         "each row's own number from that row.", r"\bbroadcast(s|ing)?\b"),
    Term("chat template", "The fixed text layout a chat model was fine-tuned on: markers for who speaks "
         "(system, user, assistant) around each message. A model asked outside it answers worse.",
         r"\bchat template\b"),
    Term("embedding", "The vector of numbers a token becomes at the model's first layer: one row of a "
         "learned table. Tokens used alike end up with similar vectors.", r"\bembeddings?\b"),
    Term("FLOP", "One floating-point operation: an addition or a multiplication of two decimal numbers. "
         "FLOPs (plural) counts them: multiplying an m×k matrix by a k×n one takes about 2·m·k·n.",
         r"\bFLOPs?\b(?!/)"),
    Term("FLOP/s", "FLOPs per second: how fast a chip computes. A laptop CPU does tens to hundreds of "
         "billions; a data-centre GPU about a thousand trillion (10¹⁵).", r"FLOP/s"),
    Term("GGUF", "A single-file format for model weights, from the llama.cpp project, that can store "
         "them compressed (for example 4 bits a weight); the course reads SmolLM2 from one.", r"\bGGUF\b"),
    Term("gradient", "For each parameter, how much the loss would change if that parameter were nudged up "
         "a little. Training moves every parameter a small step against its gradient, which lowers the "
         "loss; backpropagation (`loss.backward()`) computes all gradients at once.", r"\bgradients?\b"),
    Term("grouped-query attention", "Attention in which several query heads share one key head and one "
         "value head (SmolLM2: 9 query heads, 3 key-value heads), so the cache of keys and values that "
         "generation keeps is several times smaller.", r"grouped[- ]query|\bGQA\b"),
    Term("Jinja", "A small template language from the Python world; a chat template is written in it and "
         "turns a list of messages into the one string the model reads.", r"\bJinja\b"),
    Term("k3 estimator", "A way to estimate the KL divergence from samples of the policy: for each token, "
         "r - 1 - log r with r the reference's probability over the policy's. It is never negative and "
         "its average is the KL.", r"\bk3\b"),
    Term("KL divergence", "A measure of how far one probability distribution is from another: 0 when "
         "they are the same, larger the more the first puts probability where the second does not. In "
         "RL it keeps the trained model close to where it started (the leash).", r"\bKL\b"),
    Term("learning rate", "The size of each training step: how far the parameters move against their "
         "gradients per step. Too small and training crawls; too large and the loss jumps or explodes.",
         r"\blearning[- ]rates?\b"),
    Term("logit", "A raw score the model gives one possible next token, any real number; a softmax turns "
         "all of them into probabilities.", r"\blogits?\b"),
    Term("loss", "One number that says how wrong a model is on some data; training lowers it. For a "
         "language model, the average of -log(probability it gave the right next token).", r"\bloss\b"),
    Term("parameter", "One of the learned numbers inside a model (a weight). SmolLM2 has 135 million; "
         "training adjusts all of them.", r"\bparameters?\b"),
    Term("RoPE", "Rotary position embedding: the model learns where tokens are by rotating each query "
         "and key vector by an angle that grows with the token's position, so attention scores depend "
         "on how far apart two tokens are.", r"\bRoPE\b"),
    Term("softmax", "The function that turns scores into probabilities: exponentiate each score, then "
         "divide by the total. Higher scores get more of the probability; all of it sums to 1.",
         r"\bsoftmax\b"),
    Term("SwiGLU", "The feed-forward layer of Llama-style models: two projections of the vector, one "
         "passed through a smooth gate (SiLU) and multiplied by the other, then projected back.",
         r"\bSwiGLU\b"),
    Term("temperature", "The dial of sampling: the logits are divided by it before the softmax. Below 1 "
         "the top token takes more of the probability; above 1 the choice gets more random.",
         r"\btemperatures?\b"),
    Term("tensor", "PyTorch's grid of numbers of one type, with a shape: (49152,) is a row of 49,152 "
         "numbers, (2, 49152) two such rows.", r"\btensors?\b"),
    Term("token", "A piece of text from the tokenizer's fixed vocabulary (a word, part of a word, a "
         "character or a byte), and the number that stands for it. Models read and write tokens.",
         r"\btokens?\b"),
    Term("warm-up", "The first steps of training, during which the learning rate climbs from near 0 to "
         "its full value, so the first large, noisy gradients do not wreck the fresh model.",
         r"\bwarm-?up (steps?|of the learning rate)\b|\blearning[- ]rate warm-?up\b"),
)

BY_NAME = {term.name.lower(): term for term in TERMS}


def markdown() -> str:
    """GLOSSARY.md: every term, alphabetically, under a heading its links point to."""
    entries = "\n\n".join(f"### {t.name}\n\n{t.meaning}" for t in sorted(TERMS, key=lambda t: t.name.lower()))
    return ("# Glossary\n\nEvery term the notebooks use, in plain words. Each notebook defines a term where "
            "it first uses it, or links here. In a notebook, `from course_lib.glossary import glossary; "
            "glossary(\"RoPE\")` shows one entry. (Written by `make notebooks` from "
            "`course_lib/glossary.py`.)\n\n" + entries + "\n")


def glossary(name: str | None = None):
    """One term's entry (or all of them), which a notebook cell shows as formatted text."""
    from IPython.display import Markdown
    if name is None:
        return Markdown(markdown())
    term = BY_NAME.get(name.lower())
    if term is None:
        raise KeyError(f"the glossary has no {name!r}; it has: {', '.join(t.name for t in TERMS)}")
    return Markdown(f"**{term.name}**: {term.meaning}")
