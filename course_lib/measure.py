"""Measuring on the learner's own machine: time, memory and FLOP/s, the same way in every notebook.

    timing = time_call(lambda: a @ b, device=device)   # warm-up, synchronised repeats, median
    extra = peak_memory_bytes(lambda: attention(q, k, v), device)
    sizes, message = cap_sizes([1024, 4096, 16384], lambda n: 4 * n * n, device)

GPUs run asynchronously: a kernel launch returns before the work is done, so every timing waits
for the device (synchronize) before starting and before stopping the clock. Every plot is labelled
with device_name(device), since the numbers belong to that machine.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch.profiler import ProfilerActivity, profile

from course_lib.device import pick
from course_lib.validation import is_whole

MEMINFO = Path("/proc/meminfo")
CPUINFO = Path("/proc/cpuinfo")
SUPPORTED_DEVICES = ("cpu", "cuda", "mps")


def _as_device(device) -> torch.device:
    device = torch.device(device)
    if device.type not in SUPPORTED_DEVICES:
        raise ValueError(f"measuring supports the devices {', '.join(SUPPORTED_DEVICES)}, not {device.type!r}")
    return device


# ---- naming the machine -------------------------------------------------------------------


def bench_arguments(description: str, steps: int) -> tuple[argparse.Namespace, torch.device]:
    """The options of a training benchmark (--device, --steps), parsed, and the device they name,
    after printing machine_summary for it."""
    from course_lib.device import get_device

    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", help="cpu, mps, cuda or cuda:N (default: the course's choice)")
    parser.add_argument("--steps", type=int, default=steps, help=f"timed steps (default {steps})")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    device = torch.device(args.device) if args.device else get_device()
    print(machine_summary(device))
    return args, device


def machine_summary(device) -> str:
    """One line for a benchmark's header: what runs it, how busy the machine is, torch and its threads
    (busy cores slow PyTorch several-fold, so a figure without the load is hard to read)."""
    load = f"load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "load average unknown"
    return (f"device: {device_name(device)}; {load} on {os.cpu_count()} cores; torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads")


def device_name(device) -> str:
    """What ran the measurement, for the title of every plot: "NVIDIA H200 (cuda)",
    "AMD EPYC 7R13 Processor (cpu, 8 cores)", "Apple M2 Pro (mps)"."""
    device = _as_device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (cuda)"
    if device.type == "mps":
        return f"{_cpu_model()} (mps)"  # the GPU is part of the Apple chip that the CPU names
    return f"{_cpu_model()} (cpu, {_cpu_cores()} cores)"


def _cpu_model() -> str:
    if CPUINFO.exists():
        for line in CPUINFO.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    if platform.system() == "Darwin":
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                  text=True, check=True, timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _cpu_cores() -> int:
    # The cores this process may run on: a container or a batch job often gets fewer than the chip has.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# ---- time ---------------------------------------------------------------------------------


def synchronize(device) -> None:
    """Wait until the device has finished the work queued so far (a no-op on the CPU)."""
    device = _as_device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def format_seconds(seconds: float) -> str:
    """A duration with a readable unit: "812 ns", "3.21 ms", "1.50 s"."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


@dataclass
class Timing:
    """Seconds per call, one value per timed repeat (each the average of calls_per_repeat calls)."""

    seconds: list[float]
    calls_per_repeat: int = 1

    @property
    def median(self) -> float:
        """What notebooks report: robust to a repeat slowed down by something else on the machine."""
        return statistics.median(self.seconds)

    @property
    def min(self) -> float:
        return min(self.seconds)

    def __repr__(self) -> str:
        repeats = (f"{len(self.seconds)}" if self.calls_per_repeat == 1
                   else f"{len(self.seconds)} repeats of {self.calls_per_repeat:,} calls")
        return f"{format_seconds(self.median)} (median of {repeats})"


def time_call(fn: Callable[[], object], *, device=None, warmup: int = 1, repeats: int = 5,
              min_seconds: float = 0.002) -> Timing:
    """Time fn(): `warmup` untimed calls, then `repeats` timed measurements, synchronised with the device.

    A measurement must last at least min_seconds: when one call is quicker, each measurement runs fn
    in a loop of calls_per_repeat calls and divides, so a call of a microsecond is not lost in the
    clock's and the synchronisation's own cost (finding that count takes a few more quick loops).
    device=None times without synchronising (CPU work).
    """
    if not (is_whole(warmup) and warmup >= 0):
        raise ValueError(f"warmup must be a whole number >= 0, got {warmup!r}")
    if not (is_whole(repeats) and repeats >= 1):
        raise ValueError(f"repeats must be a whole number >= 1, got {repeats!r}")
    if not min_seconds >= 0:
        raise ValueError(f"min_seconds must be >= 0, got {min_seconds!r}")
    device = None if device is None else _as_device(device)

    for _ in range(warmup):
        fn()
    calls, elapsed = 1, _elapsed(fn, device, 1)
    while elapsed < min_seconds:
        # Aim 20% past min_seconds, so one more measurement usually suffices; x10 if the clock saw 0.
        calls = calls * 10 if elapsed == 0 else max(calls + 1, math.ceil(calls * 1.2 * min_seconds / elapsed))
        elapsed = _elapsed(fn, device, calls)
    # The measurement that reached min_seconds is the first repeat; the quicker ones were warm-up.
    seconds = [elapsed / calls] + [_elapsed(fn, device, calls) / calls for _ in range(repeats - 1)]
    return Timing(seconds, calls)


def _elapsed(fn, device, calls: int) -> float:
    if device is not None:
        synchronize(device)
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    if device is not None:
        synchronize(device)
    return time.perf_counter() - started


# ---- memory -------------------------------------------------------------------------------


def format_bytes(n: float) -> str:
    """A size with a readable unit, powers of 1000: "512 B", "4.19 MB", "12.9 GB"."""
    for unit, scale in (("EB", 1e18), ("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def peak_memory_bytes(fn: Callable[[], object], device) -> int:
    """The extra memory allocated at the peak while fn() runs, beyond what was allocated before.

    Counts tensors fn creates, its output and temporaries freed inside included, the way torch's
    allocator sees them (memory that libraries such as oneDNN allocate on their own is not seen):
    - cuda: torch's peak statistic, reset just before the call;
    - cpu: torch's profiler records every allocation and free in time order; the peak is the
      maximum of their running sum. It cannot see fn free a tensor made before the call (and warns
      so), which can only make the result larger. The first profiled call in a process takes a
      few seconds more.
    - mps: torch has no peak statistic there, so this is what fn leaves allocated (its output),
      a lower bound that misses temporaries freed inside fn.
    """
    device = _as_device(device)
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        result = fn()
        synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - before
    elif device.type == "mps":
        synchronize(device)
        before = torch.mps.current_allocated_memory()
        result = fn()
        synchronize(device)
        peak = torch.mps.current_allocated_memory() - before
    else:
        with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
            result = fn()
        peak = _peak_of_running_sum(profiler)
    del result  # kept alive until here, so that fn's output counts
    return max(0, int(peak))


@contextmanager
def _quiet_stderr():
    """Silence file descriptor 2: torch's profiler (kineto) writes "profiler_start" and
    "profiler_stop" lines straight to it on every run, and Jupyter shows them in the notebook."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _peak_of_running_sum(profiler: profile) -> int:
    # The flat list of kineto events holds one "[memory]" event per allocation (+bytes) and per free
    # (-bytes). torch.profiler's table view instead folds them into the ops that made them.
    changes = sorted((event for event in profiler.profiler.kineto_results.events()
                      if event.name() == "[memory]" and event.device_type() == torch.autograd.DeviceType.CPU),
                     key=lambda event: event.start_ns())
    allocated = peak = 0
    for event in changes:
        allocated += event.nbytes()
        peak = max(peak, allocated)
    return peak


def available_memory_bytes(device) -> int:
    """Memory the device can still give out now, in bytes.

    - cpu: MemAvailable of /proc/meminfo on Linux, else psutil's estimate (macOS, Windows);
    - cuda: the GPU's free memory plus what torch's allocator holds in its cache but does not use;
    - mps: an estimate: Metal's recommended working-set size minus what the driver has allocated,
      and at most the system's available memory, which the Apple GPU shares.
    """
    device = _as_device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if device.type == "mps":
        gpu = torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory()
        return max(0, min(gpu, _system_available_bytes()))
    return _system_available_bytes()


def _system_available_bytes() -> int:
    if MEMINFO.exists():
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # the kernel writes kB and means KiB
    import psutil  # installed with Jupyter; only needed off Linux

    return psutil.virtual_memory().available


def cap_sizes(sizes: Sequence[int], bytes_needed: Callable[[int], float], device,
              fraction: float = 0.25) -> tuple[list[int], str]:
    """The sizes whose bytes_needed(size) fits in `fraction` of the memory available on device.

    Returns (kept sizes, in the given order; a message naming each size dropped, what it would need
    and what is available, or "" when every size fits). The margin leaves room for everything else
    the machine runs, so a measurement never pushes it into swapping or out-of-memory.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    available = available_memory_bytes(device)
    budget = fraction * available
    kept, dropped = [], []
    for size in sizes:
        needed = bytes_needed(size)
        if needed <= budget:
            kept.append(size)
        else:
            dropped.append(f"{size} (needs {format_bytes(needed)})")
    if not dropped:
        return kept, ""
    message = (f"Skipped {', '.join(dropped)}: over {fraction:.0%} of the {format_bytes(available)} "
               f"available on {device_name(device)}, the most a measurement here may take.")
    return kept, message


# ---- FLOP/s -------------------------------------------------------------------------------


def matmul_flops_per_second(n: int, device, dtype: torch.dtype = torch.float32, repeats: int = 5) -> float:
    """Measured FLOP/s of an (n, n) @ (n, n) matmul: its 2·n³ FLOPs over the median time of a call."""
    if not (is_whole(n) and n >= 1):
        raise ValueError(f"n must be a whole number >= 1, got {n!r}")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point type such as torch.float32, got {dtype}")
    device = _as_device(device)
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    product = torch.empty(n, n, device=device, dtype=dtype)
    # Into a ready output tensor, so the time is the multiplication's and not the allocator's.
    timing = time_call(lambda: torch.matmul(a, b, out=product), device=device, repeats=repeats)
    return 2 * n**3 / timing.median


def _default_matmul_sizes(device: torch.device) -> tuple[int, ...]:
    # Small matrices cannot keep every core busy, and big ones take long on a CPU: on 2 cores 1536
    # takes about 0.15 s a call, the whole default set about a second.
    if device.type == "cpu":
        return pick((256, 512, 1024, 1536), fast=(128, 256, 512))
    return pick((1024, 2048, 4096, 8192), fast=(512, 1024, 2048))


def peak_matmul_flops(device, dtype: torch.dtype = torch.float32,
                      sizes: Sequence[int] | None = None) -> tuple[float, int]:
    """The chip's measured peak: the best matmul FLOP/s over a few sizes, and the size that reached it.

    Default sizes depend on the device (and shrink under COURSE_FAST=1); sizes whose three matrices
    would not fit in a quarter of the available memory are skipped, with a printed message.
    """
    device = _as_device(device)
    sizes = list(sizes) if sizes is not None else list(_default_matmul_sizes(device))
    if not sizes:
        raise ValueError("sizes is empty: give at least one matrix size")
    element_bytes = torch.empty(0, dtype=dtype).element_size()
    kept, message = cap_sizes(sizes, lambda n: 3 * n * n * element_bytes, device)
    if message:
        print(message)
    if not kept:
        raise ValueError(f"none of the sizes {sizes} fits in memory here; try smaller ones")
    return max((matmul_flops_per_second(n, device, dtype, repeats=3), n) for n in kept)
