"""Integrity: is a submission's score the learner's own work?

The notebook's test cells run in the learner's kernel, next to the learner's code, which could
call the course's own answers (course_lib.reference) or replace the checks before they run. So
grade.py, after nbgrader, re-checks every test cell the submission passed, with the roles split
across two processes:

* the learner's side (learner_side.py) runs in the submission's sandbox, where course_lib/reference/,
  checks/ and exercises/ are hidden: it holds only the learner's answer cells;
* this process, the grader's, runs each test cell of the instructor's source (hidden tests
  included) with the course's own checks, unchanged; every learner function it calls is a proxy
  that sends the inputs to the learner's side and reads the result back (an unpickler that builds
  data only, never code). Gradients travel back as Jacobians, in-place changes to the
  inputs and random generators' states are written back, so the checks see what they would see
  in the kernel.

A test cell that passed in the notebook but fails here relied on something out of the learner's
reach here: the reference answers, or checks it had patched. Beside that, a finding is made when
an answer cell
  imports the course's answers or checks, or rebinds anything in course_lib, sys.modules or
  builtins (seen by the learner's side while the answer runs, and by reading its code);
  uses what no answer needs and what reaches those (exec, importlib, sys.modules, ...);
  is one of the course's reference functions with its names changed (same syntax tree).
Each finding names the graded cells it affects; grade.py reports it (status "integrity") and, by
default, scores those cells 0. The course's own fallback, course_lib.exercises.use (or
learner_or_reference, in notebooks handed out before it), lives in locked cells, which are not
re-run here, so it is never a finding.

    python -m autograder.integrity SOURCE SUBMISSION --passed ID [ID ...] [--learner-command JSON] --out JSON
"""
from __future__ import annotations

import argparse
import ast
import builtins
import dataclasses
import importlib.util
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from autograder import course

HERE = Path(__file__).resolve().parent
# What an answer cell never needs, each a way to reach or rebind the course's answers and checks:
# these builtins (called by name), these attributes of sys, and these modules.
SUSPICIOUS_NAMES = {"exec", "eval", "compile", "__import__", "globals", "setattr", "delattr",
                    "__builtins__", "learner_or_reference"}
SUSPICIOUS_SYS = {"modules", "meta_path", "path_hooks", "settrace", "setprofile"}
SUSPICIOUS_MODULES = ("importlib", "builtins", "ctypes", "gc")
# course_lib's subpackages that hold the course's answers and checks (learner_side.py names them too).
INTERNALS = ("reference", "checks", "exercises")
# Objects a test cell may name that are the notebook's, built here by the course's own code.
PROVIDERS = {"smol": "from course_lib.models.smollm import load_smollm2\nsmol = load_smollm2(progress=False)"}


def course_package() -> Path:
    """course_lib's folder, found without importing it (that would load torch)."""
    return Path(importlib.util.find_spec("course_lib").origin).parent


def read_notebook(path: Path):
    """A notebook's cells as read from its JSON: nbformat's import alone takes a second, paid per
    submission. Each cell is a dict that also answers cell.source, cell.cell_type."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    cells = [Cell(c, source="".join(c.get("source", "")) if isinstance(c.get("source"), list)
                  else c.get("source", "")) for c in data.get("cells", [])]
    return SimpleNamespace(cells=cells)


class Cell(dict):
    __getattr__ = dict.__getitem__


def codec():
    """The tensor packing both sides share. Imported on use: it loads torch, which grade.py
    (which imports this module for run()) does not need."""
    from autograder import learner_side

    return learner_side


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


# --------------------------------------------------------------------------------------------
# reading the learner's code
# --------------------------------------------------------------------------------------------
def parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


def defined_names(tree: ast.Module | None) -> set[str]:
    """Top-level names a cell defines (functions, classes, assignments, imports)."""
    names = set()
    for node in tree.body if tree else []:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def free_names(tree: ast.Module) -> set[str]:
    """Names a cell reads without defining them, builtins excepted."""
    loaded, stored = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else stored).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            stored.add(node.name)
        elif isinstance(node, ast.arg):
            stored.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            stored.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            stored |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return loaded - stored - set(dir(builtins))


def suspicious_uses(tree: ast.Module) -> list[str]:
    """What in an answer's code reaches the course's internals or rebinds shared state. Attribute
    names alone say nothing (re.compile, model.modules()): only sys.X and course_lib.X count."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in SUSPICIOUS_NAMES:
            found.append(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and (
                (node.value.id == "sys" and node.attr in SUSPICIOUS_SYS)
                or (node.value.id == "course_lib" and node.attr in INTERNALS)):
            found.append(f"{node.value.id}.{node.attr}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            found += [m for m in modules if m.split(".")[0] in SUSPICIOUS_MODULES
                      or m.startswith(tuple(f"course_lib.{name}" for name in INTERNALS))]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "course_lib" in node.value:
            found.append(repr(node.value))
    return sorted(set(found))


class _Normalise(ast.NodeTransformer):
    """A function's syntax tree with its own names (the function's, arguments, locals) numbered in
    order of first appearance, docstrings, annotations and the text of strings dropped: two
    functions that differ only by renaming (or rewording) come out the same."""

    def __init__(self, keep: set[str]):
        self.keep, self.names = keep, {}

    def rename(self, name: str) -> str:
        if name in self.keep:
            return name
        return self.names.setdefault(name, f"_v{len(self.names)}")

    def visit_FunctionDef(self, node):
        node.name = self.rename(node.name)
        node.returns = None
        if node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant) \
                and isinstance(node.body[0].value.value, str):
            node.body = node.body[1:] or [ast.Pass()]
        node.decorator_list = []
        self.generic_visit(node)
        return node

    def visit_arg(self, node):
        node.arg, node.annotation = self.rename(node.arg), None
        return node

    def visit_Name(self, node):
        node.id = self.rename(node.id)
        return node

    def visit_Constant(self, node):  # messages reworded, or renamed along with the names
        return ast.Constant("") if isinstance(node.value, str) else node

    def visit_JoinedStr(self, node):
        return ast.Constant("")


def statements(fn: ast.FunctionDef) -> int:
    """Statements in a function's body, nested ones included, its docstring not."""
    body = fn.body[1:] if ast.get_docstring(fn) is not None else fn.body
    return sum(isinstance(n, ast.stmt) for b in body for n in ast.walk(b))


def fingerprint(fn: ast.FunctionDef) -> str:
    keep = set(dir(builtins)) | {"torch", "math", "F", "np", "re", "regex", "random", "Counter"}
    return ast.dump(_Normalise(keep).visit(ast.parse(ast.unparse(fn)).body[0]),
                    annotate_fields=False)


def reference_fingerprints() -> dict[str, str]:
    """fingerprint -> 'module.function' for every function of the course's reference answers."""
    found = {}
    for folder in ("reference", "exercises"):
        for path in sorted((course_package() / folder).glob("*.py")):
            tree = parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                # A short function is written the same way by many honest learners: only long ones count.
                if isinstance(node, ast.FunctionDef) and statements(node) >= 10:
                    found[fingerprint(node)] = f"course_lib.{folder}.{path.stem}.{node.name}"
    return found


# --------------------------------------------------------------------------------------------
# the learner's side, in the sandbox
# --------------------------------------------------------------------------------------------
def learner_command(box=None) -> list[str]:
    """How to start the learner's side: as `python -c` (autograder/ is hidden in the sandbox), in
    a copy of the job's sandbox (sandbox.Sandbox) that also hides the course's answers and checks."""
    command = [sys.executable, "-c", (HERE / "learner_side.py").read_text(encoding="utf-8")]
    if box is None:
        return command
    package = course_package()
    box = dataclasses.replace(box, hide=[*box.hide, *(str(package / name) for name in INTERNALS)])
    return box.wrap(command)


class LearnerSide:
    """learner_side.py in a subprocess (in the sandbox when there is one), and its protocol."""

    def __init__(self, command: list[str], env: dict):
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env)
        self.callbacks: list = []

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.proc.stdout.read(n - len(data))
            if not chunk:
                raise LearnerSideGone("the learner's side stopped (killed by a limit, or crashed)")
            data += chunk
        return data

    def send(self, message: dict) -> None:
        data = pickle.dumps(message)
        try:
            self.proc.stdin.write(struct.pack(">Q", len(data)) + data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise LearnerSideGone("the learner's side stopped (killed by a limit, or crashed)") from None

    def receive(self) -> dict:
        (n,) = struct.unpack(">Q", self._read(8))
        try:
            return DataOnly(io.BytesIO(self._read(n))).load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
            # The learner's code can break that side's own (rebinding what it uses): a garbled
            # reply ends the re-check like a crash.
            raise LearnerSideGone(f"the learner's side sent an unreadable reply ({exc})") from None

    def request(self, message: dict) -> dict:
        """Send a request; answer the callbacks the learner's code makes meanwhile; the reply."""
        self.send(message)
        while True:
            reply = self.receive()
            if reply.get("kind") == "error":
                raise LearnerSideFault(reply["message"])
            if reply.get("kind") != "callback":
                return reply
            try:
                value = self.callbacks[reply["id"]](*restore(reply["args"]), **restore(reply["kwargs"]))
                self.send({"kind": "return", "value": wrap(value, self.callbacks)})
            except Exception as exc:
                self.send({"kind": "raise", "error": exc})

    def close(self) -> None:
        try:
            self.send({"kind": "bye"})
            self.proc.wait(timeout=10)
        except (LearnerSideGone, subprocess.TimeoutExpired):
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class LearnerSideGone(BaseException):
    """The learner's side stopped. BaseException: the checks' `except Exception`, meant for the
    learner's errors, must not take it for one."""


class LearnerSideFault(BaseException):
    """The learner's side could not carry out a request (a fault of the re-check, not the learner's)."""


class DataOnly(pickle.Unpickler):
    """Reads the learner's side's messages: plain data and numpy arrays, nothing that runs code."""
    ALLOWED = {("collections", "Counter"), ("collections", "OrderedDict"), ("builtins", "set"),
               ("builtins", "frozenset"), ("builtins", "complex"), ("numpy", "ndarray"), ("numpy", "dtype"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not plain data")


def wrap(value, callbacks: list):
    """Arguments as the learner's side receives them: tensors packed, generators by their state,
    callables by number (called back over the pipe)."""
    import torch

    if isinstance(value, torch.Tensor):
        return codec().pack_tensor(value)
    if isinstance(value, torch.Generator):
        return {"course_generator": codec().pack_tensor(value.get_state())}
    if callable(value) and not isinstance(value, type):
        callbacks.append(value)
        return {"course_callback": len(callbacks) - 1}
    if isinstance(value, (list, tuple)):
        return type(value)(wrap(v, callbacks) for v in value)
    if isinstance(value, dict):
        return {k: wrap(v, callbacks) for k, v in value.items()}
    return value


def restore(value):
    """A value from the learner's side with its tensors unpacked."""
    if isinstance(value, dict):
        if "course_tensor" in value:
            return codec().unpack_tensor(value)
        return {k: restore(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        if not any(isinstance(v, (dict, list, tuple, set, frozenset)) for v in value):
            return value  # plain numbers and strings (token ids, mostly): nothing to unpack
        return type(value)(restore(v) for v in value)
    return value


class RemoteFunction:
    """Stands in for a learner's function in the course's checks."""

    def __init__(self, side: LearnerSide, name: str, seconds: float):
        self.side, self.__name__, self.seconds = side, name, seconds

    def __call__(self, *args, **kwargs):
        callbacks = self.side.callbacks
        reply = self.side.request({"kind": "call", "name": self.__name__, "args": wrap(args, callbacks),
                                   "kwargs": wrap(kwargs, callbacks), "seconds": self.seconds})
        if reply["kind"] == "timeout":
            raise TimeoutError(f"{self.__name__} {reply['message']}")
        if reply["kind"] == "raise":
            raise_as(reply)
        if not reply["readable"]:
            raise TypeError(f"{self.__name__} returned a value the grader cannot read back "
                            "(use tensors, numbers, strings, lists, tuples, dicts or sets)")
        self.write_back(args, kwargs, restore(reply["after"]))
        try:
            value = restore(reply["value"])
        except (ValueError, TypeError, RuntimeError) as exc:
            raise TypeError(f"{self.__name__} returned a value the grader cannot read back ({exc})") from None
        return with_gradients(value, reply["gradients"], [*args, *kwargs.values()])

    @staticmethod
    def write_back(args, kwargs, after) -> None:
        """The learner's in-place changes to its inputs, made to the grader's own objects."""
        import torch

        pairs = [*zip(args, after["args"]), *((kwargs[k], v) for k, v in after["kwargs"].items())]
        for mine, theirs in pairs:
            if theirs is None:
                continue
            if "generator" in theirs and isinstance(mine, torch.Generator):
                mine.set_state(theirs["generator"])  # restore() has unpacked it
            elif "tensor" in theirs and isinstance(mine, torch.Tensor) and not mine.requires_grad \
                    and theirs["tensor"].shape == mine.shape and not torch.equal(theirs["tensor"], mine):
                with torch.no_grad():
                    mine.copy_(theirs["tensor"])
            elif "container" in theirs and isinstance(mine, list) and theirs["container"] != mine:
                mine[:] = theirs["container"]
            elif "container" in theirs and isinstance(mine, dict) and theirs["container"] != mine:
                mine.clear()
                mine.update(theirs["container"])


def raise_as(reply: dict):
    """Raise the learner's exception again, as its own built-in type and from a function named as
    the one that raised it (the checks name an unfinished function from the traceback)."""
    kind = getattr(builtins, reply["type"]) if reply["builtin"] else RuntimeError
    message = reply["message"] if reply["builtin"] else f"{reply['type']}: {reply['message']}"

    def raiser():
        raise kind(message)
    raiser.__code__ = raiser.__code__.replace(co_name=reply["raiser"])
    raiser()


def with_gradients(value, gradients: dict, arguments: list):
    """The learner's result, with each tensor that carried a gradient on the learner's side made
    differentiable again with respect to the grader's own argument tensors."""
    import torch

    inputs = [a for a in arguments if isinstance(a, torch.Tensor) and a.requires_grad]
    if not gradients or not inputs:
        return value

    class Remote(torch.autograd.Function):
        @staticmethod
        def forward(ctx, out, jacobians, *tensors):
            ctx.jacobians, ctx.shapes = jacobians, [t.shape for t in tensors]
            return out.clone()

        @staticmethod
        def backward(ctx, grad):
            grads = [None if j is None else (grad.reshape(1, -1).to(j.dtype) @ j).reshape(shape)
                     for j, shape in zip(ctx.jacobians, ctx.shapes)]
            return (None, None, *grads)

    outputs = list(value) if isinstance(value, (tuple, list)) else [value]
    for index, jacobians in gradients.items():
        outputs[index] = Remote.apply(outputs[index], restore(jacobians), *inputs)
    if isinstance(value, (tuple, list)):
        return type(value)(outputs)
    return outputs[0]


# --------------------------------------------------------------------------------------------
# the re-check
# --------------------------------------------------------------------------------------------
def instructor_imports(source_nb) -> dict[str, str]:
    """name -> the import statement that binds it, in the instructor's own cells (not answers, not
    tests): what the answers and the test cells may use (torch, math, ...)."""
    found = {}
    for cell in source_nb.cells:
        meta = nbgrader_meta(cell)
        if cell.cell_type != "code" or meta.get("solution") or meta.get("grade"):
            continue
        tree = parse(cell.source)
        for node in tree.body if tree else []:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.update(dict.fromkeys(defined_names(ast.Module([node], [])), ast.unparse(node)))
    return found


def prelude_sources(source_nb, answers: list[str]) -> list[str]:
    """The instructor's import statements that bind a name the answers use, for the learner's side.
    The course's answers and checks stay out."""
    used = set().union(*(free_names(t) for t in map(parse, answers) if t is not None))
    return sorted({text for name, text in instructor_imports(source_nb).items() if name in used
                   and not any(k in text for k in (*INTERNALS, "learner_or_reference"))})


class Recheck:
    def __init__(self, source_nb, submission_nb, passed: set[str], seconds: dict):
        self.source, self.submission, self.passed, self.seconds = source_nb, submission_nb, passed, seconds
        self.findings: list[dict] = []
        self.cells: dict[str, dict] = {}
        self.grade_ids = [nbgrader_meta(c)["grade_id"] for c in source_nb.cells
                          if nbgrader_meta(c).get("grade") and c.cell_type == "code"]
        self.answers = self.answer_cells()

    def answer_cells(self) -> list[tuple[str, str]]:
        """(grade id, the learner's source) of each answer cell, in the source notebook's order."""
        theirs = {nbgrader_meta(c).get("grade_id"): c.source for c in self.submission.cells
                  if c.cell_type == "code"}
        return [(nbgrader_meta(c)["grade_id"], theirs.get(nbgrader_meta(c)["grade_id"], ""))
                for c in self.source.cells if c.cell_type == "code"
                and nbgrader_meta(c).get("solution") and not nbgrader_meta(c).get("grade")]

    def test_cells_of(self, names: set[str]) -> list[str]:
        """The graded cells that use any of these names."""
        found = []
        for cell in self.source.cells:
            meta = nbgrader_meta(cell)
            tree = parse(cell.source) if meta.get("grade") and cell.cell_type == "code" else None
            if tree is not None and free_names(tree) & names:
                found.append(meta["grade_id"])
        return found

    def later_cells(self, grade_id: str) -> list[str]:
        """The graded cells from this cell (answer or test) on, in notebook order."""
        order = [nbgrader_meta(c).get("grade_id") for c in self.source.cells]
        start = order.index(grade_id) if grade_id in order else 0
        return [g for g in order[start:] if g in self.grade_ids]

    def find(self, kind: str, cell: str, message: str, affects: list[str]) -> None:
        self.findings.append({"kind": kind, "cell": cell, "message": message,
                              "affects": sorted(set(affects), key=self.grade_ids.index)})

    def read_code(self) -> None:
        """Findings from the answers' code alone."""
        references = reference_fingerprints()
        for grade_id, text in self.answers:
            tree = parse(text)
            if tree is None:
                continue
            affects = self.test_cells_of(defined_names(tree))
            uses = suspicious_uses(tree)
            if uses:
                self.find("suspicious_code", grade_id, f"answer {grade_id} uses {', '.join(uses)}, "
                          "which no answer needs: it reaches or rebinds the course's answers and checks",
                          affects)
            for node in tree.body:
                if isinstance(node, ast.FunctionDef) and fingerprint(node) in references:
                    self.find("pasted_reference", grade_id, f"answer {grade_id}: {node.name} is the "
                              f"course's {references[fingerprint(node)]} with its names changed", affects)

    def run(self, command: list[str], env: dict) -> None:
        self.read_code()
        todo = [g for g in self.grade_ids if g in self.passed]
        if not todo:
            return
        side = LearnerSide(command, env)
        started = False  # has the learner's code run yet?
        try:
            side.request({"kind": "prelude",
                          "sources": prelude_sources(self.source, [text for _, text in self.answers])})
            started = True
            names: dict[str, str] = {}
            errors: dict[str, str] = {}
            for grade_id, text in self.answers:
                reply = side.request({"kind": "execute", "cell": grade_id, "source": text,
                                      "seconds": self.seconds["answer"]})
                names.update(reply["names"])
                if reply["error"]:
                    errors[grade_id] = reply["error"]
                found = reply["findings"]["imports"] + reply["findings"]["rebinds"]
                if found:  # at the top of an answer cell, either is there to patch the checks
                    self.find("course_internals", grade_id, f"answer {grade_id} "
                              f"{'; '.join(found)}: an answer must leave the course's "
                              "answers, checks, sys.modules and builtins alone", self.later_cells(grade_id))
            self.recheck(side, names, errors, todo)
        except LearnerSideGone as exc:
            # Before the learner's code ran, the re-check itself failed; after, the answers ended it
            # (an exit, a crash, a limit), which they would not do in an honest notebook.
            for grade_id in todo:
                if grade_id in self.cells:
                    continue
                self.cells[grade_id] = {"outcome": "failed" if started else "not rechecked",
                                        "message": str(exc)}
                if started:  # grade.py drops it where the notebook's own kernel died as well
                    self.find("recheck_stopped", grade_id, f"cell {grade_id} passed in the notebook, "
                              f"but the answers stopped its re-check: {exc}", [grade_id])
        finally:
            side.close()

    def recheck(self, side: LearnerSide, names: dict[str, str], errors: dict[str, str],
                todo: list[str]) -> None:
        learner = {}
        for name, kind in names.items():
            if kind == "function":
                learner[name] = RemoteFunction(side, name, self.seconds["cell"])
            elif kind == "value":
                learner[name] = restore(side.request({"kind": "value", "name": name})["value"])
        answer_names = set().union(*(defined_names(parse(c.source)) for c in self.source.cells
                                     if c.cell_type == "code" and nbgrader_meta(c).get("solution")))
        available = {**instructor_imports(self.source), **PROVIDERS}  # built here, by the course
        built: dict = {}
        for cell in self.source.cells:
            grade_id = nbgrader_meta(cell).get("grade_id")
            if grade_id not in todo:
                continue
            needed = free_names(parse(cell.source))
            notebook = needed - answer_names - available.keys()
            unreadable = {n for n in needed if names.get(n) == "other"}
            if notebook or unreadable:  # nothing here to rebuild the notebook's own state from
                self.cells[grade_id] = {"outcome": "not rechecked", "message": "uses "
                                        f"{', '.join(sorted(notebook | unreadable))}, which only the "
                                        "notebook has"}
                continue
            for name in sorted(needed & available.keys() - learner.keys() - built.keys()):
                exec(available[name], built)
            namespace = {"__builtins__": builtins, **{k: built[k] for k in needed if k in built},
                         **learner}
            started = time.perf_counter()
            try:
                exec(compile(cell.source, grade_id, "exec"), namespace)
                self.cells[grade_id] = {"outcome": "passed", "message": ""}
            except LearnerSideGone:
                raise
            except LearnerSideFault as exc:
                self.cells[grade_id] = {"outcome": "not rechecked", "message": str(exc)}
            except BaseException as exc:  # a failed check, or the learner's error surfacing
                message = " ".join(f"{type(exc).__name__}: {str(exc).strip()}".splitlines()[:3])[:400]
                undefined = sorted((needed & answer_names) - learner.keys())
                if undefined:
                    why = "; ".join(f"{a}: {e}" for a, e in errors.items()) or "they are not defined"
                    message = f"{', '.join(undefined)} could not be defined from the answers alone ({why})"
                self.cells[grade_id] = {"outcome": "failed", "message": message}
                self.find("recheck_failed", grade_id, f"cell {grade_id} passed in the notebook but "
                          "fails when re-checked with the course's answers and checks out of the "
                          f"answer's reach ({message})", [grade_id])
            self.cells[grade_id]["seconds"] = round(time.perf_counter() - started, 2)
            found = side.request({"kind": "audit"})["findings"]
            # A refused import spoils that cell's calls only; a rebinding lasts, for every later check.
            for what, affects in (("imports", [grade_id]), ("rebinds", self.later_cells(grade_id))):
                if found[what]:
                    self.find("course_internals", grade_id, f"while cell {grade_id} ran, the answers: "
                              f"{'; '.join(found[what])}: an answer must leave the course's answers, "
                              "checks, sys.modules and builtins alone", affects)


def run(source: Path, submission: Path, passed: list[str], work: Path, command: list[str], env: dict,
        timeout: float) -> dict:
    """Re-check one submission in a subprocess (this file as a script), its learner's side started
    with `command` (learner_command); the result, as JSON data. A failure of the re-check itself
    is reported, never taken for a finding."""
    out, started_with = work / "integrity.json", work / "learner-command.json"
    started_with.write_text(json.dumps(command), encoding="utf-8")
    cmd = [sys.executable, "-m", "autograder.integrity", str(source), str(submission), "--out", str(out),
           "--learner-command", str(started_with), "--passed", *passed]
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=course.ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"the integrity re-check ran past {timeout:g} s", "findings": [], "cells": {}}
    if proc.returncode != 0 or not out.is_file():
        return {"error": f"the integrity re-check failed: {proc.stderr.strip()[-1500:]}",
                "findings": [], "cells": {}}
    result = json.loads(out.read_text(encoding="utf-8"))
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Re-check one graded submission (see the docstring).")
    parser.add_argument("source", type=Path, help="the instructor's source notebook")
    parser.add_argument("submission", type=Path, help="the submitted notebook, as graded")
    parser.add_argument("--passed", nargs="*", default=[], help="graded cells it passed in the notebook")
    parser.add_argument("--learner-command", type=Path,
                        help="a JSON list: how to start the learner's side (grade.py writes it, with "
                             "the sandbox); default: a plain subprocess")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    cell = int(os.environ.get("COURSE_CELL_TIMEOUT") or 300)
    seconds = {"cell": cell, "answer": int(os.environ.get("COURSE_ANSWER_TIMEOUT") or cell)}
    command = (json.loads(args.learner_command.read_text(encoding="utf-8")) if args.learner_command
               else learner_command())
    check = Recheck(read_notebook(args.source), read_notebook(args.submission), set(args.passed), seconds)
    check.run(command, dict(os.environ))
    args.out.write_text(json.dumps({"findings": check.findings, "cells": check.cells}, indent=1),
                        encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
