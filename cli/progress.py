"""Progress of a long command (ingest, compute, replay, backtest): a Rich progress bar on a
terminal, plain lines otherwise (a log, a pipe, a CI job), always on stderr.

A job with a known size (rows of a file) advances a bar to its total; one that reports
nothing until it ends shows a pulsing bar and the time elapsed, and its phases as they
change. Without a terminal each start, phase, advance (at most one line a second, and
every tenth of the total) and end is one line."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

PLAIN_INTERVAL_SECONDS = 1.0


def err_console() -> Console:
    return Console(stderr=True)


def on_terminal(console: Console) -> bool:
    """A bar only when both the operator's screen (stderr) and stdout are a terminal: a
    redirected or captured command gets plain lines."""
    return console.is_terminal and sys.stdout.isatty()


class Job:
    """One job's progress: :meth:`advance` by units done, :meth:`phase` for a new step."""

    def __init__(
        self, name: str, total: int | None, unit: str, console: Console, bar: Progress | None
    ) -> None:
        self.name, self.total, self.unit = name, total, unit
        self.done = 0
        self.started = time.perf_counter()
        self._console, self._bar = console, bar
        self._task = bar.add_task(name, total=total) if bar is not None else None
        self._last_line = 0.0
        self._last_tenth = 0

    def _line(self, text: str) -> None:
        self._console.print(f"{self.name}: {text}", highlight=False, soft_wrap=True)

    def finish(self) -> None:
        self._line(f"done in {self.seconds:.1f}s")

    def advance(self, amount: int = 1) -> None:
        self.done += amount
        if self._bar is not None:
            self._bar.advance(self._task, amount)
            return
        now = time.perf_counter()
        tenth = 10 * self.done // self.total if self.total else 0
        if tenth > self._last_tenth or now - self._last_line >= PLAIN_INTERVAL_SECONDS:
            self._last_line, self._last_tenth = now, tenth
            of = f"/{self.total:,}" if self.total else ""
            self._line(f"{self.done:,}{of} {self.unit}".rstrip())

    def expect(self, total: int, unit: str) -> None:
        """From now on the job counts ``total`` units of ``unit``, from zero."""
        self.total, self.unit, self.done, self._last_tenth = total, unit, 0, 0
        if self._bar is not None:
            self._bar.update(self._task, total=total, completed=0)
        else:
            self._line(f"{total:,} {unit} to do")

    def phase(self, description: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=f"{self.name}: {description}")
        else:
            self._line(description)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


@contextmanager
def progress(
    name: str, *, total: int | None = None, unit: str = "", console: Console | None = None
) -> Iterator[Job]:
    """The progress of the job ``name`` (``total`` units of ``unit``, or unknown) while the
    block runs; on a terminal the bar is removed at the end and a one-line summary left."""
    console = console or err_console()
    if not on_terminal(console):
        job = Job(name, total, unit, console, None)
        size = f" ({total:,} {unit})".replace(" )", ")") if total is not None else ""
        job.phase(f"started{size}")
        yield job
        job.finish()
        return
    columns = [SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn()]
    if total is not None:
        columns += [MofNCompleteColumn(), TimeRemainingColumn()]
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        job = Job(name, total, unit, console, bar)
        yield job
    job.finish()
