"""A Dask cluster on this machine, for `grade --scheduler` without a real cluster: a scheduler and
worker processes on 127.0.0.1, each started from the course copy at `root` as the instructor's
guide says for a real one (that copy's `autograder` importable, one thread per worker). The tests
and bench/grading.py grade through it."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path


@contextlib.contextmanager
def local_cluster(root: Path, workers: int, logs: Path):
    """Start the scheduler and `workers` workers; yield the scheduler's address. Every process is
    stopped on the way out; their logs go to `logs`."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONPATH=str(root))
    logs.mkdir(parents=True, exist_ok=True)
    procs = []

    def start(name: str, *args: str) -> None:
        with (logs / f"{name}.log").open("wb") as log:
            procs.append(subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=root, env=env,
                                          stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True))

    try:
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")
        for i in range(workers):
            start(f"worker{i}", "worker", address, "--host", "127.0.0.1", "--nworkers", "1",
                  "--nthreads", "1", "--no-dashboard", "--local-directory", str(logs / f"worker{i}"))
        from distributed import Client

        with Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address
    finally:
        for proc in reversed(procs):  # the workers (each a nanny and its worker), then the scheduler
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
