"""One line saying where a dedup run is: which phase, and how far through its parts.

``run_dedup`` reports events (``plan``, ``begin``, and each phase's results); this turns
them into the line ``webmill dedup`` and ``webmill run`` keep redrawn.
"""

from __future__ import annotations

import time

PHASES = {
    "sign": "signing (MinHash)",
    "url": "joining URL duplicates",
    "exact": "grouping exact duplicates",
    "near": "verifying near-duplicate candidates",
    "components": "connecting clusters",
    "output": "writing documents",
}


# a finished phase's result: (key in its report, what the number counts)
RESULTS = {
    "url": ("edges", "URL edges"),
    "exact": ("members", "exact members"),
    "near": ("checked", "pairs verified"),
    "components": ("clusters", "clusters"),
}


class DedupProgress:
    def __init__(self) -> None:
        self.t0 = time.time()
        self.totals = {"sign": 0, "output": 0}
        self.parts = {"sign": 0, "output": 0}
        self.docs = {"sign": 0, "output": 0}
        self.phase = "sign"
        self.done: list[str] = []

    def update(self, event: str, info: dict) -> str:
        """The line after ``event``."""
        if event == "plan":
            self.totals = {"sign": info["sign"], "output": info["output"]}
        elif event == "begin":
            self.phase = info["phase"]
        elif event in self.parts:
            self.phase = event
            self.parts[event] += 1
            self.docs[event] += int(info.get("docs", info.get("documents_in", 0)) or 0)
        elif event in RESULTS:
            key, what = RESULTS[event]
            value = info.get(key)
            self.done.append(f"{value:,} {what}" if isinstance(value, int) else what)
        return self.line()

    def line(self) -> str:
        elapsed = time.time() - self.t0
        text = f"dedup: {PHASES.get(self.phase, self.phase)}"
        if self.phase in self.parts and self.totals[self.phase]:
            docs = self.docs[self.phase]
            text += f", {self.parts[self.phase]:,}/{self.totals[self.phase]:,} parts"
            if self.phase == "sign":  # (a part whose output the shuffle already wrote reports no count)
                text += f", {docs:,} documents"
        if self.done:
            text += f" ({'; '.join(self.done)})"
        return text + f", {elapsed:,.0f}s"
