"""The papers the course stands on: each declared once, with the notebooks that cite it.

    from course_lib.sources import markdown
    markdown("C_pretraining")   # that notebook's closing "## Sources" cell

`python -m autograder generate` writes each notebook's last cell (id "sources") from here, and a
test (tests/test_sources.py) fails where that cell is out of date, or where a notebook names an
arXiv id its list does not hold.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

CELL_ID = "sources"  # the id of each notebook's closing cell, written by `python -m autograder generate`

ONRAMP, A, B, C, D, E = ("00_onramp", "A_lifecycle", "B_why_transformers_won", "C_pretraining",
                         "D_post_training", "E_reinforcement_learning")
ALL = (ONRAMP, A, B, C, D, E)
ARXIV = re.compile(r"^arXiv:(\d{4}\.\d{4,5})$")


@dataclass(frozen=True)
class Source:
    key: str
    authors: str    # as the primer writes them: "A, B & C", or "A et al." beyond three
    title: str
    year: int
    where: str      # "arXiv:NNNN.NNNNN", or a journal reference or a publisher
    use: str        # what the course takes from it, in one line
    notebooks: tuple[str, ...]
    link: str = ""  # for a `where` that is not an arXiv id: a DOI or a web address
    updated: int | None = None  # the year of a revised version that the notebooks quote

    @property
    def arxiv(self) -> str | None:
        match = ARXIV.match(self.where)
        return match.group(1) if match else None

    @property
    def url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv}" if self.arxiv else self.link

    def entry(self) -> str:
        """One line of a notebook's list: authors, *title* (year), where, then what it is used for."""
        year = f"{self.year}, updated {self.updated}" if self.updated else f"{self.year}"
        where = f"[{self.where}]({self.url})" if self.url else self.where
        return f"{self.authors}, *{self.title}* ({year}), {where}. {self.use}"


SOURCES = (
    Source("smollm2", "Allal et al.", "SmolLM2: When Smol Goes Big — Data-Centric Training of a Small "
           "Language Model", 2025, "arXiv:2502.02737",
           "The real model the notebooks run: its tokenizer, its weights and its chat format.",
           ALL),
    Source("bpe", "Sennrich, Haddow & Birch", "Neural Machine Translation of Rare Words with Subword Units",
           2015, "arXiv:1508.07909",
           "Byte-pair encoding: a vocabulary of word pieces grown by merging the commonest neighbouring "
           "pair, over and over.", (ONRAMP, A)),
    Source("gpt2", "Radford et al.", "Language Models are Unsupervised Multitask Learners", 2019,
           "OpenAI (the GPT-2 report)",
           "Byte-level BPE: start from the 256 byte values, so that any text at all, emoji and unseen "
           "scripts included, can be written in the vocabulary.", (A,),
           link="https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf"),
    Source("petrov", "Petrov et al.", "Language Model Tokenizers Introduce Unfairness Between Languages",
           2023, "arXiv:2305.15425",
           "The same sentence takes several times more tokens in some languages than in English.", (A,)),
    Source("word2vec", "Mikolov et al.", "Efficient Estimation of Word Representations in Vector Space",
           2013, "arXiv:1301.3781",
           "word2vec: one fixed vector per word, whose differences carry meaning (king − man + woman "
           "lands near queen).", (A,)),
    Source("transformer", "Vaswani et al.", "Attention Is All You Need", 2017, "arXiv:1706.03762",
           "The Transformer: every position looks at all the earlier ones at once, instead of reading "
           "one step at a time.", (ONRAMP, A, B)),
    Source("gpt3", "Brown et al.", "Language Models are Few-Shot Learners", 2020, "arXiv:2005.14165",
           "GPT-3 as a reference point: 12,288 numbers per token in its embeddings, 300 billion "
           "training tokens.", (A, C)),
    Source("epoch_cost", "Cottier et al. (Epoch AI)", "The Rising Costs of Training Frontier AI Models", 2024,
           "arXiv:2405.21015",
           "Estimates of what one frontier training run costs, and how fast that grows; they move "
           "from year to year.", (A,)),
    Source("llama3", "Llama Team (AI @ Meta)", "The Llama 3 Herd of Models", 2024, "arXiv:2407.21783",
           "The published GPU-hours and training set of Llama 3.1 405B, against which the course's "
           "cost arithmetic is checked.", (A, C)),
    Source("chinchilla", "Hoffmann et al.", "Training Compute-Optimal Large Language Models", 2022,
           "arXiv:2203.15556",
           "Chinchilla: for a fixed compute budget, grow the model and its data together; the fitted "
           "law and its constants behind the U-curve.", (A, C)),
    Source("instructgpt", "Ouyang et al.", "Training Language Models to Follow Instructions with Human "
           "Feedback", 2022, "arXiv:2203.02155",
           "InstructGPT, the RLHF recipe: written demonstrations, a reward model fitted to people's "
           "rankings, then reinforcement learning against it.", (A, D, E)),
    Source("lstm", "Hochreiter & Schmidhuber", "Long Short-Term Memory", 1997,
           "Neural Computation 9(8):1735–1780",
           "The LSTM, the gated recurrent network that led sequence modelling before the Transformer.",
           (B,), link="https://doi.org/10.1162/neco.1997.9.8.1735"),
    Source("kaplan", "Kaplan et al.", "Scaling Laws for Neural Language Models", 2020, "arXiv:2001.08361",
           "The earlier scaling laws: a model's error on text falls smoothly, as a power law, as size, "
           "data and compute grow; their advice to put most of a bigger budget into size is what "
           "Chinchilla revised.", (B, C)),
    Source("flashattention", "Dao et al.", "FlashAttention: Fast and Memory-Efficient Exact Attention with "
           "IO-Awareness", 2022, "arXiv:2205.14135",
           "The same result as the plain computation, worked in tiles that stay in the chip's fast "
           "memory, so the N×N table is never stored whole.", (B,)),
    Source("efficient_transformers", "Tay et al.", "Efficient Transformers: A Survey", 2020,
           "arXiv:2009.06732",
           "A map of the many attempts to make the N×N square cheaper: sparse, windowed, "
           "low-rank and linear variants.", (B,)),
    Source("mamba", "Gu & Dao", "Mamba: Linear-Time Sequence Modeling with Selective State Spaces", 2023,
           "arXiv:2312.00752",
           "Mamba: a state-space model whose cost grows linearly with the length, one of the "
           "challengers to the square.", (B,)),
    Source("fineweb", "Penedo et al.", "The FineWeb Datasets: Decanting the Web for the Finest Text Data "
           "at Scale", 2024, "arXiv:2406.17557",
           "Evidence at web scale that careful filtering and deduplication of the training text "
           "give measurably better models.", (C,)),
    Source("dedup", "Lee et al.", "Deduplicating Training Data Makes Language Models Better", 2022,
           "arXiv:2107.06499",
           "Near-duplicate removal: models trained on deduplicated text memorise less of it and spend "
           "less compute on repeats.", (C,)),
    Source("chinchilla_refit", "Besiroglu, Erdil, Barnett & You", "Chinchilla Scaling: A replication attempt",
           2024, "arXiv:2404.10102",
           "Epoch AI's refit of the Chinchilla data: the second set of constants that the U-curve "
           "offers.", (C,)),
    Source("forgetting", "French", "Catastrophic Forgetting in Connectionist Networks", 1999,
           "Trends in Cognitive Sciences 3(4):128–135",
           "A network trained further on something new loses what it knew: the risk of continued "
           "pre-training, and a cousin (not a twin) of the drift that RL is leashed against.",
           (C, E), link="https://doi.org/10.1016/S1364-6613%2899%2901294-2"),
    Source("data_wall", "Villalobos et al. (Epoch AI)", "Will We Run Out of Data? Limits of LLM Scaling "
           "Based on Human-Generated Data", 2022, "arXiv:2211.04325",
           "The data wall: an estimate of how much good public human-written text exists, and when "
           "training sets may reach it.", (C,), updated=2024),
    Source("llama2", "Touvron et al.", "Llama 2: Open Foundation and Fine-Tuned Chat Models", 2023,
           "arXiv:2307.09288",
           "Llama 2's training set, one point on the plot of ever larger training sets.", (C,)),
    Source("collapse", "Shumailov et al.", "The Curse of Recursion: Training on Generated Data Makes "
           "Models Forget", 2023, "arXiv:2305.17493",
           "Model collapse: trained on models' own writing, generation after generation, models lose "
           "the rare parts of the original data first.", (C,)),
    Source("bradley_terry", "Bradley & Terry", "Rank Analysis of Incomplete Block Designs: I. The Method of "
           "Paired Comparisons", 1952, "Biometrika 39(3/4):324–345",
           "The model of paired comparisons behind the reward model's objective and DPO's: the chance "
           "that one answer wins is a sigmoid of the difference of their scores.", (D,)),
    Source("dpo", "Rafailov et al.", "Direct Preference Optimization: Your Language Model Is Secretly a "
           "Reward Model", 2023, "arXiv:2305.18290",
           "DPO: learning from preference pairs directly, with a frozen reference in place of a "
           "separate reward model and an RL loop.", (D,)),
    Source("constitutional_ai", "Bai et al.", "Constitutional AI: Harmlessness from AI Feedback", 2022,
           "arXiv:2212.08073",
           "A model critiques and revises its own answers against written principles, standing in for "
           "many human labels.", (D,)),
    Source("overoptimization", "Gao, Schulman & Hilton", "Scaling Laws for Reward Model Overoptimization",
           2022, "arXiv:2210.10760",
           "Optimising against a learned reward: as the policy moves away from where it started, the "
           "true quality first rises, then falls while the learned score goes on climbing.", (D, E)),
    Source("summarize_feedback", "Stiennon et al.", "Learning to Summarize from Human Feedback", 2020,
           "arXiv:2009.01325",
           "A policy trained against a reward model fitted to people's comparisons, and best-of-N "
           "sampling against it, whose drift from the policy is at most log N - (N - 1)/N nats.", (E,)),
    Source("trpo", "Schulman et al.", "Trust Region Policy Optimization", 2015, "arXiv:1502.05477",
           "TRPO: keep each policy update inside a trust region around the old policy, the rule "
           "that PPO's clip later made simple.", (E,)),
    Source("ppo", "Schulman et al.", "Proximal Policy Optimization Algorithms", 2017, "arXiv:1707.06347",
           "PPO: the clipped objective that stops rewarding a change once the new-to-old probability "
           "ratio leaves a small band.", (D, E)),
    Source("grpo", "Shao et al.", "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open "
           "Language Models", 2024, "arXiv:2402.03300",
           "GRPO: the average reward of a group of attempts at one problem replaces the critic as the "
           "baseline.", (E,)),
)

NOTEBOOKS = tuple(name for name in ALL if any(name in s.notebooks for s in SOURCES))


def cited(notebook: str) -> tuple[Source, ...]:
    """The sources a notebook cites, A to Z by author, then by year."""
    return tuple(sorted((s for s in SOURCES if notebook in s.notebooks),
                        key=lambda s: (s.authors.lower(), s.year, s.title)))


def markdown(notebook: str) -> str:
    """The text of the notebook's closing "## Sources" cell: a numbered list."""
    sources = cited(notebook)
    if not sources:
        raise KeyError(f"no source names the notebook {notebook!r}; these have sources: {', '.join(NOTEBOOKS)}")
    entries = "\n".join(f"{number}. {source.entry()}" for number, source in enumerate(sources, 1))
    return ("## Sources\n\nThe papers this notebook draws on, A to Z by first author; each entry ends with "
            "what the course takes from it. (Written by `make notebooks` from `course_lib/sources.py`.)"
            "\n\n" + entries)
