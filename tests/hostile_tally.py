"""The tally of the hostile suite (tests/hostile/): inputs a stranger or an attacker controls, driven through the CLI.

Each test names the hostile inputs it tries (``hostile.tried(...)``) and the legitimate
documents that travelled beside them (``hostile.kept(expected, got)``); the run ends with
one line, the figure the README quotes:

    hostile inputs tried: N; survived: N; documents lost: 0

An input is survived when its test passed: the stage counted it with a reason and went on,
or refused it with one clear line, and nothing outside the root changed.
"""

from __future__ import annotations

import pytest

_TALLY = {"tried": 0, "survived": 0, "lost": 0}


class Hostile:
    def __init__(self):
        self.inputs: list[str] = []
        self.lost = 0

    def tried(self, *names: str) -> None:
        self.inputs += names

    def kept(self, expected: int, got: int) -> None:
        self.lost += max(0, expected - got)


@pytest.fixture
def hostile(request):
    h = Hostile()
    yield h
    _TALLY["tried"] += len(h.inputs)
    _TALLY["lost"] += h.lost
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.passed:
        _TALLY["survived"] += len(h.inputs)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.rep_call = rep


def pytest_terminal_summary(terminalreporter):
    if _TALLY["tried"]:
        terminalreporter.write_line(
            f"hostile inputs tried: {_TALLY['tried']}; survived: {_TALLY['survived']}; documents lost: {_TALLY['lost']}"
        )
