"""The one training loop of the course: pre-training (notebook C), SFT, the reward model and DPO (D),
GRPO and the arithmetic warm-up (E), the recall race (B).

Each step takes the next batch, computes a loss, and nudges the weights with Adam (AdamW); now and
then it measures something on held-out data. A progress bar, and where asked a live plot, show it
happening; the stop button (KeyboardInterrupt) ends a run early and keeps what it learned. What
changes between the runs is the batch, the loss and what is measured.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from course_lib.train.live import LiveLines
from course_lib.validation import is_number


def learning_rate(progress: float, step: int, peak: float, warmup_steps: int, min_ratio: float = 0.1) -> float:
    """Linear warm-up to `peak` over the first `warmup_steps` steps, then a cosine down to
    peak * min_ratio as `progress` (the fraction of the budget used, 0 to 1) goes from 0 to 1."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return peak * (min_ratio + (1 - min_ratio) * cosine)


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


def train_steps(parameters, step_loss: Callable, batches: Iterable, *, steps: int | None, lr: float,
                seconds: float | None = None, betas: tuple[float, float] = (0.9, 0.95),
                schedule: str | Callable[[float, int], float] = "cosine", clip: float | None = 1.0,
                evaluate: Callable[[], dict] | None = None, eval_every: int = 25, eval_at_start: bool = True,
                after_eval: Callable[[RunLog], str | None] | None = None,
                after_step: Callable[[int], None] | None = None, log: RunLog | None = None,
                plot: LiveLines | None = None, desc: str = "training", progress: bool = True) -> RunLog:
    """Adam on `parameters` for `steps` steps of `step_loss(batch) -> (loss, {name: value})`, one
    batch of `batches` each; returns the run's log.

    parameters: the weights to train (AdamW without weight decay, at `lr` with `betas`), or an
    optimizer that already holds them, to continue a run with its state. log: a run's log to
    continue: its last step is where this call starts, and `steps` counts the steps in all.
    seconds: a time budget for this call (a run ends at whichever budget comes first).
    schedule: "cosine" (a linear warm-up over a tenth of the steps, then a cosine down to a tenth
    of `lr`), "constant", or `schedule(progress, step) -> learning rate`, progress being the share
    of the budget used. clip: the gradient's largest norm (None: no clipping).
    `evaluate()` runs before the first step (if `eval_at_start` and nothing was measured yet),
    every `eval_every` steps and at the end; after each evaluation `after_eval(log)` may save or
    print, and ends the run early on purpose by returning its reason (a target reached), which the
    progress bar then shows, full. `after_step(step)` runs after every step.
    """
    if steps is None and seconds is None:
        raise ValueError("give a budget: steps=..., seconds=..., or both")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be a whole number >= 1, got {steps!r}")
    if seconds is not None and (not is_number(seconds) or not seconds > 0):
        raise ValueError(f"seconds must be a number > 0, got {seconds!r}")
    if schedule == "cosine":
        if steps is None:
            raise ValueError("the cosine schedule needs a step budget; pass schedule=... for a time budget")
        schedule = lambda progress, step: learning_rate(progress, step, lr, max(1, steps // 10))  # noqa: E731
    elif schedule != "constant" and not callable(schedule):
        raise ValueError(f"schedule must be 'cosine', 'constant' or a function, got {schedule!r}")
    if isinstance(parameters, torch.optim.Optimizer):
        optimizer = parameters
        parameters = [p for group in optimizer.param_groups for p in group["params"]]
    else:
        parameters = [p for p in parameters if p.requires_grad]
        optimizer = torch.optim.AdamW(parameters, lr=lr, betas=betas, weight_decay=0.0)
    batches = iter(batches)
    log = log if log is not None else RunLog()
    log.stopped = ""
    step = start = log.steps[-1] if log.steps else 0

    def measure() -> None:
        if evaluate is not None:
            log.record(step, evaluate(), evaluation=True)

    def redraw() -> None:
        if plot is not None:
            plot.draw(log)

    if eval_at_start and not log.eval_steps:
        measure()
    if plot is not None:
        from IPython.display import display

        redraw()
        plot_output = display(plot.view, display_id=True)
    began = time.perf_counter()
    bar = tqdm(total=steps, initial=start if steps else 0, desc=desc, unit="step", disable=not progress)
    try:
        while steps is None or step < steps:
            elapsed = time.perf_counter() - began
            if seconds is not None and elapsed >= seconds:
                break
            if callable(schedule):
                progress_made = max(step / steps if steps else 0.0, elapsed / seconds if seconds else 0.0)
                for group in optimizer.param_groups:
                    group["lr"] = schedule(progress_made, step)
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
                measure()
                shown = log.evals or log.per_step
                bar.set_postfix({k: f"{v[-1]:.3g}" for k, v in list(shown.items())[:3]})
                redraw()
                if after_eval is not None and (reason := after_eval(log)):
                    log.stopped = reason
                    bar.total = step  # stopped on purpose: a full bar, not one cut short
                    bar.set_description(f"{desc}: {reason}")
                    break
            if after_step is not None:
                after_step(step)
    except KeyboardInterrupt:
        print(f"Stopped after step {step}: the model keeps what it learned so far.")
        log.stopped = "stopped by hand"
    if not log.eval_steps or log.eval_steps[-1] != step:
        measure()  # where the run ended, by hand or out of time
        redraw()
    if plot is not None and plot_output is not None:
        plot_output.update(plot.view)  # the same live view, and its static picture now of the whole run
    bar.close()
    log.seconds += time.perf_counter() - began
    return log
