"""The sandbox every submitted notebook runs in while it is graded, and the guarded executor.

A submission is untrusted code. nbgrader runs it in a Jupyter kernel that is a child of the grading
process, so the kernel is where the limits go; nbgrader itself (which writes the gradebook) stays
outside. grade.py writes one `Sandbox` per submission to a JSON file and names it in the
environment variable COURSE_SANDBOX; nbgrader_config.py then makes nbgrader use `GuardedExecute`,
whose kernel manager starts the kernel like this:

    sh -c 'join the cgroup' -- bwrap [namespaces, file system view] -- prlimit [limits] -- python -m ipykernel_launcher

* bubblewrap (Debian's `bubblewrap`, https://github.com/containers/bubblewrap) gives the kernel
  new network, process, IPC and host-name namespaces (no network at all, no other process in
  sight), drops every capability, and shows it the machine read-only, except:
  - hidden (empty, read-only): the gradebook and every grading folder (autograder/), the
    instructor's sources with solutions and hidden tests (solutions/), the repository history
    (.git), the folder of raw submissions, and this job's own scratch folder;
  - private and writable (a tmpfs, gone when the kernel ends): the working folder, also HOME and
    TMPDIR;
  - the Unix sockets the kernel talks to nbgrader through (TCP is unusable without a network).
* a cgroup (v1 or v2, when this process may create one: root, or a delegated cgroup) caps the
  memory, which includes files written to the private tmpfs, and the number of processes (a fork
  bomb). grade.py creates it, reads from it why a kernel died, and kills what is left in it.
* resource limits (prlimit, util-linux) cap the size of any one file and forbid core dumps; where
  no cgroup can be made they also cap the address space and the processes of a non-root user.

`GuardedExecute`, used with or without the sandbox, adds what nbgrader's executor lacks: a cap on
each cell's output (a print in a loop stops the cell instead of filling the grader's memory), and,
when the kernel dies (out of memory, a segfault), an error in that cell and in every later code
cell instead of a failed grading run, so the cells before it keep their grades and no later test
cell passes by never running.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode

from nbgrader.preprocessors import Execute

ENV_VAR = "COURSE_SANDBOX"
# Error names this module writes into cells; grade.py reads them back to say what happened.
OUTPUT_LIMIT_ERROR = "OutputLimitExceeded"
KERNEL_DIED_ERROR = "KernelDied"
NOT_RUN_ERROR = "NotRun"


def bubblewrap() -> str | None:
    """The bwrap executable, if it is installed and can make namespaces here."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    probe = subprocess.run([path, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid",
                            "--die-with-parent", "true"], capture_output=True, timeout=30)
    return path if probe.returncode == 0 else None


# --------------------------------------------------------------------------------------------
# cgroups: memory and process caps that also cover every child the kernel starts
# --------------------------------------------------------------------------------------------
CGROUP_FS = Path("/sys/fs/cgroup")


@dataclass
class Cgroup:
    """One sandbox's cgroup: the directories holding it (one per v1 controller, or one v2)."""
    dirs: list[str]
    version: int

    @classmethod
    def create(cls, name: str, memory_bytes: int, max_processes: int) -> "Cgroup | None":
        """A new cgroup with these limits, or None where this process may not make one."""
        try:
            if (CGROUP_FS / "memory" / "cgroup.procs").is_file():     # v1 (also "hybrid")
                dirs = [CGROUP_FS / "memory" / "course-grader" / name,
                        CGROUP_FS / "pids" / "course-grader" / name]
                for d in dirs:
                    d.mkdir(parents=True, exist_ok=True)
                (dirs[0] / "memory.limit_in_bytes").write_text(str(memory_bytes))
                swap = dirs[0] / "memory.memsw.limit_in_bytes"         # only with swap accounting
                if swap.exists():
                    swap.write_text(str(memory_bytes))
                (dirs[1] / "pids.max").write_text(str(max_processes))
                return cls([str(d) for d in dirs], 1)
            if (CGROUP_FS / "cgroup.controllers").is_file():          # v2
                parent = CGROUP_FS / "course-grader"
                parent.mkdir(exist_ok=True)
                (parent / "cgroup.subtree_control").write_text("+memory +pids")
                d = parent / name
                d.mkdir(exist_ok=True)
                (d / "memory.max").write_text(str(memory_bytes))
                swap = d / "memory.swap.max"
                if swap.exists():
                    swap.write_text("0")
                (d / "pids.max").write_text(str(max_processes))
                return cls([str(d)], 2)
        except OSError:
            return None
        return None

    def procs_files(self) -> list[str]:
        return [str(Path(d) / "cgroup.procs") for d in self.dirs]

    def pids(self) -> set[int]:
        found = set()
        for f in self.procs_files():
            try:
                found.update(int(p) for p in Path(f).read_text().split())
            except OSError:
                pass
        return found

    def kill(self) -> None:
        """SIGKILL everything still in the cgroup (a fork bomb's orphans too), until it is empty."""
        for _ in range(100):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)

    def events(self) -> dict:
        """How often the limits were hit: {'oom_kills': n, 'process_limit_hits': n}."""
        def counters(path: Path) -> dict[str, int]:
            try:
                pairs = (line.split() for line in path.read_text().splitlines())
                return {k: int(v) for k, v in (p for p in pairs if len(p) == 2)}
            except (OSError, ValueError):
                return {}

        memory, pids = (Path(self.dirs[0]), Path(self.dirs[-1]))
        oom_file = "memory.oom_control" if self.version == 1 else "memory.events"
        return {"oom_kills": counters(memory / oom_file).get("oom_kill", 0),
                "process_limit_hits": counters(pids / "pids.events").get("max", 0)}

    def remove(self) -> None:
        self.kill()
        for d in self.dirs:
            try:
                Path(d).rmdir()
            except OSError:
                pass


# --------------------------------------------------------------------------------------------
# one submission's sandbox
# --------------------------------------------------------------------------------------------
@dataclass
class Sandbox:
    """Everything the kernel manager needs to start one submission's kernel in its sandbox."""
    scratch: str                       # this job's folder (hidden inside, except the sockets)
    hide: list[str] = field(default_factory=list)
    bwrap: str | None = None           # None: no namespaces (resource limits only)
    cgroup: Cgroup | None = None
    memory_bytes: int = 2 << 30
    max_processes: int = 128
    file_bytes: int = 64 << 20
    output_bytes: int = 1 << 20        # per cell, enforced by GuardedExecute

    @property
    def ipc_dir(self) -> Path:
        return Path(self.scratch) / "ipc"

    @property
    def workdir(self) -> Path:
        return Path(self.scratch) / "work"

    def save(self, path: Path) -> None:
        data = asdict(self)
        path.write_text(json.dumps(data, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "Sandbox":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("cgroup"):
            data["cgroup"] = Cgroup(**data["cgroup"])
        return cls(**data)

    def limits(self) -> list[str]:
        """prlimit options. Without a cgroup, address space and (for a non-root user, the only
        case the kernel enforces it) processes are capped here instead; root keeps no process cap."""
        opts = [f"--fsize={self.file_bytes}", "--core=0", "--nofile=1024"]
        if self.cgroup is None:
            opts.append(f"--as={self.memory_bytes}")
            if os.geteuid() != 0:
                opts.append(f"--nproc={self.max_processes}")
        return opts

    def wrap(self, kernel_cmd: list[str]) -> list[str]:
        """The kernel command, started inside the sandbox."""
        cmd = list(kernel_cmd)
        prlimit = shutil.which("prlimit")
        if prlimit:
            cmd = [prlimit, *self.limits(), "--", *cmd]
        if self.bwrap:
            fs = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
            for path in self.hide:
                if Path(path).is_dir():
                    fs += ["--tmpfs", path, "--remount-ro", path]
            work = str(self.workdir)
            # The grading run's scratch folder holds every job's files: hide it all, then give
            # back this job's sockets and a private working folder.
            fs += ["--tmpfs", str(Path(self.scratch).parent),
                   "--bind", str(self.ipc_dir), str(self.ipc_dir),
                   "--dir", work, "--chdir", work,
                   "--setenv", "HOME", work, "--setenv", "TMPDIR", work,
                   "--setenv", "MPLCONFIGDIR", work,
                   # ipykernel would take bubblewrap (process 1 in here) for init, as if its
                   # parent had died, and exit; --die-with-parent does that job instead.
                   "--unsetenv", "JPY_PARENT_PID"]
            cmd = [self.bwrap, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                   "--die-with-parent", "--cap-drop", "ALL", *fs, "--", *cmd]
        if self.cgroup is not None:
            # Join the cgroup before anything of the submission's runs: its children inherit it.
            join = 'for f in "$@"; do [ "$f" = -- ] && break; echo $$ > "$f" || exit 1; shift; done; shift; exec "$@"'
            cmd = ["/bin/sh", "-c", join, "sh", *self.cgroup.procs_files(), "--", *cmd]
        return cmd


# --------------------------------------------------------------------------------------------
# nbgrader's executor, with the sandboxed kernel, the output cap and the dead-kernel rule
# --------------------------------------------------------------------------------------------
class SandboxedKernelManager(AsyncKernelManager):
    """Starts the kernel inside the Sandbox named by $COURSE_SANDBOX (plain, when unset)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        path = os.environ.get(ENV_VAR)
        self.sandbox = Sandbox.load(path) if path else None
        if self.sandbox is not None and self.sandbox.bwrap:
            # No network inside, so the kernel's channels are Unix sockets in a folder it shares.
            self.transport = "ipc"
            self.ip = str(self.sandbox.ipc_dir / "kernel")
            self.connection_file = str(self.sandbox.ipc_dir / "kernel.json")

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        if self.sandbox is None:
            return cmd
        # An interrupt as a signal would reach bubblewrap, which dies of it and takes the kernel
        # with it; as a message, the kernel interrupts itself.
        self.kernel_spec.interrupt_mode = "message"
        return self.sandbox.wrap(cmd)


def error_output(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"{ename}: {evalue}"])


class GuardedExecute(Execute):
    """nbgrader's Execute with the sandboxed kernel, an output cap per cell and the dead-kernel rule."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(*args, **kwargs)
        path = os.environ.get(ENV_VAR)
        self.output_limit = Sandbox.load(path).output_bytes if path else 1 << 20

    def preprocess(self, nb, resources=None, km=None):
        self.kernel_died = False
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not cell.source.strip():
            return super().preprocess_cell(cell, resources, index)
        if self.kernel_died:
            cell.outputs = [error_output(NOT_RUN_ERROR, "not run: the kernel died in an earlier cell")]
            return cell, resources
        self.output_size, self.output_capped = 0, False
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self.kernel_died = True
            cell.outputs.append(error_output(
                KERNEL_DIED_ERROR, "the kernel died while running this cell (out of memory, a "
                "crash such as a segmentation fault, or killed); later cells were not run"))
            return cell, resources

    def output(self, outs, msg, display_id, cell_index):
        if self.output_capped:
            return None
        self.output_size += len(json.dumps(msg["content"]))
        if self.output_size > self.output_limit:
            self.output_capped = True
            outs.append(error_output(OUTPUT_LIMIT_ERROR, f"the cell printed more than "
                                     f"{self.output_limit:,} bytes: output cut and the cell stopped"))
            self.log.warning("output limit: interrupting the kernel")
            self._interrupt_soon()
            return None
        return super().output(outs, msg, display_id, cell_index)

    def _interrupt_soon(self):
        import asyncio

        from jupyter_core.utils import ensure_async

        asyncio.ensure_future(ensure_async(self.km.interrupt_kernel()))
