"""Pre-training TinyGPT: the next-token game of notebook C, played for a few minutes.

Every step: take a batch of windows of real text, predict each next token, measure how wrong the
predictions were (the loss), and nudge every weight a little downhill (AdamW). The learning rate
warms up for the first steps, then follows a cosine down to a tenth of its peak; gradients are
clipped so that one odd batch cannot throw the model off.

A run stops at a step budget or a time budget, whichever comes first. With a step budget it is
deterministic on a CPU: the same seed gives the same weights, and a run stopped, saved and resumed
from its checkpoint ends exactly where an uninterrupted one does. A time budget depends on the
machine's speed, so it is for the learner's live runs, not for tests.
"""
from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from course_lib.data.pretraining import SOURCES, PretrainingCorpus
from course_lib.device import get_device
from course_lib.models.tinygpt import TinyGPT, TinyGPTConfig
from course_lib.exercises.pretraining import next_token_loss
from course_lib.train.live import LiveLines
from course_lib.train.loop import RunLog, learning_rate, train_steps
from course_lib.validation import is_number

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 32
    lr: float = 3e-3  # peak learning rate; small models take large ones
    min_lr_ratio: float = 0.1  # the cosine ends at lr * min_lr_ratio
    warmup_steps: int = 30
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    mixture: tuple[tuple[str, float], ...] = (("prose", 0.5), ("code", 0.5))  # share of each source
    eval_every: int = 50  # steps between validation measurements (and live-curve points)
    eval_windows: int = 64  # windows of validation text per source at each measurement

    def __post_init__(self):
        weights = dict(self.mixture)
        if set(weights) - set(SOURCES) or not weights:
            raise ValueError(f"mixture must name sources among {SOURCES}, got {list(weights)}")
        if any(not is_number(w) or w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError(f"mixture shares must be numbers >= 0 with a positive sum, got {weights}")


def default_configs(device: torch.device | str | None = None) -> tuple[TinyGPTConfig, TrainConfig]:
    """The model and training settings for this device: small on a CPU, larger on a GPU."""
    device = torch.device(device) if device is not None else get_device()
    if device.type == "cuda":
        return (TinyGPTConfig(dim=384, n_layers=6, n_heads=6, context=256),
                TrainConfig(batch_size=64, lr=1e-3, eval_every=100))
    return TinyGPTConfig(dim=128, n_layers=4, n_heads=4, context=128), TrainConfig()


def sample_batch(streams: dict[str, torch.Tensor], mixture: dict[str, float], batch_size: int,
                 context: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """batch_size random windows of context + 1 tokens, each from a source drawn by its share;
    returns (inputs, targets), the targets being the inputs shifted by one token."""
    names = [s for s in mixture if mixture[s] > 0]
    weights = torch.tensor([float(mixture[s]) for s in names])
    choice = torch.multinomial(weights, batch_size, replacement=True, generator=generator)
    rows = []
    for i in choice.tolist():
        stream = streams[names[i]]
        start = int(torch.randint(len(stream) - context - 1, (1,), generator=generator))
        rows.append(stream[start:start + context + 1])
    batch = torch.stack(rows)
    return batch[:, :-1], batch[:, 1:]


@torch.no_grad()
def validation_loss(model: TinyGPT, stream: torch.Tensor, windows: int = 64, batch_size: int = 32,
                    loss_fn: LossFn = next_token_loss) -> float:
    """Mean next-token loss on `windows` evenly spaced windows of a validation stream: the same
    windows every time, so measurements along a run (and across runs) compare like with like."""
    context = model.cfg.context
    if len(stream) <= context + 1:
        raise ValueError(f"the validation text has {len(stream)} tokens, fewer than one window of {context + 1}")
    starts = torch.linspace(0, len(stream) - context - 1, windows).long()
    was_training = model.training
    model.eval()
    device = model.device
    total = 0.0
    for chunk in starts.split(batch_size):
        batch = torch.stack([stream[s:s + context + 1] for s in chunk.tolist()]).to(device)
        total += float(loss_fn(model(batch[:, :-1]), batch[:, 1:])) * len(chunk)
    model.train(was_training)
    return total / windows


class LiveCurve(LiveLines):
    """The course's live plot for pre-training: the smoothed training loss and each source's
    validation loss, growing while the model trains."""

    def __init__(self, title: str = "TinyGPT pre-training"):
        super().__init__({"train (smoothed)": 0, **{f"validation: {s}": 0 for s in SOURCES}}, [""], title,
                         ["loss (nats per token)"], height=380)
        train, *validation = self.figure.data
        train.line.color = "#999"  # the noisy per-step loss, behind the measurements
        for trace in validation:
            trace.mode = "lines+markers"  # a point per validation measurement

    def draw(self, log: RunLog) -> None:
        self.update({"train (smoothed)": (log.steps, _smooth(log.per_step.get("loss", []))),
                     **{f"validation: {s}": (log.eval_steps, log.evals.get(s, [])) for s in SOURCES}})


def _smooth(values: list[float], weight: float = 0.9) -> list[float]:
    out, running = [], None
    for v in values:
        running = v if running is None else weight * running + (1 - weight) * v
        out.append(running)
    return out


class Pretrainer:
    """Trains a TinyGPT on a PretrainingCorpus; `run` may be called again to train further.

    loss_fn: the next-token loss (the learner's own plugs in here). checkpoint: a file written at
    every measurement and at the end; if it exists when the Pretrainer is made, training resumes
    from it (model, optimizer, run log, random state and samples), with the same settings.
    `log` is the run's RunLog: the training loss of every step ("loss") and, at each measurement,
    the validation loss of each source ("prose", "code").
    """

    CHECKPOINT_FORMAT = 2  # 2: the run log is a RunLog

    def __init__(self, model: TinyGPT, corpus: PretrainingCorpus, cfg: TrainConfig | None = None, *,
                 seed: int = 0, loss_fn: LossFn = next_token_loss, checkpoint: str | Path | None = None,
                 device: torch.device | str | None = None):
        if model.cfg.vocab_size != corpus.vocab_size:
            raise ValueError(f"the model's vocabulary ({model.cfg.vocab_size}) differs from the "
                             f"corpus tokenizer's ({corpus.vocab_size})")
        self.device = torch.device(device) if device is not None else get_device()
        self.model = model.to(self.device)
        self.corpus = corpus
        self.cfg = cfg or TrainConfig()
        self.loss_fn = loss_fn
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        # Weight decay on matrices only, not on biases, norms' gains or embeddings' positions.
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.cfg.lr, betas=(0.9, 0.95))
        self.generator = torch.Generator().manual_seed(seed)
        self.log = RunLog()
        self.samples: list[tuple[int, str]] = []  # (step, text) of every sample printed
        if self.checkpoint is not None and self.checkpoint.is_file():
            self._load_checkpoint()

    @property
    def step(self) -> int:
        """Steps trained so far, in all runs."""
        return self.log.steps[-1] if self.log.steps else 0

    @property
    def tokens(self) -> int:
        """Tokens trained on so far, in all runs."""
        return self.step * self.cfg.batch_size * self.model.cfg.context

    def val_loss(self, source: str | None = None) -> float:
        """The last measured validation loss of one source, or the mean over sources."""
        if not self.log.eval_steps:
            raise ValueError("no validation measurement yet: run() first")
        if source is not None:
            return self.log.evals[source][-1]
        return sum(self.log.evals[s][-1] for s in SOURCES) / len(SOURCES)

    # -- checkpoints ------------------------------------------------------------------------
    def save_checkpoint(self, path: str | Path | None = None) -> Path:
        path = Path(path) if path is not None else self.checkpoint
        if path is None:
            raise ValueError("no checkpoint path: pass one here or to Pretrainer(checkpoint=...)")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save({"format": self.CHECKPOINT_FORMAT, "model_config": self.model.cfg.__dict__,
                    "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "generator": self.generator.get_state(), "log": dataclasses.asdict(self.log),
                    "samples": self.samples}, tmp)
        tmp.replace(path)  # atomic: a crash mid-write never leaves a half checkpoint behind
        return path

    def _load_checkpoint(self) -> None:
        try:
            saved = torch.load(self.checkpoint, map_location=self.device, weights_only=True)
        except Exception as error:
            raise ValueError(f"{self.checkpoint} is not a readable checkpoint ({error}); delete it "
                             f"to start from scratch") from error
        if saved["model_config"] != self.model.cfg.__dict__:
            raise ValueError(f"{self.checkpoint} holds a model of another shape "
                             f"({saved['model_config']}); delete it or use another path")
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.generator.set_state(saved["generator"])
        if saved.get("format") == self.CHECKPOINT_FORMAT:
            self.log, self.samples = RunLog(**saved["log"]), saved["samples"]
        else:  # written by the course's first version: the same run, its log in the old layout
            old = saved["history"]
            self.log = RunLog(steps=old["train_steps"], per_step={"loss": old["train_loss"]},
                              eval_steps=old["eval_steps"], evals=old["val_loss"], seconds=old["seconds"])
            self.samples = old["samples"]

    # -- training ---------------------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        """The validation loss of each source, on the same windows every time."""
        return {s: validation_loss(self.model, self.corpus.val[s], self.cfg.eval_windows,
                                   self.cfg.batch_size, self.loss_fn) for s in SOURCES}

    def sample(self, prompt: str = "The ", max_new_tokens: int = 40, temperature: float = 0.8) -> str:
        ids = self.corpus.encode(prompt)
        # Its own generator, seeded by the step and the prompt: sampling never disturbs training's randomness.
        generator = torch.Generator().manual_seed(self.step * 7919 + zlib.crc32(prompt.encode("utf-8")))
        new = self.model.generate(ids, max_new_tokens, temperature=temperature, top_k=50,
                                  eos_id=self.corpus.eot_id, generator=generator)
        return prompt + self.corpus.decode(new)

    def run(self, steps: int | None = None, seconds: float | None = None, *, live: bool = True,
            progress: bool = True, sample_every: int | None = None, sample_prompts=("The ", "def ")) -> RunLog:
        """Train until `steps` steps in all (counting earlier runs) or `seconds` of this call,
        whichever comes first; measure validation loss every cfg.eval_every steps and at the end.
        Returns the run's log (`self.log`).

        live: draw the loss curve in the notebook and update it as training goes.
        sample_every: print samples from the model every so many steps (and at the end).
        """
        cfg = self.cfg
        self.model.train()
        drawn = {}  # the random state before the latest batch was drawn, and the step it was for

        def batches():
            while True:
                drawn.update(state=self.generator.get_state(), step=self.step)
                inputs, targets = sample_batch(self.corpus.train, dict(cfg.mixture), cfg.batch_size,
                                               self.model.cfg.context, self.generator)
                yield inputs.to(self.device), targets.to(self.device)

        def after_eval(log: RunLog) -> None:
            if self.checkpoint is not None:
                self.save_checkpoint()

        def after_step(step: int) -> None:
            if sample_every and step % sample_every == 0:
                self._print_samples(sample_prompts)

        try:
            train_steps(self.optimizer, lambda batch: (self.loss_fn(self.model(batch[0]), batch[1]), {}),
                        batches(), steps=steps, seconds=seconds, lr=cfg.lr,
                        schedule=lambda progress, step: learning_rate(progress, step, cfg.lr, cfg.warmup_steps,
                                                                      cfg.min_lr_ratio),
                        clip=cfg.grad_clip, evaluate=self.evaluate, eval_every=cfg.eval_every,
                        after_eval=after_eval, after_step=after_step if sample_every else None, log=self.log,
                        plot=LiveCurve() if live else None, desc="pre-training TinyGPT", progress=progress)
        finally:
            if drawn and drawn["step"] == self.step:
                # A step cut short (the stop button, an error) leaves no trace: a resumed run draws the
                # very batch this one would have used.
                self.generator.set_state(drawn["state"])
        if sample_every and not (self.samples and self.samples[-1][0] == self.step):
            self._print_samples(sample_prompts)  # the final model's, unless the loop just printed them
        if self.checkpoint is not None:
            self.save_checkpoint()
        if self.log.stopped == "stopped by hand":
            print("Call run() again with the same budget to continue.")
        return self.log

    def _print_samples(self, prompts) -> None:
        for prompt in prompts:
            text = self.sample(prompt)
            self.samples.append((self.step, text))
            tqdm.write(f"step {self.step:>5} | {text!r}")
