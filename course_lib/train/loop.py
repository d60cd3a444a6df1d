"""The training loop every run after pre-training shares: SFT, the reward model and DPO (notebook D),
GRPO and the arithmetic warm-up (E), the recall race (B).

Each step takes the next batch, computes a loss, and nudges the weights with Adam (AdamW with no
weight decay); now and then it measures something on held-out data. A progress bar, and where asked
a live plot, show it happening; the stop button (KeyboardInterrupt) ends a run early and keeps what
it learned. What changes between the runs is the batch, the loss and what is measured.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from course_lib.train.live import LiveLines
from course_lib.train.pretrain import TrainConfig, learning_rate


@dataclass
class RunLog:
    """What a run measured: some numbers at every step, others at every evaluation."""
    steps: list[int] = field(default_factory=list)
    per_step: dict[str, list[float]] = field(default_factory=dict)
    eval_steps: list[int] = field(default_factory=list)
    evals: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    stopped: str = ""  # why the run ended before its last step: "" when it ran them all

    def record(self, step: int, values: dict[str, float], evaluation: bool = False) -> None:
        (self.eval_steps if evaluation else self.steps).append(step)
        target = self.evals if evaluation else self.per_step
        for name, value in values.items():
            target.setdefault(name, []).append(float(value))

    def last(self, name: str) -> float:
        series = self.evals.get(name) or self.per_step.get(name)
        if not series:
            raise KeyError(f"nothing named {name!r} was measured; there is {sorted(self.per_step) + sorted(self.evals)}")
        return series[-1]


def random_items(n_items: int, batch_size: int, seed: int) -> Iterator[list[int]]:
    """Batches of `batch_size` indices drawn at random from range(n_items), the same for a seed."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        yield torch.randint(n_items, (batch_size,), generator=generator).tolist()


def train_steps(parameters, step_loss: Callable, batches: Iterable, *, steps: int, lr: float,
                betas: tuple[float, float] = (0.9, 0.95), schedule: str = "cosine",
                clip: float | None = 1.0, evaluate: Callable[[], dict] | None = None,
                eval_every: int = 25, eval_at_start: bool = True,
                stop: Callable[[RunLog], str | None] | None = None, plot: LiveLines | None = None,
                desc: str = "training", progress: bool = True) -> RunLog:
    """Adam on `parameters` for `steps` steps of `step_loss(batch) -> (loss, {name: value})`, one
    batch of `batches` each.

    schedule: "cosine" (a linear warm-up over a tenth of the steps, then a cosine down to a tenth
    of `lr`, as pre-training uses) or "constant". clip: the gradient's largest norm (None: no
    clipping). `evaluate()` runs before the first step (unless not `eval_at_start`), every
    `eval_every` steps and at the end; after each evaluation, `stop(log)` may end the run early on
    purpose by returning its reason (a target reached), which the progress bar then shows, full.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a whole number >= 1, got {steps!r}")
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    parameters = [p for p in parameters if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=lr, betas=betas, weight_decay=0.0)
    warmup = TrainConfig(lr=lr, warmup_steps=max(1, steps // 10))
    batches = iter(batches)
    log = RunLog()

    def measure(step: int) -> None:
        if evaluate is not None:
            log.record(step, evaluate(), evaluation=True)

    def redraw() -> None:
        if plot is not None:
            known = {trace.name for trace in plot.figure.data}
            points = {n: (log.steps, v) for n, v in log.per_step.items() if n in known}
            points.update({n: (log.eval_steps, v) for n, v in log.evals.items() if n in known})
            plot.update(points)

    if eval_at_start:
        measure(0)
    if plot is not None:
        from IPython.display import display

        redraw()
        display(plot.figure)
    start = time.perf_counter()
    bar = tqdm(total=steps, desc=desc, unit="step", disable=not progress)
    step = 0
    try:
        while step < steps:
            if schedule == "cosine":
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(step / steps, step, warmup)
            loss, values = step_loss(next(batches))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"the loss became {loss.item()} at step {step}; check the loss "
                                         f"function, or try a smaller learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(parameters, clip)
            optimizer.step()
            step += 1
            log.record(step, {"loss": loss.item(), **values})
            bar.update(1)
            if step % eval_every == 0 or step == steps:
                measure(step)
                shown = log.evals or log.per_step
                bar.set_postfix({k: f"{v[-1]:.3g}" for k, v in list(shown.items())[:3]})
                redraw()
                if stop is not None and (reason := stop(log)):
                    log.stopped = reason
                    bar.total = step  # stopped on purpose: a full bar, not one cut short
                    bar.set_description(f"{desc}: {reason}")
                    break
    except KeyboardInterrupt:
        print(f"Stopped after step {step}: the model keeps what it learned so far.")
        log.stopped = "stopped by hand"
        if not log.eval_steps or log.eval_steps[-1] != step:
            measure(step)
        redraw()
    bar.close()
    log.seconds = time.perf_counter() - start
    return log
