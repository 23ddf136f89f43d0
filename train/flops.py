"""Peak FLOP/s of the device a run is on, read from the device (for the MFU estimate)."""

from __future__ import annotations

import os
import subprocess

import torch

# dense bf16/fp16 tensor-core FLOPs per clock per SM, by compute capability
CUDA_FLOPS_PER_CLOCK_PER_SM = {
    (7, 0): 1024,
    (7, 5): 512,
    (8, 0): 2048,
    (8, 6): 512,
    (8, 7): 512,
    (8, 9): 512,
    (9, 0): 4096,
    (10, 0): 8192,
    (12, 0): 1024,
}


def peak_flops(device: torch.device) -> float | None:
    """FLOP/s the device could do at best; None when it cannot be told."""
    if device.type == "cuda":
        return _cuda_peak(device)
    if device.type == "cpu":
        return _cpu_peak()
    return None


def _cuda_peak(device: torch.device) -> float | None:
    props = torch.cuda.get_device_properties(device)
    per_sm = CUDA_FLOPS_PER_CLOCK_PER_SM.get((props.major, props.minor))
    clock_khz = getattr(props, "clock_rate", None)
    if not clock_khz:
        try:
            out = subprocess.run(
                ["nvidia-smi", f"--id={device.index or 0}", "--query-gpu=clocks.max.sm", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=10,
            )
            clock_khz = float(out.stdout.strip().splitlines()[0]) * 1000
        except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
            return None
    if per_sm is None:
        return None
    return props.multi_processor_count * clock_khz * 1e3 * per_sm


def _cpu_peak() -> float | None:
    """Threads × max clock × fp32 FLOPs per cycle from the vector units the CPU reports."""
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return None
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith(("flags", "Features"))), [])
    per_cycle = 64 if "avx512f" in flags else 32 if ("avx2" in flags and "fma" in flags) else 16 if "asimd" in flags else 8
    hz = None
    try:
        hz = int(open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read()) * 1e3
    except (OSError, ValueError):
        mhz = [float(line.split(":")[1]) for line in info.splitlines() if line.startswith("cpu MHz")]
        hz = max(mhz) * 1e6 if mhz else None
    if not hz:
        return None
    return min(torch.get_num_threads(), os.cpu_count() or 1) * hz * per_cycle
