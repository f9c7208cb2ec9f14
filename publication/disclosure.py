"""What an assessment's rationale discloses, and to whom.

Benchmark administrators publish aggregates; the contributors' individual trades stay
confidential (IOSCO Principle 9 asks for the rationale, not the trades). Anyone sees the
rule applied, the counts of trades used and excluded by each rule, the number of
contributing exchanges, the VWAP, the fallback and the methodology version. The volumes
by rule and the price range (highest, lowest, the exclusion's centre and band) only where
the window holds at least ``disclosure_min_trades`` trades from
``disclosure_min_exchanges`` exchanges, so that no single trade can be read back from the
aggregates. No trade id, no individual price, no exchange name. An exchange sees its own
trades, used or excluded with the rule; an administrator or auditor sees every trade.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

PRICE_RANGE = ("center", "scale", "band", "top_exchange_share")
"""Statistics that would show individual prices (or a dominant exchange) in a small window."""
TRADE_LISTS = ("trades_used", "excluded")


@dataclass(frozen=True)
class Audience:
    """Who asks: ``everything`` (administrator, auditor), or an exchange's own trades
    (``exchange``), or the aggregates alone (neither)."""

    everything: bool = False
    exchange: str | None = None

    @property
    def role(self) -> str:
        return "full" if self.everything else "exchange" if self.exchange else "aggregate"


PUBLIC = Audience()


def discloses(rationale: dict[str, Any], min_trades: int, min_exchanges: int) -> bool:
    """Does the window hold enough trades from enough exchanges for volumes and ranges?"""
    statistics = rationale.get("statistics") or {}
    trades = statistics.get("window_trades") or 0
    exchanges = statistics.get("exchanges") or 0
    return trades >= min_trades and exchanges >= min_exchanges


def _counts(trades: list[dict[str, Any]], rule_of) -> tuple[dict[str, int], dict[str, float]]:
    counts: Counter[str] = Counter()
    volumes: Counter[str] = Counter()
    for trade in trades:
        counts[rule_of(trade)] += 1
        volumes[rule_of(trade)] += float(trade.get("quantity") or 0.0)
    return dict(counts), dict(volumes)


def shown(
    rationale: dict[str, Any] | None,
    audience: Audience,
    *,
    min_trades: int,
    min_exchanges: int,
) -> dict[str, Any] | None:
    """The rationale as ``audience`` may see it."""
    if rationale is None or audience.everything:
        return rationale
    used, excluded = rationale.get("trades_used") or [], rationale.get("excluded") or []
    open_window = discloses(rationale, min_trades, min_exchanges)
    counts_used, volume_used = _counts(used, lambda _: "used")
    counts_excluded, volume_excluded = _counts(excluded, lambda t: t.get("rule", "excluded"))
    statistics = dict(rationale.get("statistics") or {})
    if not open_window:
        for name in (*PRICE_RANGE, "volume"):
            statistics.pop(name, None)
    out = {k: v for k, v in rationale.items() if k not in (*TRADE_LISTS, "statistics")}
    out["statistics"] = statistics
    out["counts_by_rule"] = {
        "used": rationale.get("trades_used_count", counts_used.get("used", 0)),
        **counts_excluded,
    }
    out["disclosure"] = {
        "min_trades": min_trades,
        "min_exchanges": min_exchanges,
        "volumes_and_ranges": open_window,
        "shown_to": audience.role,
    }
    if open_window:
        out["volume_by_rule"] = {**volume_used, **volume_excluded}
    if audience.exchange:
        out["own_trades_used"] = [t for t in used if t.get("exchange") == audience.exchange]
        out["own_trades_excluded"] = [t for t in excluded if t.get("exchange") == audience.exchange]
    return out
