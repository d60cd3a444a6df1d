"""Post-training TinyGPT (notebook D): supervised fine-tuning, a reward model, and DPO.

The three runs share the course's loop (`course_lib.train.loop.train_steps`): draw a batch of
examples, compute a loss, nudge the weights with AdamW, and now and then measure something on
held-out data; a progress bar and a live plot show it happening. What changes between them is the loss, and each loss is one the learner
writes in the notebook:
- SFT: `sft_loss` on question-and-answer conversations, scored on the answer tokens only;
- the reward model: TinyGPT's features plus a scalar head, trained with `bradley_terry_loss` so
  that the preferred answer of each pair scores higher;
- DPO (Rafailov et al. 2023): `dpo_loss` on the same pairs, using `sequence_logprob` of the
  policy and of a frozen copy of it (the reference).

Conversations are token ids: the prompt in TinyGPT's chat format, then the answer and an
end-of-text token. A batch pads them on the right; `loss_mask` is True on the positions whose next
token belongs to the answer, so the prompt and the padding are never scored.
"""
from __future__ import annotations

import copy
import html
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from tokenizers import Tokenizer

from course_lib.data.instructions import FLAWS, USER, ASSISTANT, Example, PreferencePair
from course_lib.data.pretraining import EOT
from course_lib.device import get_device
from course_lib.paths import cache_dir
from course_lib.models.tinygpt import TinyGPT, pad_right
from course_lib.exercises.post_training import bradley_terry_loss, dpo_loss, sequence_logprob, sft_loss
from course_lib.train.live import LiveLines
from course_lib.train.loop import RunLog, random_items, train_steps

COURSE_BASE = Path(__file__).resolve().parent.parent / "assets" / "tinygpt_base.pt"


def learner_base_path() -> Path:
    """Where notebook C saves the learner's pre-trained TinyGPT."""
    return cache_dir() / "tinygpt" / "C_base.pt"


def load_base_model(device: torch.device | str | None = None,
                    prefer_learners: bool = True) -> tuple[TinyGPT, Tokenizer, str]:
    """(model, tokenizer, where it came from): the learner's base model from notebook C if it is
    saved and `prefer_learners`, else the course's (made by course_lib/experiments/base_model.py)."""
    device = torch.device(device) if device is not None else get_device()
    path = learner_base_path()
    if not (prefer_learners and path.is_file()):
        path = COURSE_BASE
        if not path.is_file():
            raise FileNotFoundError(f"the course's base model is missing ({path}); reinstall the course "
                                    f"or run `python -m course_lib.experiments base_model`")
    model = TinyGPT.load(path, device)
    tokenizer = TinyGPT.load_tokenizer(path)
    if tokenizer is None:  # saved without its tokenizer: it is this Python's corpus tokenizer
        from course_lib.data.pretraining import load_corpus

        tokenizer = load_corpus().tokenizer
    if tokenizer.get_vocab_size() != model.cfg.vocab_size:
        raise ValueError(f"{path}: the tokenizer has {tokenizer.get_vocab_size()} tokens but the model "
                         f"{model.cfg.vocab_size}; delete the file and save it again from notebook C")
    if path == COURSE_BASE:
        record = json.loads(path.with_suffix(".json").read_text())
        source = (f"the course's base TinyGPT ({record['steps']:,} steps of notebook C's pre-training on "
                  f"{record['device']}, validation loss prose {record['val_loss']['prose']:.2f} and code "
                  f"{record['val_loss']['code']:.2f})")
    else:
        source = f"your base TinyGPT from notebook C ({path})"
    return model, tokenizer, source


# --- conversations as token ids ----------------------------------------------------------------
def encode_conversation(tokenizer: Tokenizer, prompt: str, response: str, context: int) -> tuple[list[int], int]:
    """(ids, prompt length): the prompt's ids, then the response's and the end-of-text token, cut to
    `context` + 1 tokens (inputs and targets of `context` positions)."""
    prompt_ids = tokenizer.encode(prompt).ids
    ids = prompt_ids + tokenizer.encode(response).ids + [tokenizer.token_to_id(EOT)]
    if len(prompt_ids) >= context:
        raise ValueError(f"the prompt alone has {len(prompt_ids)} tokens; the model reads at most {context}")
    return ids[:context + 1], len(prompt_ids)


def collate(encoded: Sequence[tuple[list[int], int]], pad_id: int,
            device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(inputs, labels, loss_mask), each (batch, time), padded on the right.

    labels[b, t] is the token after inputs[b, t]; loss_mask[b, t] is True where that token belongs
    to the response (its index in the conversation is at least the prompt's length).
    """
    time_steps = max(len(ids) for ids, _ in encoded) - 1
    inputs = torch.full((len(encoded), time_steps), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), time_steps), pad_id, dtype=torch.long)
    mask = torch.zeros((len(encoded), time_steps), dtype=torch.bool)
    for b, (ids, prompt_len) in enumerate(encoded):
        n = len(ids) - 1
        inputs[b, :n] = torch.tensor(ids[:-1])
        labels[b, :n] = torch.tensor(ids[1:])
        mask[b, prompt_len - 1:n] = True
    return inputs.to(device), labels.to(device), mask.to(device)


class Conversations:
    """Examples (or one side of preference pairs) encoded once, served as padded batches."""

    def __init__(self, tokenizer: Tokenizer, prompts: Sequence[str], responses: Sequence[str], context: int):
        if not prompts or len(prompts) != len(responses):
            raise ValueError(f"need as many responses as prompts, at least one: got {len(prompts)} and {len(responses)}")
        self.encoded = [encode_conversation(tokenizer, p, r, context) for p, r in zip(prompts, responses)]
        self.pad_id = tokenizer.token_to_id(EOT)
        self.context = context

    @classmethod
    def of_examples(cls, tokenizer: Tokenizer, examples: Sequence[Example], context: int) -> "Conversations":
        return cls(tokenizer, [e.prompt for e in examples], [e.response for e in examples], context)

    def __len__(self) -> int:
        return len(self.encoded)

    def batch(self, indices, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return collate([self.encoded[i] for i in indices], self.pad_id, device)

    def sequences(self, indices, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, lengths): whole conversations padded on the right, at most `context` tokens each."""
        rows = [self.encoded[i][0][:self.context] for i in indices]
        return pad_right(rows, self.pad_id, device), torch.tensor([len(r) for r in rows], device=device)

    def batches(self, batch_size: int, device):
        """Every conversation once, in order, batch by batch (for measuring)."""
        for start in range(0, len(self), batch_size):
            yield self.batch(range(start, min(start + batch_size, len(self))), device)


# --- supervised fine-tuning ---------------------------------------------------------------------
@torch.no_grad()
def response_loss(model: TinyGPT, conversations: Conversations, batch_size: int = 64) -> float:
    """Mean loss, in nats per token, on the response tokens of every conversation (SFT's measure)."""
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    for inputs, labels, mask in conversations.batches(batch_size, model.device):
        n = int(mask.sum())
        total += float(sft_loss(model(inputs), labels, mask)) * n
        tokens += n
    model.train(was_training)
    return total / tokens


def supervised_finetune(model: TinyGPT, train: Conversations, *, steps: int, held_out: Conversations | None = None,
                        loss_fn: Callable = sft_loss, lr: float = 1e-3, batch_size: int = 16, seed: int = 0,
                        eval_every: int = 25, live: bool = True, progress: bool = True) -> RunLog:
    """Fine-tune `model` in place on the conversations' responses with `loss_fn` (the learner's sft_loss)."""
    model.train()

    def step_loss(indices):
        inputs, labels, mask = train.batch(indices, model.device)
        return loss_fn(model(inputs), labels, mask), {}

    def evaluate():
        return {"held-out answer loss": response_loss(model, held_out)} if held_out is not None else {}

    plot = LiveLines({"loss": 0, "held-out answer loss": 0}, ["answer tokens only"], "Supervised fine-tuning",
                     ["loss (nats per answer token)"]) if live else None
    return train_steps(model.parameters(), step_loss, random_items(len(train), batch_size, seed), steps=steps,
                       lr=lr, evaluate=evaluate, eval_every=eval_every, plot=plot, desc="SFT", progress=progress)


# --- answering questions ------------------------------------------------------------------------
def follows_format(reply: str, ended: bool) -> bool:
    """An assistant's answer in TinyGPT's chat format: it ends (with end-of-text) within the token
    budget, says something, stays on one line, and does not start a new turn of the conversation."""
    return ended and bool(reply.strip()) and "\n" not in reply.strip() and USER not in reply and ASSISTANT not in reply


def word_overlap(reply: str, reference: str) -> float:
    """F1 of the two texts' sets of lowercase words: 1 when they use the same words, 0 when none."""
    got, want = set(re.findall(r"\w+", reply.lower())), set(re.findall(r"\w+", reference.lower()))
    common = len(got & want)
    if not common:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


@dataclass
class Answer:
    name: str
    question: str
    reference: str
    reply: str
    ended: bool

    @property
    def follows_format(self) -> bool:
        return follows_format(self.reply, self.ended)

    @property
    def overlap(self) -> float:
        return word_overlap(self.reply, self.reference)


def answer_all(model: TinyGPT, tokenizer: Tokenizer, examples: Sequence[Example],
               max_new_tokens: int = 40) -> list[Answer]:
    """The model's greedy answer to every example's question (its prompt), beside the right answer."""
    eos = tokenizer.token_to_id(EOT)
    outputs = model.generate_batch([tokenizer.encode(e.prompt).ids for e in examples], max_new_tokens, eos)
    answers = []
    for e, (ids, ended) in zip(examples, outputs):
        reply = tokenizer.decode(ids[:-1] if ended else ids, skip_special_tokens=False)
        question = e.prompt.split("\n")[1]
        answers.append(Answer(e.name, question, e.response, reply, ended))
    return answers


def answer_summary(answers: Sequence[Answer]) -> dict[str, float]:
    return {"format-following rate": sum(a.follows_format for a in answers) / len(answers),
            "word overlap with the right answer": sum(a.overlap for a in answers) / len(answers)}


def chance_overlap(examples: Sequence[Example]) -> float:
    """The mean word overlap between each right answer and the next example's: what an answer
    about some other function scores, the floor that a real answer must beat."""
    n = len(examples)
    return sum(word_overlap(examples[(i + 1) % n].response, examples[i].response) for i in range(n)) / n


def compare_answers(columns: dict[str, Sequence[Answer]], rows: int = 8):
    """An HTML table: each question, the right answer, and each model's reply, marked ✓ when it
    follows the format."""
    from IPython.display import HTML

    names = list(columns)
    first = columns[names[0]]
    head = "".join(f"<th style='text-align:left'>{html.escape(n)}</th>" for n in ["question", "right answer", *names])
    body = []
    for i in range(min(rows, len(first))):
        cells = [first[i].question, first[i].reference]
        marks = []
        for name in names:
            a = columns[name][i]
            marks.append(f"{'✓' if a.follows_format else '✗'} {html.escape(a.reply if a.reply.strip() else '(nothing)')}"
                         f"{'' if a.ended else ' …'}")
        # A reply of one long run of characters (a base model's "=====...") wraps in its column.
        wrap = "overflow-wrap:anywhere;vertical-align:top;text-align:left"  # JupyterLab right-aligns cells
        body.append("<tr>" + "".join(f"<td style='{wrap}'>{html.escape(c)}</td>" for c in cells)
                    + "".join(f"<td style='white-space:pre-wrap;{wrap}'>{m}</td>" for m in marks) + "</tr>")
    return HTML("<table style='font-size:12px;text-align:left;table-layout:fixed;width:100%'><tr>" + head + "</tr>"
                + "".join(body) + "</table>"
                "<p style='font-size:12px'>✓ follows the format (one line, then end-of-text); "
                "… the answer ran out of tokens before ending.</p>")


# --- the reward model ---------------------------------------------------------------------------
class RewardModel(nn.Module):
    """A copy of a TinyGPT with a scalar head: the reward of a conversation is the head applied to
    the final vector at its last token (the end-of-text after the answer), which has read it all."""

    def __init__(self, backbone: TinyGPT):
        super().__init__()
        self.backbone = copy.deepcopy(backbone)
        self.head = nn.Linear(backbone.cfg.dim, 1)
        nn.init.zeros_(self.head.weight)  # every answer starts at reward 0: no preference yet
        nn.init.zeros_(self.head.bias)

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Rewards (batch,) of padded conversations `ids` (batch, time) of `lengths` tokens each."""
        features = self.backbone.features(ids)
        return self.head(features[torch.arange(len(ids), device=ids.device), lengths - 1]).squeeze(-1)


class PairSet:
    """Preference pairs as two aligned sets of conversations: chosen[i] and rejected[i]."""

    def __init__(self, tokenizer: Tokenizer, pairs: Sequence[PreferencePair], context: int):
        self.pairs = list(pairs)
        self.chosen = Conversations(tokenizer, [p.prompt for p in pairs], [p.chosen for p in pairs], context)
        self.rejected = Conversations(tokenizer, [p.prompt for p in pairs], [p.rejected for p in pairs], context)

    def __len__(self) -> int:
        return len(self.pairs)


@torch.no_grad()
def pairwise_accuracy(reward_model: RewardModel, pairs: PairSet, batch_size: int = 64) -> dict[str, float]:
    """The share of pairs whose chosen answer gets the higher reward: over all pairs and per flaw."""
    was_training = reward_model.training
    reward_model.eval()
    wins = []
    for start in range(0, len(pairs), batch_size):
        indices = range(start, min(start + batch_size, len(pairs)))
        device = reward_model.device
        wins += pair_wins(reward_model(*pairs.chosen.sequences(indices, device)),
                      reward_model(*pairs.rejected.sequences(indices, device)))
    reward_model.train(was_training)
    return _accuracy_by_flaw(wins, pairs)


def pair_wins(chosen: torch.Tensor, rejected: torch.Tensor) -> list[float]:
    """1 where the chosen answer scores higher, 0 where lower, and a coin flip's 1/2 on a tie."""
    return ((chosen > rejected).float() + 0.5 * (chosen == rejected).float()).tolist()


def _accuracy_by_flaw(wins: list[float], pairs: PairSet) -> dict[str, float]:
    result = {"all": sum(wins) / len(wins)}
    for flaw in FLAWS:
        picked = [w for w, p in zip(wins, pairs.pairs) if p.flaw == flaw]
        result[flaw] = sum(picked) / len(picked) if picked else math.nan
    return result


def train_reward_model(backbone: TinyGPT, pairs: PairSet, *, steps: int, held_out: PairSet | None = None,
                       loss_fn: Callable = bradley_terry_loss, lr: float = 3e-4, batch_size: int = 16,
                       seed: int = 0, eval_every: int = 25, live: bool = True,
                       progress: bool = True) -> tuple[RewardModel, RunLog]:
    """A RewardModel on a copy of `backbone`, trained with `loss_fn` (the learner's bradley_terry_loss)."""
    torch.manual_seed(seed)
    reward_model = RewardModel(backbone).to(backbone.device)
    reward_model.train()

    def step_loss(indices):
        r_chosen = reward_model(*pairs.chosen.sequences(indices, reward_model.device))
        r_rejected = reward_model(*pairs.rejected.sequences(indices, reward_model.device))
        wins = pair_wins(r_chosen.detach(), r_rejected.detach())
        return loss_fn(r_chosen, r_rejected), {"training accuracy": sum(wins) / len(wins)}

    def evaluate():
        return {"held-out accuracy": pairwise_accuracy(reward_model, held_out)["all"]} if held_out is not None else {}

    plot = LiveLines({"loss": 0, "training accuracy": 1, "held-out accuracy": 1},
                     ["Bradley-Terry loss", "chosen scored higher"], "Training the reward model",
                     ["loss", "share of pairs"]) if live else None
    log = train_steps(reward_model.parameters(), step_loss, random_items(len(pairs), batch_size, seed),
                      steps=steps, lr=lr, evaluate=evaluate, eval_every=eval_every, plot=plot,
                      desc="reward model", progress=progress)
    reward_model.eval()
    return reward_model, log


# --- DPO -----------------------------------------------------------------------------------------
@torch.no_grad()
def all_logprobs(model: TinyGPT, conversations: Conversations, logprob_fn: Callable = sequence_logprob,
                 batch_size: int = 64) -> torch.Tensor:
    """Each conversation's summed response log-probability under `model`, shape (n,)."""
    was_training = model.training
    model.eval()
    out = torch.cat([logprob_fn(model(inputs), labels, mask).float().cpu()
                     for inputs, labels, mask in conversations.batches(batch_size, model.device)])
    model.train(was_training)
    return out


@torch.no_grad()
def kl_from_reference(policy: TinyGPT, reference: TinyGPT, conversations: Conversations, batch_size: int = 64) -> float:
    """KL(policy ‖ reference) of the next-token distributions, averaged over the response positions
    of the conversations: how far the policy's way of answering has drifted from where it started."""
    was_training = policy.training
    policy.eval()
    total, tokens = 0.0, 0
    for inputs, _, mask in conversations.batches(batch_size, policy.device):
        logp = F.log_softmax(policy(inputs).float(), -1)
        logq = F.log_softmax(reference(inputs).float(), -1)
        kl = (logp.exp() * (logp - logq)).sum(-1)
        total += float(kl[mask].sum())
        tokens += int(mask.sum())
    policy.train(was_training)
    return total / tokens


def dpo_accuracy(policy: TinyGPT, reference_logps: tuple[torch.Tensor, torch.Tensor], pairs: PairSet,
                 logprob_fn: Callable = sequence_logprob) -> dict[str, float]:
    """The share of pairs whose chosen answer has the larger implicit reward, log p_policy − log p_reference."""
    chosen = all_logprobs(policy, pairs.chosen, logprob_fn) - reference_logps[0]
    rejected = all_logprobs(policy, pairs.rejected, logprob_fn) - reference_logps[1]
    return _accuracy_by_flaw(pair_wins(chosen, rejected), pairs)


def train_dpo(policy: TinyGPT, pairs: PairSet, *, beta: float, steps: int, held_out: PairSet | None = None,
              held_out_conversations: Conversations | None = None, loss_fn: Callable = dpo_loss,
              logprob_fn: Callable = sequence_logprob, lr: float = 3e-4, batch_size: int = 16, seed: int = 0,
              eval_every: int = 25, live: bool = True, progress: bool = True) -> RunLog:
    """DPO: train `policy` in place on the pairs against a frozen copy of itself (the reference).

    Per step it records the mean implicit reward margin beta((pc − rc) − (pr − rr)) and how far the
    chosen and rejected answers' log-probabilities moved from the reference's; at each evaluation,
    held-out preference accuracy and KL(policy ‖ reference) on held-out conversations.
    """
    reference = copy.deepcopy(policy).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    ref_chosen, ref_rejected = all_logprobs(reference, pairs.chosen, logprob_fn), all_logprobs(reference, pairs.rejected, logprob_fn)
    held_ref = ((all_logprobs(reference, held_out.chosen, logprob_fn), all_logprobs(reference, held_out.rejected, logprob_fn))
                if held_out is not None else None)
    policy.train()

    def step_loss(indices):
        pc = logprob_fn(*_logits_and_labels(policy, pairs.chosen, indices))
        pr = logprob_fn(*_logits_and_labels(policy, pairs.rejected, indices))
        rc, rr = ref_chosen[indices].to(pc.device), ref_rejected[indices].to(pc.device)
        losses = loss_fn(pc, pr, rc, rr, beta)
        chosen_shift, rejected_shift = (pc - rc).detach(), (pr - rr).detach()
        return losses.mean(), {"reward margin": float(beta * (chosen_shift - rejected_shift).mean()),
                               "chosen: log p − reference": float(chosen_shift.mean()),
                               "rejected: log p − reference": float(rejected_shift.mean())}

    def evaluate():
        values = {}
        if held_out is not None:
            values["held-out accuracy"] = dpo_accuracy(policy, held_ref, held_out, logprob_fn)["all"]
        if held_out_conversations is not None:
            values["KL from reference"] = kl_from_reference(policy, reference, held_out_conversations)
        return values

    plot = LiveLines({"reward margin": 0, "chosen: log p − reference": 1, "rejected: log p − reference": 1,
                      "KL from reference": 2}, ["implicit reward margin", "answers' log p, from the reference",
                                                "drift (held out)"],
                     f"DPO, beta = {beta:g}", ["beta × margin", "nats", "KL (nats per token)"]) if live else None
    return train_steps(policy.parameters(), step_loss, random_items(len(pairs), batch_size, seed), steps=steps,
                       lr=lr, evaluate=evaluate, eval_every=eval_every, plot=plot, desc=f"DPO beta={beta:g}",
                       progress=progress)


def _logits_and_labels(model: TinyGPT, conversations: Conversations, indices):
    inputs, labels, mask = conversations.batch(indices, model.device)
    return model(inputs), labels, mask
