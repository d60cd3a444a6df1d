"""The learner's side of the integrity re-check (integrity.py is the other side).

integrity.py starts this file as `python -c <its text>` inside the submission's sandbox, where the
course's answers and checks (course_lib/reference/, checks/ and exercises/) are hidden, and drives it
over a pipe: define the learner's answers, then call their functions with the inputs of the
course's own checks, which run in integrity.py's process, out of the learner's reach.

Messages both ways are pickles of plain data, tensors as their bytes (pack_tensor:
a tensor's own pickle is slow, and the checks make thousands of calls). The grader reads this
side's messages with an unpickler that builds numbers, strings, containers and numpy arrays and
refuses everything else, so no code of the learner's runs in the grader's process.
While the learner's code runs, this side also notes what a graded answer never needs to do: import
the course's answers or checks, rebind anything in course_lib, sys.modules or builtins, or remove
the import guard.
"""
import builtins
from collections import Counter, OrderedDict
import os
import pickle
import signal
import struct
import sys
import types

import numpy as np
import torch

COURSE_INTERNALS = ("course_lib.reference", "course_lib.checks", "course_lib.exercises")  # integrity.INTERNALS
MAX_JACOBIAN = 1 << 14   # output elements whose gradients travel back; the checks use a few dozen


class Interrupted(BaseException):
    """A cell or call ran past its time limit (BaseException: `except Exception` cannot swallow it)."""


def _interrupt(signum, frame):
    raise Interrupted()


class Channel:
    """Length-prefixed messages on two file descriptors."""

    def __init__(self, read_fd: int, write_fd: int):
        self.reader = os.fdopen(read_fd, "rb", buffering=0)
        self.writer = os.fdopen(write_fd, "wb", buffering=0)
        # A process the learner's code forks must not answer in this one's name (a fork bomb's
        # children would all read the grader's requests and write replies into the same pipe).
        os.register_at_fork(after_in_child=self.disown)

    def disown(self) -> None:
        os.close(self.reader.fileno())
        os.close(self.writer.fileno())

    def _read(self, n: int) -> bytes:
        chunks = []
        while n:
            chunk = self.reader.read(n)
            if not chunk:
                raise EOFError("the grader closed the pipe")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def receive(self):
        (n,) = struct.unpack(">Q", self._read(8))
        return pickle.loads(self._read(n))

    def send(self, message: dict) -> None:
        data = pickle.dumps(message, protocol=5)
        self.writer.write(struct.pack(">Q", len(data)) + data)


class Guard:
    """An import hook that refuses the course's internals and notes who asked (while recording)."""

    def __init__(self):
        self.recording = False
        self.attempts: list[str] = []

    def find_spec(self, name, path=None, target=None):
        if any(name == m or name.startswith(m + ".") for m in COURSE_INTERNALS):
            if self.recording:
                self.attempts.append(name)
            raise ImportError(f"{name} is not available while an answer is re-checked")
        return None


def snapshot() -> dict:
    """Identities of what an answer must leave alone."""
    course, files = {}, {}
    for name, module in list(sys.modules.items()):
        if name == "course_lib" or name.startswith("course_lib."):
            files[name] = vars(module).get("__file__")  # not getattr: a module may answer anything
            course.update({(name, attr): id(value) for attr, value in list(vars(module).items())
                           if not isinstance(value, types.ModuleType)})
    return {"builtins": {k: id(v) for k, v in vars(builtins).items()},
            "modules": {k: id(v) for k, v in list(sys.modules.items())}, "course": course,
            "course_files": files, "meta_path": [id(f) for f in sys.meta_path]}


def rebound(before: dict, after: dict, guard: Guard) -> list[str]:
    """What changed between two snapshots that an answer has no business changing. Modules newly
    imported from the course's files are ordinary imports, not findings."""
    found = [f"builtins.{k}" for k in sorted(before["builtins"].keys() | after["builtins"].keys())
             if before["builtins"].get(k) != after["builtins"].get(k)]
    found += [f"sys.modules[{k!r}]" for k, ident in before["modules"].items() if after["modules"].get(k) != ident]
    found += [f"sys.modules[{k!r}] (a module of its own)" for k, path in after["course_files"].items()
              if k not in before["course_files"] and path is None]
    changed: dict[str, list[str]] = {}
    for module, attr in sorted(before["course"].keys() | after["course"].keys()):
        if module in before["course_files"] and before["course"].get((module, attr)) != after["course"].get((module, attr)):
            changed.setdefault(module, []).append(attr)
    for module, attrs in changed.items():
        found.append(f"{module}.{', '.join(attrs[:4])}" + (f" and {len(attrs) - 4} more" if len(attrs) > 4 else ""))
    if id(guard) not in after["meta_path"]:
        found.append("sys.meta_path (the import guard was removed)")
    return found


class Unreadable(Exception):
    """A value the grader could not read back."""


SCALARS = (int, float, bool, complex, str, bytes, type(None))


def pack_tensor(t: torch.Tensor) -> dict:
    """A tensor as plain data: its bytes, dtype, shape and whether it requires a gradient."""
    flat = t.detach().reshape(-1).contiguous()
    return {"course_tensor": flat.view(torch.uint8).numpy().tobytes(), "dtype": str(t.dtype).removeprefix("torch."),
            "shape": list(t.shape), "grad": t.requires_grad}


def unpack_tensor(packed: dict) -> torch.Tensor:
    dtype = getattr(torch, str(packed["dtype"]), None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"not a tensor type: {packed['dtype']!r}")
    data = bytearray(packed["course_tensor"])
    t = torch.frombuffer(data, dtype=torch.uint8) if data else torch.empty(0, dtype=torch.uint8)
    t = t.view(dtype).reshape(list(packed["shape"]))
    return t.requires_grad_(True) if packed["grad"] else t


def plain(value):
    """The value as plain data the grader reads back, or Unreadable: tensors packed, numpy scalars
    as Python numbers, tuple and dict subclasses as plain ones (Counter and OrderedDict stay)."""
    if isinstance(value, torch.Tensor):
        return pack_tensor(value)
    if type(value) in SCALARS:
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        kind = type(value) if type(value) in (list, tuple, set, frozenset) else \
            tuple if isinstance(value, tuple) else list
        return kind(plain(v) for v in value)
    if isinstance(value, dict):
        kind = type(value) if type(value) in (Counter, OrderedDict) else dict
        return kind((plain(k), plain(v)) for k, v in value.items())
    if isinstance(value, np.ndarray) and value.dtype != object:
        return value.copy()
    if isinstance(value, np.generic):
        return value.item()
    raise Unreadable(type(value).__name__)


def readable(value) -> bool:
    """Whether the grader can read the value back (the learner's objects can fail at anything)."""
    try:
        plain(value)
        return True
    except Exception:
        return False


class Learner:
    """The learner's answers in one namespace, and the calls the grader makes into them."""

    def __init__(self, channel: Channel):
        self.channel = channel
        self.guard = Guard()
        sys.meta_path.insert(0, self.guard)
        self.namespace = {"__name__": "__main__", "__builtins__": builtins}
        self.prelude_names: set[str] = set()
        self.last = snapshot()    # what the next audit compares with
        signal.signal(signal.SIGALRM, _interrupt)

    def audit(self) -> dict:
        """What the learner's code did, since the last audit, that an answer never does: imports of
        the course's internals (refused), and what it rebound (which lasts, for every later check)."""
        now = snapshot()
        found = {"imports": [f"imports {name}" for name in self.guard.attempts],
                 "rebinds": [f"rebinds {what}" for what in rebound(self.last, now, self.guard)]}
        self.guard.attempts.clear()
        self.last = now
        return found

    def guarded(self, seconds: float, run):
        """run() under a time limit, with the guard recording: what it raised, or None."""
        self.guard.recording = True
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            run()
        except BaseException as exc:  # the learner's code: any failure is a result to report
            return exc
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            self.guard.recording = False
        return None

    def prelude(self, sources: list[str]) -> dict:
        for source in sources:
            try:
                exec(compile(source, "<prelude>", "exec"), self.namespace)
            except Exception:  # an import the answers do not need (a widget, say)
                pass
        self.prelude_names = set(self.namespace)
        self.last = snapshot()
        return {"kind": "done"}

    def execute(self, cell: str, source: str, seconds: float) -> dict:
        raised = self.guarded(seconds, lambda: exec(compile(source, cell, "exec"), self.namespace))
        error = (None if raised is None else f"ran past its time limit of {seconds:g} s"
                 if isinstance(raised, Interrupted) else f"{type(raised).__name__}: {raised}")
        names = {}
        for name, value in self.namespace.items():
            if name in self.prelude_names or name.startswith("__"):
                continue
            names[name] = "function" if callable(value) else "value" if readable(value) else "other"
        return {"kind": "done", "error": error, "findings": self.audit(), "names": names}

    def value(self, name: str) -> dict:
        return {"kind": "value", "value": plain(self.namespace.get(name))}

    # ---- calls -----------------------------------------------------------------------------
    def callback(self, ref: int):
        """A function of the grader's (next_token_fn, say), called back over the pipe."""
        def remote(*args, **kwargs):
            self.channel.send({"kind": "callback", "id": ref, "args": plain(args), "kwargs": plain(kwargs)})
            reply = self.channel.receive()
            if reply["kind"] == "raise":
                raise reply["error"]
            return self.unwrap(reply["value"])
        return remote

    def unwrap(self, value):
        """The grader's arguments: packed tensors, generators (by their state) and callbacks."""
        if isinstance(value, dict) and "course_tensor" in value:
            return unpack_tensor(value)
        if isinstance(value, dict) and "course_callback" in value:
            return self.callback(value["course_callback"])
        if isinstance(value, dict) and "course_generator" in value:
            return torch.Generator().set_state(unpack_tensor(value["course_generator"]))
        if isinstance(value, (list, tuple)):
            return type(value)(self.unwrap(v) for v in value)
        if isinstance(value, dict):
            return {k: self.unwrap(v) for k, v in value.items()}
        return value

    def call(self, name: str, args: tuple, kwargs: dict, seconds: float) -> dict:
        fn = self.namespace.get(name)
        args, kwargs = self.unwrap(args), self.unwrap(kwargs)
        result = {}

        def run():
            result["out"] = fn(*args, **kwargs)

        raised = self.guarded(seconds, run)
        if isinstance(raised, Interrupted):
            return {"kind": "timeout", "message": f"ran past its time limit of {seconds:g} s"}
        if raised is not None:  # the learner's exception goes back to the check
            tb = raised.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            return {"kind": "raise", "type": type(raised).__name__, "message": str(raised)[:4000],
                    "builtin": getattr(builtins, type(raised).__name__, None) is type(raised),
                    "raiser": tb.tb_frame.f_code.co_name if tb is not None else name}
        out = result["out"]
        try:
            reply = {"kind": "return", "readable": True, "value": plain(out)}
        except Exception:  # Unreadable, or the learner's object failing as it is taken apart
            reply = {"kind": "return", "readable": False, "value": None}
        try:
            reply["gradients"] = self.gradients(out, args, kwargs)
        except Exception:  # the result then carries no gradient, and the check says so
            reply["gradients"] = {}
        reply["after"] = {"args": [self.after(a) for a in args],
                          "kwargs": {k: self.after(v) for k, v in kwargs.items()}}
        return reply

    @staticmethod
    def after(value):
        """What the grader writes back into its own arguments: the learner may modify its inputs
        in place, and the checks look for that."""
        if isinstance(value, torch.Generator):
            return {"generator": pack_tensor(value.get_state())}
        if isinstance(value, torch.Tensor) and not value.requires_grad:
            return {"tensor": pack_tensor(value)}
        if isinstance(value, (list, dict)) and readable(value):
            return {"container": plain(value)}
        return None

    @staticmethod
    def gradients(out, args, kwargs) -> dict:
        """For each tensor in the result that carries a gradient: its Jacobian with respect to
        each argument tensor that requires one, so the grader can backpropagate through it."""
        inputs = [a for a in [*args, *kwargs.values()] if isinstance(a, torch.Tensor) and a.requires_grad]
        outputs = out if isinstance(out, (tuple, list)) else [out]
        found = {}
        for index, o in enumerate(outputs):
            if not (isinstance(o, torch.Tensor) and o.requires_grad and inputs) or o.numel() > MAX_JACOBIAN:
                continue
            flat = o.reshape(-1)
            rows = [torch.autograd.grad(flat[k], inputs, retain_graph=True, allow_unused=True)
                    for k in range(flat.numel())]
            found[index] = [None if rows and rows[0][i] is None else
                            pack_tensor(torch.stack([(r[i] if r[i] is not None else torch.zeros_like(inputs[i]))
                                                     .reshape(-1) for r in rows]))
                            for i in range(len(inputs))]
        return found

    def serve(self) -> None:
        while True:
            message = self.channel.receive()
            kind = message["kind"]
            if kind == "bye":
                return
            try:
                if kind == "prelude":
                    reply = self.prelude(message["sources"])
                elif kind == "execute":
                    reply = self.execute(message["cell"], message["source"], message["seconds"])
                elif kind == "value":
                    reply = self.value(message["name"])
                elif kind == "audit":
                    reply = {"kind": "audit", "findings": self.audit()}
                elif kind == "call":
                    reply = self.call(message["name"], message["args"], message["kwargs"], message["seconds"])
                else:
                    reply = {"kind": "error", "message": f"unknown request {kind!r}"}
            except Exception as exc:  # a fault of this side's, reported rather than fatal
                reply = {"kind": "error", "message": f"{type(exc).__name__}: {exc}"}
            self.channel.send(reply)


if __name__ == "__main__":
    # The protocol keeps private copies of stdin and stdout; what the learner prints goes to stderr.
    channel = Channel(os.dup(0), os.dup(1))
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    Learner(channel).serve()
