"""What a long job (compute, replay, backtest) tells whoever watches it: the phase it is
in and, where it knows its size, how far it has gone. The command line shows it as a
progress bar (``cli.progress.Job``); a job nobody watches reports to :data:`SILENT`."""

from __future__ import annotations

from typing import Protocol


class Steps(Protocol):
    def phase(self, description: str) -> None:
        """A new step begins."""

    def expect(self, total: int, unit: str) -> None:
        """The step has ``total`` units of ``unit`` to do."""

    def advance(self, amount: int = 1) -> None:
        """``amount`` more units are done."""


class _Silent:
    def phase(self, description: str) -> None:
        pass

    def expect(self, total: int, unit: str) -> None:
        pass

    def advance(self, amount: int = 1) -> None:
        pass


SILENT: Steps = _Silent()
