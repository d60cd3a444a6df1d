"""course_lib.measure: the shape and sanity of timings (never absolute speed), memory measured against
tensors of known size, memory caps and their messages, and naming the machine."""
import math
import os
import types

import pytest
import torch

from course_lib import measure

MB = 1_000_000
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


# ---- naming the machine ----


def test_device_name_names_the_cpu_model_and_the_cores_this_process_may_use():
    name = measure.device_name("cpu")
    assert name.endswith(f"(cpu, {len(os.sched_getaffinity(0))} cores)")
    model = name.rsplit(" (cpu", 1)[0]
    if measure.CPUINFO.exists():
        assert f"model name\t: {model}" in measure.CPUINFO.read_text()
    assert model


def test_device_name_without_proc_cpuinfo_falls_back_to_platform(monkeypatch, tmp_path):
    monkeypatch.setattr(measure, "CPUINFO", tmp_path / "missing")
    monkeypatch.setattr(measure.platform, "system", lambda: "Linux")
    monkeypatch.setattr(measure.platform, "processor", lambda: "x86_64-ish")
    assert measure.device_name(torch.device("cpu")).startswith("x86_64-ish (cpu, ")


def test_unsupported_devices_are_refused_with_the_supported_ones_named():
    with pytest.raises(ValueError, match="cpu, cuda, mps, not 'meta'"):
        measure.device_name("meta")
    with pytest.raises(ValueError, match="not 'meta'"):
        measure.time_call(lambda: None, device="meta")


@needs_cuda
def test_cuda_device_name_and_synchronize():
    assert measure.device_name("cuda") == f"{torch.cuda.get_device_name()} (cuda)"
    measure.synchronize("cuda")


# ---- time ----


def test_timing_median_min_and_readable_repr():
    timing = measure.Timing([0.003, 0.001, 0.002])
    assert (timing.median, timing.min) == (0.002, 0.001)
    assert repr(timing) == "2 ms (median of 3)"
    assert repr(measure.Timing([2e-6, 3e-6], calls_per_repeat=1500)) == "2.5 µs (median of 2 repeats of 1,500 calls)"


@pytest.mark.parametrize("seconds, text", [(1.5, "1.5 s"), (0.00321, "3.21 ms"), (8.12e-7, "812 ns"),
                                           (4.5e-5, "45 µs"), (0.0, "0 ns")])
def test_format_seconds(seconds, text):
    assert measure.format_seconds(seconds) == text


@pytest.mark.parametrize("n, text", [(512, "512 B"), (4_194_304, "4.19 MB"), (12.9e9, "12.9 GB"),
                                     (2500, "2.5 kB"), (3e12, "3 TB")])
def test_format_bytes(n, text):
    assert measure.format_bytes(n) == text


class FakeClock:
    """A perf_counter that moves only when the timed function says so, in ticks of `resolution`."""

    def __init__(self, resolution: float = 0.0):
        self.now, self.resolution = 0.0, resolution

    def perf_counter(self) -> float:
        return self.now if not self.resolution else math.floor(self.now / self.resolution) * self.resolution


def test_time_call_warms_up_then_times_each_repeat(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(measure, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    durations = iter([1.0, 1.0, 0.005, 0.004, 0.006, 0.004, 0.005])  # two slow warm-up calls, then 5 repeats

    def call():
        clock.now += next(durations)

    timing = measure.time_call(call, warmup=2, repeats=5)
    assert timing.calls_per_repeat == 1
    assert timing.seconds == pytest.approx([0.005, 0.004, 0.006, 0.004, 0.005])
    assert timing.median == pytest.approx(0.005)
    with pytest.raises(StopIteration):  # exactly warmup + repeats calls were made
        call()


def test_time_call_loops_a_quick_call_and_divides(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(measure, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    calls = []

    def quick():
        calls.append(1)
        clock.now += 1e-4

    timing = measure.time_call(quick, warmup=1, repeats=3, min_seconds=0.002)
    assert timing.calls_per_repeat > 1
    assert timing.calls_per_repeat * 1e-4 >= 0.002
    assert timing.seconds == pytest.approx([1e-4] * 3)
    assert len(calls) == 1 + 1 + 3 * timing.calls_per_repeat  # warm-up, a lone call found too quick, repeats


def test_time_call_copes_with_a_clock_too_coarse_to_see_one_call(monkeypatch):
    clock = FakeClock(resolution=1e-3)
    monkeypatch.setattr(measure, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))

    def quick():
        clock.now += 1e-5

    timing = measure.time_call(quick, warmup=0, repeats=4, min_seconds=0.002)
    assert timing.calls_per_repeat >= 200
    assert timing.median == pytest.approx(1e-5, rel=0.5)  # within the clock's tick over the loop


def test_time_call_on_real_work_gives_sane_numbers():
    timing = measure.time_call(lambda: torch.ones(64, 64) @ torch.ones(64, 64), device="cpu", repeats=3)
    assert len(timing.seconds) == 3
    assert all(0 < s < 1 for s in timing.seconds)
    assert timing.min <= timing.median


@pytest.mark.parametrize("kwargs, message", [
    ({"warmup": -1}, "warmup"), ({"repeats": 0}, "repeats"), ({"repeats": 2.0}, "repeats"),
    ({"min_seconds": -0.1}, "min_seconds"),
])
def test_time_call_refuses_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        measure.time_call(lambda: None, **kwargs)


# ---- memory ----


def test_peak_memory_of_one_tensor_is_its_size():
    assert measure.peak_memory_bytes(lambda: torch.empty(1_000_000), "cpu") == pytest.approx(4 * MB, abs=4096)


def test_peak_memory_is_the_largest_running_total_not_the_sum_of_everything():
    def two_at_once_then_freed():
        a, b = torch.empty(1_000_000), torch.empty(500_000)  # 4 MB + 2 MB live together
        del a, b
        torch.empty(250_000)  # 1 MB, after they are gone

    def one_after_the_other():
        for _ in range(3):
            torch.empty(1_000_000)  # each 4 MB is freed before the next

    assert measure.peak_memory_bytes(two_at_once_then_freed, "cpu") == pytest.approx(6 * MB, abs=4096)
    assert measure.peak_memory_bytes(one_after_the_other, "cpu") == pytest.approx(4 * MB, abs=4096)


def test_peak_memory_counts_only_what_is_allocated_during_the_call():
    existing = torch.ones(1_000_000)
    assert measure.peak_memory_bytes(lambda: existing + 1, "cpu") == pytest.approx(4 * MB, abs=4096)
    assert measure.peak_memory_bytes(lambda: existing.sum(), "cpu") < 4096
    assert measure.peak_memory_bytes(lambda: None, "cpu") == 0


@needs_cuda
def test_peak_memory_on_cuda():
    def temporaries():
        a = torch.empty(1_000_000, device="cuda")
        b = torch.empty(500_000, device="cuda")
        del a, b
    assert measure.peak_memory_bytes(temporaries, "cuda") == pytest.approx(6 * MB, abs=1 << 20)
    assert measure.available_memory_bytes("cuda") > 0


def test_available_memory_reads_memavailable(monkeypatch, tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16384 kB\nMemFree:         1024 kB\nMemAvailable:    4096 kB\n")
    monkeypatch.setattr(measure, "MEMINFO", meminfo)
    assert measure.available_memory_bytes("cpu") == 4096 * 1024


def test_available_memory_without_proc_meminfo_asks_psutil(monkeypatch, tmp_path):
    psutil = pytest.importorskip("psutil")
    monkeypatch.setattr(measure, "MEMINFO", tmp_path / "missing")
    monkeypatch.setattr(psutil, "virtual_memory", lambda: types.SimpleNamespace(available=123_456_789))
    assert measure.available_memory_bytes("cpu") == 123_456_789


def test_available_memory_of_this_machine_is_positive_and_at_most_its_total():
    available = measure.available_memory_bytes("cpu")
    assert available > 0
    if measure.MEMINFO.exists():
        total_kib = int(measure.MEMINFO.read_text().split("MemTotal:")[1].split()[0])
        assert available <= total_kib * 1024


def test_cap_sizes_keeps_what_fits_and_names_what_it_drops(monkeypatch):
    monkeypatch.setattr(measure, "available_memory_bytes", lambda device: 4 * MB)
    kept, message = measure.cap_sizes([100, 2000, 500, 1000], lambda n: 4 * n * n, "cpu")
    assert kept == [100, 500]  # 40 kB and exactly the 1 MB budget (a quarter of 4 MB)
    assert message.startswith("Skipped 2000 (needs 16 MB), 1000 (needs 4 MB): over 25% of the 4 MB available on ")
    assert measure.cap_sizes([100, 500], lambda n: 4 * n * n, "cpu") == ([100, 500], "")
    assert measure.cap_sizes([1000], lambda n: 4 * n * n, "cpu", fraction=1.0) == ([1000], "")


def test_cap_sizes_on_this_machine_and_bad_fractions():
    kept, message = measure.cap_sizes([16, 10**9], lambda n: 4 * n * n, "cpu")
    assert kept == [16]
    assert "Skipped 1000000000 (needs 4 EB): over 25% of the " in message
    for fraction in (0, 1.5, -0.25):
        with pytest.raises(ValueError, match="fraction"):
            measure.cap_sizes([1], lambda n: n, "cpu", fraction=fraction)


# ---- FLOP/s ----


def test_matmul_flops_per_second_is_positive_and_finite():
    flops = measure.matmul_flops_per_second(64, "cpu", repeats=2)
    assert 0 < flops < math.inf


@pytest.mark.parametrize("n, dtype, message", [(0, torch.float32, "n must"), (2.5, torch.float32, "n must"),
                                               (16, torch.int32, "floating-point")])
def test_matmul_flops_per_second_refuses_bad_input(n, dtype, message):
    with pytest.raises(ValueError, match=message):
        measure.matmul_flops_per_second(n, "cpu", dtype=dtype)


def test_peak_matmul_flops_reports_the_best_size_and_skips_sizes_too_big(capsys):
    flops, size = measure.peak_matmul_flops("cpu", sizes=[32, 64])
    assert 0 < flops < math.inf and size in (32, 64)
    flops, size = measure.peak_matmul_flops("cpu", sizes=[32, 10**7])
    assert size == 32
    assert "Skipped 10000000 (needs 1.2 PB)" in capsys.readouterr().out
    with pytest.raises(ValueError, match="none of the sizes"):
        measure.peak_matmul_flops("cpu", sizes=[10**7])
    with pytest.raises(ValueError, match="empty"):
        measure.peak_matmul_flops("cpu", sizes=[])


def test_default_matmul_sizes_shrink_under_course_fast(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "0")
    full = measure._default_matmul_sizes(torch.device("cpu"))
    monkeypatch.setenv("COURSE_FAST", "1")
    fast = measure._default_matmul_sizes(torch.device("cpu"))
    assert max(full) <= 2048 and max(fast) < max(full)
