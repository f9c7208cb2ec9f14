"""What a rejected value could have been: the rejection texts that name the allowed values.

A check whose allowed values depend on the commodity (units, currencies, the price band,
quality ranges and differentials, the listing date) has a text per commodity, made here
from the same :class:`~ingest.rules.FeedRules` tables the checks read, so a text never
disagrees with its check. ``None`` stands for a row whose commodity is unknown.
"""

from __future__ import annotations

from collections.abc import Callable

from ingest.rules import FeedRules, PairTable

Message = str | Callable[[int | None], str]
"""A rejection text, or a text per commodity position (None: no known commodity)."""


def _number(value: float) -> str:
    return f"{value:,.6g}".replace(",", "")


def _listed(keys: tuple, table: PairTable, k: int, accept) -> list[str]:
    width = len(keys)
    return [str(key) for j, key in enumerate(keys) if accept(table.values[k * width + j])]


class Allowed:
    """Per-commodity rejection texts for one set of feed rules."""

    def __init__(self, rules: FeedRules) -> None:
        self.rules = rules

    def _scalar(self, name: str, k: int):
        return self.rules.scalars[name][0][k]

    def _benchmark(self, k: int) -> str:
        return f"{self._scalar('spec_currency', k)} per {self._scalar('spec_unit', k)}"

    def commodities(self) -> list[str]:
        return sorted(self.rules.codes)

    def unit(self, k: int | None) -> str:
        if k is None:
            return "unit cannot be converted to the commodity's benchmark unit"
        units = _listed(self.rules.units.keys, self.rules.units, k, lambda f: f is not None)
        return (
            f"unit cannot be converted to {self.rules.codes[k]}'s benchmark unit"
            f" {self._scalar('spec_unit', k)}; allowed: {', '.join(units)}"
        )

    def currency(self, k: int | None) -> str:
        if k is None:
            return "currency cannot be converted to the commodity's benchmark currency"
        table = self.rules.currencies
        currencies = _listed(table.keys, table, k, lambda ok: bool(ok))
        return (
            f"currency cannot be converted to {self.rules.codes[k]}'s benchmark currency"
            f" {self._scalar('spec_currency', k)}; allowed: {', '.join(currencies)}"
        )

    def band(self, k: int | None) -> str:
        if k is None:
            return "normalised price is outside the commodity's sanity band"
        low, high = self._scalar("band_low", k), self._scalar("band_high", k)
        return (
            f"normalised price is outside {self.rules.codes[k]}'s sanity band; allowed:"
            f" {_number(low)} to {_number(high)} {self._benchmark(k)}, after unit, currency"
            " and quality normalisation"
        )

    def listing(self, k: int | None) -> str:
        if k is None:
            return "traded_at is before the commodity's listing date"
        return (
            f"traded_at is before {self.rules.codes[k]}'s listing date"
            f" {self._scalar('listed_on', k).isoformat()} (Beijing calendar day)"
        )

    def range_of(self, attribute: str) -> Message:
        lows, highs = self.rules.ranges[attribute]

        def text(k: int | None) -> str:
            if k is None or lows[k] is None:
                return f"{attribute} is outside the specification's accepted range"
            return (
                f"{attribute} is outside {self.rules.codes[k]}'s accepted range; allowed:"
                f" {_number(lows[k])} to {_number(highs[k])}"
            )

        return text

    def differentials_of(self, attribute: str) -> Message:
        table, _ = self.rules.differentials[attribute]

        def text(k: int | None) -> str:
            if k is None:
                return f"{attribute} has no differential in the commodity's specification"
            values = _listed(table.keys, table, k, lambda premium: premium is not None)
            return (
                f"{attribute} has no differential in {self.rules.codes[k]}'s specification;"
                f" allowed: {', '.join(values) or 'none'}"
            )

        return text
