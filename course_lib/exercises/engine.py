"""The small engine every exercise declaration runs on.

An `Exercise` holds the course's answer, a probe (one small valid call: does the learner's function
exist yet?), its named mistakes (a key and a hint each; a mistake may come with a wrong version of
the answer, so that a result matching it is named) and its visible and hidden cases. A case is
either a `Case` (call the learner's function and the answer on copies of the same inputs and compare
the results) or a function of a `Trial`, for what a comparison cannot say (the effect of a
temperature, stopping at eos, a refusal). Every failure is an `ExerciseFailure`: an AssertionError,
which nbgrader counts as a failed test, carrying the mistake's key, so tests assert keys, not wording.
"""
from __future__ import annotations

import copy
import functools
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch

# Mistakes the engine itself finds, with the hint given when a declaration has none of its own.
ENGINE_MISTAKES = {
    "not_implemented": "",
    "raised": "",
    "not_a_tensor": "build the result with torch operations",
    "shape": "",
    "dtype": "",
    "not_finite": "",
    "values": "",
    "not_a_number": "return a plain number (float(...) turns a one-element tensor into one)",
    "no_gradient": "keep the computation in torch: torch.tensor(...), .item() or torch.no_grad() cut the "
                   "graph that backward() follows",
    "gradient": "keep the computation in torch, with no detach() or .item() on the way",
    "changed_input": "work on a copy: leave the caller's inputs as they were",
    "no_refusal": "",
}


class ExerciseFailure(AssertionError):
    """A failed check, in plain words: what was expected, what came back, a hint. `key` names the mistake."""

    def __init__(self, key: str, what: str, expected: Any = None, got: Any = None, hint: str = ""):
        self.key = key
        message = f"\n❌ {what}"
        if expected is not None or got is not None:
            message += f"\n   expected: {expected}\n   got:      {got}"
        if hint:
            message += f"\n   hint: {hint}"
        super().__init__(message)


@dataclass(frozen=True)
class Case:
    """Call the learner's function and the answer on (copies of) `args` and compare: type, shape,
    finiteness and values (within atol + rtol * |expected|), and with `grad` (positions of tensor
    arguments) the gradients reaching those arguments. `args` may be a function that builds them
    (large or random inputs). With `exact`, the answer (and the wrong versions) run in float64.
    `key`, `raised` and `not_finite` name the mistakes of wrong values, an error and NaN or inf."""
    what: str
    args: tuple | Callable[[], tuple]
    kwargs: dict = field(default_factory=dict)
    key: str = "values"
    atol: float = 1e-5
    rtol: float = 0.0
    grad: tuple[int, ...] = ()
    raised: str = "raised"
    not_finite: str = "not_finite"
    exact: bool = False

    def __call__(self, trial: "Trial") -> None:
        args = self.args() if callable(self.args) else self.args
        given = tuple(a.detach().clone().requires_grad_(True) if i in self.grad else a for i, a in enumerate(args))
        got = trial.call(*given, what=self.what, raised=self.raised, **self.kwargs)
        if self.exact:
            args = tuple(a.detach().double() if torch.is_tensor(a) and a.is_floating_point() else a for a in args)
        expected = trial.answer(*args, **self.kwargs)
        trial.close(got, expected.detach() if torch.is_tensor(expected) else expected, self.what,
                    key=self.key, atol=self.atol, rtol=self.rtol, args=args, kwargs=self.kwargs,
                    not_finite=self.not_finite)
        if self.grad:
            trial.gradients(got, given, self.grad, self.what, kwargs=self.kwargs)


# The comparison most losses need: the answer in float64, a tolerance that grows with the values
# (|got - expected| <= FLOAT64_TOLERANCE * (1 + |expected|): k3's values reach e^20).
FLOAT64_TOLERANCE = 1e-5
Float64Case = functools.partial(Case, atol=FLOAT64_TOLERANCE, rtol=FLOAT64_TOLERANCE, exact=True)


@dataclass(frozen=True)
class Hint:
    """One of an exercise's progressive hints, shown folded away above its answer cell (`python -m
    autograder generate` writes them there); `fits` names the mistakes it helps with, so that a
    failure can point to it."""
    text: str
    fits: tuple[str, ...] = ()


@dataclass(frozen=True)
class Exercise:
    """One graded exercise, declared once. `probe(fn)` calls fn once on a small valid input.
    `mistakes` maps a key to its hint; the engine's own keys (ENGINE_MISTAKES) may be given hints too.
    `wrong` maps a mistake's key to a wrong version of the answer: a result that differs from the
    answer but matches it is reported under that key ("you forgot to shift the targets").
    `todo` finishes "replace that line with ..." for a stub that still raises NotImplementedError.
    `hints`: two or three, each closer to the answer than the last (the first fits an empty stub)."""
    name: str
    answer: Callable
    probe: Callable[[Callable], Any] | None
    mistakes: dict[str, str]
    visible: tuple
    hidden: tuple = ()
    wrong: dict[str, Callable] = field(default_factory=dict)
    todo: str = "your code"
    passed: Callable[["Trial"], str] | None = None  # the message for a pass, when not the usual one
    hints: tuple[Hint, ...] = ()

    def hint_for(self, key: str) -> int | None:
        """The number (from 1) of the first hint that fits this mistake; an unwritten stub gets the first."""
        if key == "not_implemented" and self.hints:
            return 1
        return next((n for n, h in enumerate(self.hints, 1) if key in h.fits), None)

    def hints_markdown(self) -> str:
        """The hints as folded HTML blocks, which JupyterLab, Notebook 7, VS Code and Colab all render."""
        blocks = [f"<details><summary><b>Hint {n}</b>{' (open it when you are stuck)' if n == 1 else ''}"
                  f"</summary>\n\n{h.text}\n\n</details>" for n, h in enumerate(self.hints, 1)]
        return f"**Stuck on `{self.name}`?** Open the hints one at a time.\n\n" + "\n".join(blocks)

    def hint(self, key: str) -> str:
        if key in self.mistakes:
            return self.mistakes[key]
        if key in ENGINE_MISTAKES:
            return ENGINE_MISTAKES[key]
        raise KeyError(f"{self.name}: the mistake {key!r} is not declared")  # a course bug, not the learner's

    def check(self, *submitted, hidden: bool = False, **context) -> None:
        if hidden and not self.hidden:  # a course bug: such a test cell would pass having tested nothing
            raise ValueError(f"{self.name} has no hidden cases")
        trial = Trial(self, submitted, context)
        try:
            if any(value is Ellipsis for value in submitted):  # a top-level answer's placeholder
                raise ExerciseFailure("not_implemented", "an answer is still `...`: replace each `...` in "
                                      "the cell above with your answer, then run it and this cell again")
            for case in self.hidden if hidden else self.visible:
                case(trial)
        except ExerciseFailure as failure:
            if (number := self.hint_for(failure.key)) is not None:
                failure.args = (f"{failure.args[0]}\n   💡 hint {number} above the exercise fits this one",)
            raise
        print(self.passed(trial) if self.passed else
              f"✅ {self.name} passes the {'hidden tests too' if hidden else 'visible tests'}.")

    def use(self, fn: Callable) -> Callable:
        """The learner's function if it is implemented, else the course's answer, saying so visibly."""
        name = getattr(fn, "__name__", self.name)
        try:
            self.probe(fn)
        except NotImplementedError:
            print(f"ℹ️  Your `{name}` is not implemented yet, so the cells below use the course's "
                  f"reference version. Come back and write yours: these cells will then use it.")
            return self.answer
        except Exception as error:  # the learner's code: report it and keep the notebook running
            print(f"⚠️  Your `{name}` raised {type(error).__name__}: {error}\n"
                  f"    The cells below use the course's reference version until yours works.")
            return self.answer
        return fn


def stub_failure(name: str, exc: NotImplementedError, todo: str) -> ExerciseFailure:
    """A stub that still raises: the learner's function itself, or one it calls (generate calling an
    unfinished softmax_with_temperature, say), which is what to fix first."""
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    raiser = tb.tb_frame.f_code.co_name
    if raiser not in (name, "<module>"):
        return ExerciseFailure("not_implemented", f"{name} calls {raiser}, which still raises "
                               f"NotImplementedError: implement {raiser} first.")
    return ExerciseFailure("not_implemented", f"{name} still raises NotImplementedError: "
                           f"replace that line with {todo}.")


def copied(value):
    """A copy of an input to hand to a function, so that neither the learner's code nor the answer
    sees the other's changes. Objects that are not data (models, generators) are shared."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(value.requires_grad)
    if isinstance(value, (list, tuple, dict, set, str, int, float, bool, type(None))):
        return copy.deepcopy(value)
    return value


def unchanged(before, after) -> bool:
    if isinstance(before, torch.Tensor):
        return isinstance(after, torch.Tensor) and before.shape == after.shape and torch.equal(before, after)
    if isinstance(before, (list, tuple, dict, set)):
        return before == after
    return True


class Trial:
    """One run of an exercise's cases on what the learner submitted (`fn` is the first function or
    value; `context` holds what the notebook passes beside it, such as the model)."""

    def __init__(self, exercise: Exercise, submitted: tuple, context: dict):
        self.exercise, self.submitted, self.context = exercise, submitted, context
        self.fn = submitted[0] if submitted else None
        self.inputs: list = []  # what the last call handed the learner's function (their gradients land there)

    def fail(self, key: str | list[str], what: str, expected: Any = None, got: Any = None, hint: str | None = None):
        """Raise the failure named `key`; given several keys (mistakes that all explain the result),
        the first names it and the hint gives every one's."""
        keys = [key] if isinstance(key, str) else key
        if hint is None:
            hint = "\n   or: ".join(self.exercise.hint(k) for k in keys)
        raise ExerciseFailure(keys[0], what, expected, got, hint)

    def call(self, *args, what: str, fn: Callable | None = None, raised: str | dict[type, str] = "raised", **kwargs):
        """The learner's function on copies of the inputs. A stub, an error, or a change to the
        caller's inputs becomes a failure that says which case it was. A case that knows the likely
        cause of an error names it: `raised` is that mistake's key, or maps error types to keys (the
        first type the error is an instance of; "raised" when none is)."""
        fn = fn or self.fn
        name = getattr(fn, "__name__", self.exercise.name)
        mine = [copied(a) for a in args], {k: copied(v) for k, v in kwargs.items()}
        theirs = [copied(a) for a in mine[0]], {k: copied(v) for k, v in mine[1].items()}
        self.inputs = [*theirs[0], *theirs[1].values()]
        try:
            result = fn(*theirs[0], **theirs[1])
        except NotImplementedError as exc:
            raise stub_failure(name, exc, self.exercise.todo) from None
        except AssertionError:
            raise
        except Exception as error:
            key = raised if isinstance(raised, str) else next(
                (key for kind, key in raised.items() if isinstance(error, kind)), "raised")
            self.fail(key, f"{what}: your function raised an error", "a result", f"{type(error).__name__}: {error}")
        changed = [i for i, (a, b) in enumerate(zip([*mine[0], *mine[1].values()],
                                                    [*theirs[0], *theirs[1].values()])) if not unchanged(a, b)]
        if changed:
            self.fail("changed_input", f"{what}: {name} changed its input in place", "inputs left as they were",
                      "an edited input")
        return result

    def answer(self, *args, **kwargs):
        return self.exercise.answer(*[copied(a) for a in args], **{k: copied(v) for k, v in kwargs.items()})

    def wrong_results(self, *args, **kwargs) -> dict[str, Any]:
        """What each of the exercise's wrong versions gives on (copies of) these inputs."""
        results = {}
        for key, wrong in self.exercise.wrong.items():
            try:
                results[key] = wrong(*[copied(a) for a in args], **{k: copied(v) for k, v in kwargs.items()})
            except Exception:  # a wrong version undefined on this input names nothing
                continue
        return results

    def same_draws(self, draws: Callable[[torch.Generator], list], key: str, what: str, seed: int = 7) -> None:
        """draws(generator) must give the same picks for two generators seeded alike, whatever torch's
        global random state is: the learner's code draws from the generator it is given."""
        saved, runs = torch.get_rng_state(), []
        try:
            for global_seed in (1, 2):
                torch.manual_seed(global_seed)  # a different global state each run: it must not matter
                runs.append(draws(torch.Generator().manual_seed(seed)))
        finally:
            torch.set_rng_state(saved)
        if runs[0] != runs[1]:
            self.fail(key, what, runs[0][:12], runs[1][:12])

    def tensor(self, got, shape, what: str) -> torch.Tensor:
        """`got` as a float64 tensor after checking that it is a tensor (of `shape`, unless None)."""
        if not torch.is_tensor(got):
            self.fail("not_a_tensor", f"{what}: the result should be a torch tensor", "torch.Tensor",
                      type(got).__name__)
        if shape is not None and tuple(got.shape) != tuple(shape):
            self.fail("shape", f"{what}: the result has the wrong shape", tuple(shape), tuple(got.shape))
        return got.detach().double()

    def close(self, got, expected, what: str, key: str = "values", atol: float = 1e-5, rtol: float = 0.0,
              args: tuple | None = None, kwargs: dict | None = None, not_finite: str = "not_finite") -> None:
        """A result against the expected one: a tensor's type, shape, finiteness, then values; a
        number's type, then value. Given the inputs, a shape or values that match one of the
        exercise's wrong versions are reported under that mistake's key."""
        if isinstance(expected, numbers.Real) and not isinstance(expected, bool):
            if isinstance(got, bool) or not isinstance(got, numbers.Real):
                self.fail("not_a_number", f"{what}: the result should be a number", "a float", type(got).__name__)
            got, expected = torch.tensor(float(got)), torch.tensor(float(expected))
        expected = torch.as_tensor(expected).double()

        def named(got) -> list[str]:
            if args is None:
                return []
            wrong = self.wrong_results(*args, **(kwargs or {}))
            return matching(got, expected, {k: torch.as_tensor(v).detach().double() for k, v in wrong.items()},
                            lambda a, b: torch.allclose(a, b, atol=atol, rtol=rtol))

        got = self.tensor(got, None, what)
        if got.shape != expected.shape:
            self.fail(named(got) or "shape", f"{what}: the result has the wrong shape", tuple(expected.shape),
                      tuple(got.shape))
        if not torch.isfinite(got).all() and torch.isfinite(expected).all():
            self.fail(not_finite, f"{what}: the result should be finite", "finite values", _short(got))
        if torch.allclose(got, expected, atol=atol, rtol=rtol, equal_nan=True):
            return
        self.fail(named(got) or key, f"{what}: the values are off", _short(expected), _short(got))

    def gradients(self, got, args: tuple, positions: tuple[int, ...], what: str, kwargs: dict | None = None) -> None:
        """The gradient of got (summed) reaching the learner's copies of args[i], i in positions,
        against the answer's, computed in float64."""
        if not (torch.is_tensor(got) and got.requires_grad):
            self.fail("no_gradient", f"{what}: the result should carry a gradient back to its inputs",
                      "result.requires_grad == True", "False")
        inputs = self.inputs
        try:
            got.sum().backward()
        except RuntimeError as error:
            self.fail("no_gradient", f"{what}: backward() failed", "a gradient", f"{type(error).__name__}: {error}")
        exact = [copied(a).double().detach().requires_grad_(i in positions) if torch.is_tensor(a)
                 and a.is_floating_point() else copied(a) for i, a in enumerate(args)]
        self.exercise.answer(*exact, **{k: copied(v) for k, v in (kwargs or {}).items()}).sum().backward()
        for i in positions:
            mine = inputs[i].grad
            if mine is None or not torch.allclose(mine.double(), exact[i].grad, atol=1e-6, rtol=1e-4):
                self.fail("gradient", f"{what}: the gradient with respect to argument {i + 1}",
                          "the answer's gradient", "no gradient" if mine is None else "different values")

    def refuses(self, what: str, *args, hint: str | None = None, **kwargs) -> None:
        """The learner's function must raise a ValueError with a message on these inputs (`hint`: what
        to check for this input, when not the exercise's no_refusal hint)."""
        try:
            self.call(*args, what=what, **kwargs)
        except ExerciseFailure as failure:
            if failure.key != "raised":
                raise
            error = failure.__context__  # what the learner's function raised, as call() saw it
            if isinstance(error, ValueError):
                if not str(error).strip():
                    self.fail("no_refusal", f"{what} raised a ValueError with no message",
                              "a message that says why", "''", hint)
                return
            self.fail("no_refusal", f"{what} should raise a ValueError", "ValueError",
                      f"{type(error).__name__}: {error}", hint)
        self.fail("no_refusal", f"{what} should be refused", "a ValueError with a clear message", "no error", hint)


def matching(got, expected, results: dict[str, Any] | Iterable[tuple[str, Any]],
             same: Callable[[Any, Any], bool]) -> list[str]:
    """The keys of the results (of wrong versions) that `got` matches and the right answer does not.
    Two mistakes can give the same result on a case: then both are named, each once."""
    def alike(a, b) -> bool:
        if torch.is_tensor(a) and torch.is_tensor(b) and a.shape != b.shape:
            return False
        return bool(same(a, b))
    pairs = results.items() if isinstance(results, dict) else results
    return list(dict.fromkeys(key for key, result in pairs
                              if alike(got, result) and not (alike(expected, result) and alike(result, expected))))


def rounded(values, digits: int = 4) -> list[float]:
    return [round(x, digits) for x in torch.as_tensor(values).double().flatten().tolist()]


def _short(values, n: int = 8):
    """A number, or the first n values of a tensor, rounded for a failure message."""
    values = torch.as_tensor(values).double()
    if values.dim() == 0:
        return round(values.item(), 6) + 0.0  # + 0.0: no -0.0
    flat = [x + 0.0 for x in rounded(values, 5)]
    return flat if len(flat) <= n else f"{flat[:n]} ... ({len(flat)} values)"
