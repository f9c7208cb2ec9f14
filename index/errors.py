"""Errors raised at the edges of the index package, where inputs are checked."""

from __future__ import annotations


class FormulaInputError(ValueError):
    """Input to an index formula is unusable; ``field`` names the column or argument."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
