"""Model collapse in miniature (notebook C6): each generation of TinyGPT learns only from the text
the previous generation wrote.

Generation 0 trains on real prose. It then writes a corpus by sampling as chat models usually do
(temperature below 1 and top-k, which favour likely tokens), and generation 1 is trained from
scratch on that corpus alone, and so on. Each generation is measured the same two ways: the
diversity of what it writes (the share of distinct n-grams) and its loss on real prose it never saw.
The worry (Shumailov et al. 2023, "The Curse of Recursion: Training on Generated Data Makes Models
Forget") is that rare things vanish first: every round of sampling under-represents the tails.
"""
from __future__ import annotations

import dataclasses
import math

import torch
from tqdm.auto import tqdm

from course_lib.data.pretraining import PretrainingCorpus
from course_lib.models.tinygpt import TinyGPT, TinyGPTConfig
from course_lib.train.pretrain import Pretrainer, TrainConfig, validation_loss


def distinct_ngrams(sequences: list[list[int]], n: int = 2) -> float:
    """Distinct n-grams over all n-grams in the sequences: 1.0 when nothing repeats, small when the
    same phrases come back again and again."""
    grams = [tuple(s[i:i + n]) for s in sequences for i in range(len(s) - n + 1)]
    return len(set(grams)) / len(grams) if grams else math.nan


@torch.no_grad()
def sample_sequences(model: TinyGPT, n_sequences: int, length: int, start_id: int, temperature: float = 0.8,
                     top_k: int | None = 50, generator: torch.Generator | None = None) -> list[list[int]]:
    """n_sequences texts of `length` new tokens each, all started from `start_id`, sampled in one batch."""
    model.eval()
    ids = torch.full((n_sequences, 1), start_id, dtype=torch.long, device=model.device)
    for _ in range(length):
        logits = model(ids[:, -model.cfg.context:])[:, -1].float() / temperature
        if top_k is not None:
            kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = logits.softmax(-1).cpu()
        ids = torch.cat([ids, torch.multinomial(probs, 1, generator=generator).to(ids.device)], dim=1)
    return ids[:, 1:].tolist()


def self_training(corpus: PretrainingCorpus, model_cfg: TinyGPTConfig, train_cfg: TrainConfig,
                  generations: int, steps: int, n_sequences: int, length: int, temperature: float = 0.8,
                  top_k: int | None = 50, seed: int = 0, device=None, progress: bool = True) -> list[dict]:
    """Train generation 0 on real prose, then each next generation from scratch on the previous one's
    samples, `steps` steps each. Returns one dict per generation: distinct 2- and 3-grams of its
    samples, its validation loss on real prose, and a few lines of what it wrote."""
    real_val = corpus.val["prose"]
    train_stream = corpus.train["prose"]
    generator = torch.Generator().manual_seed(seed)
    results = []
    for generation in tqdm(range(generations + 1), desc="generations", disable=not progress):
        torch.manual_seed(seed + generation)
        model = TinyGPT(model_cfg)
        diet = dataclasses.replace(corpus, train={"prose": train_stream})
        cfg = dataclasses.replace(train_cfg, mixture=(("prose", 1.0),), eval_every=steps + 1)
        trainer = Pretrainer(model, diet, cfg, seed=seed + generation, device=device)
        trainer.run(steps=steps, live=False, progress=False)
        samples = sample_sequences(model, n_sequences, length, corpus.eot_id, temperature, top_k, generator)
        results.append({
            "generation": generation,
            "trained_on": "real prose" if generation == 0 else f"generation {generation - 1}'s samples",
            "distinct_2grams": distinct_ngrams(samples, 2),
            "distinct_3grams": distinct_ngrams(samples, 3),
            "real_prose_loss": validation_loss(model, real_val, windows=64),
            "example": corpus.decode(samples[0][:40]),
        })
        eot = corpus.eot_id
        # The next generation's whole world: these samples, joined by end-of-text like real documents.
        train_stream = torch.tensor([t for s in samples for t in s + [eot]], dtype=torch.long)
    return results
