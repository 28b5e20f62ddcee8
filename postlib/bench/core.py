"""Measuring one function: wall-clock time, peak memory, and where it ran.

* ``time_fn`` — the median of ``repeats`` calls after ``warmup`` calls. On CPU
  ``time.perf_counter``; on CUDA a pair of CUDA events around each call, read
  after ``torch.cuda.synchronize()`` (kernel launches are asynchronous, so a
  host clock would time the launch, not the work).
* ``peak_memory`` — *measured*, never computed from shapes. On CUDA the
  caching allocator keeps a high-water mark (``max_memory_allocated``). On CPU
  there is no such counter, so we record every allocation and free that
  PyTorch's allocator makes during the call with ``torch.profiler``
  (``profile_memory=True``), sort the events by time and take the maximum of
  the running sum of their sizes. Memory freed inside the call is subtracted
  when it is freed, so it is never counted twice, and a block allocated before
  the call and freed inside it can only lower the sum (the peak is clamped at
  zero). ``tests/bench/test_core.py`` checks it on tensors of known size.
* ``provenance`` — the device, versions and date every recorded result carries.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import statistics
import sys
import time
from typing import Callable

import torch

from .._checks import check_positive_int


def _device_type(device) -> str:
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        kind = None
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda' (optionally 'cuda:<index>'), got {device!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available on this machine; use device='cpu'")
    return kind


def _cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(device=None) -> dict:
    """Where and when a measurement ran: device, library versions, date (UTC).

    ``device`` defaults to CUDA when available, else CPU. On CPU the load
    average is recorded too: on a shared machine it says how busy the cores were.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    kind = _device_type(device)
    try:
        import triton
        triton_version = triton.__version__
    except Exception:  # triton is optional on CPU-only installs
        triton_version = None
    info = {
        "device_type": kind,
        "torch": torch.__version__,
        "triton": triton_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if kind == "cuda":
        dev = torch.device(device)
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        info["device_name"] = props.name
        info["capability"] = f"{props.major}.{props.minor}"
        info["gpu_memory_bytes"] = int(props.total_memory)
        info["cuda"] = torch.version.cuda
    else:
        info["device_name"] = _cpu_name()
        info["torch_threads"] = torch.get_num_threads()
        if hasattr(os, "getloadavg"):
            info["load_avg_1m_5m_15m"] = [round(x, 2) for x in os.getloadavg()]
    return dict(sorted(info.items()))


def time_fn(fn: Callable[[], object], *, repeats: int = 5, warmup: int = 1, device="cpu") -> float:
    """Median wall-clock time of ``fn()`` in milliseconds.

    ``warmup`` calls are made first and discarded (allocator warm-up, Triton
    compilation, lazy initialisation); the median of ``repeats`` calls is robust
    to the occasional slow call on a shared machine.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a zero-argument callable, got {type(fn).__name__}")
    check_positive_int(repeats, "repeats")
    check_positive_int(warmup, "warmup", minimum=0)
    kind = _device_type(device)
    for _ in range(warmup):
        fn()
    times = []
    if kind == "cuda":
        torch.cuda.synchronize(device)
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end))
    else:
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return float(statistics.median(times))


def peak_memory(fn: Callable[[], object], *, device="cpu") -> int:
    """Bytes at the peak of ``fn()`` above the memory in use when it started (measured).

    The result of ``fn()`` is kept alive until the measurement ends, so memory
    it returns counts toward the peak.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a zero-argument callable, got {type(fn).__name__}")
    kind = _device_type(device)
    if kind == "cuda":
        torch.cuda.synchronize(device)
        baseline = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        result = fn()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - baseline
        del result
        return max(int(peak), 0)
    return _cpu_peak_memory(fn)


def _cpu_peak_memory(fn: Callable[[], object], attempts: int = 3) -> int:
    # Now and then (seen about once per full test run) the profiler hands back an empty event tree for
    # a call that certainly allocated; a measurement with no allocation event at all is taken again, so
    # a missed trace is not reported as "0 bytes". A call that truly allocates nothing still gives 0.
    for _ in range(attempts):
        events = _cpu_allocation_trace(fn)
        if events:
            break
    running = peak = 0
    for _, size in events:
        running += size  # frees are recorded with negative sizes
        peak = max(peak, running)
    return int(peak)


def _cpu_allocation_trace(fn: Callable[[], object]) -> list[tuple[int, int]]:
    from torch.profiler import ProfilerActivity, profile

    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with _quiet_stderr():
        prof.start()
    try:
        result = fn()
    finally:
        with _quiet_stderr():
            prof.stop()
    del result
    return sorted(_allocation_events(prof), key=lambda e: e[0])


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 while the profiler starts and stops.

    Kineto writes a status line to the C-level stderr on every start and stop,
    which would interleave with progress bars; ``fn`` itself runs outside this.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _allocation_events(prof) -> list[tuple[int, int]]:
    """(time_ns, bytes) of every CPU allocation (+) and free (−) the profiler saw.

    The profiler's event tree holds one node per allocator call; the public
    ``FunctionEvent`` list folds allocations into the op that made them and
    loses their order, so it cannot give a peak.
    """
    from torch._C._profiler import _EventType

    found = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        if node.tag == _EventType.Allocation:
            fields = node.extra_fields
            if torch.device(fields.device).type == "cpu":
                found.append((node.start_time_ns, int(fields.alloc_size)))
        stack.extend(node.children)
    return found
