"""Peak memory of a benchmark run, polled from psutil in a background thread."""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterable

import psutil


def cmdline(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return ""


def rss(procs: Iterable[psutil.Process]) -> list[int]:
    out = []
    for p in {p.pid: p for p in procs}.values():
        try:
            out.append(p.memory_info().rss)
        except psutil.Error:
            pass
    return out


class PeakMemory:
    """``with PeakMemory(sample) as m: ...`` then ``m.peak``: the largest value ``sample()`` returned."""

    def __init__(self, sample: Callable[[], int], interval: float = 0.1):
        self.sample, self.interval = sample, interval
        self.peak, self._stop = 0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.sample())
            time.sleep(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
