"""Prints the fault matrix table after the session (fault, rows, created, duplicates, lost, ...)."""

from __future__ import annotations

import pytest

from tests.reliability.matrix import TABLE, format_table


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The table of every matrix case that ran in this session (none: nothing printed)."""
    if not TABLE:
        return
    terminalreporter.section("fault matrix")
    terminalreporter.write_line(format_table(TABLE))
