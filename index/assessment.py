"""Checked wrapper around the assessment kernels: per commodity and window, the statistics
the methodology's assessment rules need (lot filter, outlier exclusion, VWAP, sufficiency).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from core.errors import InvalidInput
from core.methodology import CommodityRule
from index.kernels import assessment as kernel

MAX_EXCHANGES = 256
CHUNKS_PER_THREAD = 8

SHORTFALL_TESTS = {
    kernel.SHORT_TRADES: "min_trades",
    kernel.SHORT_VOLUME: "min_volume",
    kernel.SHORT_EXCHANGES: "min_exchanges",
    kernel.SHARE_ABOVE_CAP: "max_exchange_share",
    kernel.PARTICIPANT_ABOVE_CAP: "max_participant_share",
}


@dataclass(frozen=True)
class KernelParameters:
    """The assessment rules of C commodities as arrays, one slot per commodity."""

    min_lot: np.ndarray
    exclusion: np.ndarray
    k: np.ndarray
    mad_scale: np.ndarray
    min_trades: np.ndarray
    min_volume: np.ndarray
    min_exchanges: np.ndarray
    max_share: np.ndarray
    scale_floor: np.ndarray | None = None
    exclude_affiliated: np.ndarray | None = None
    max_participant_share: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.min_lot.size
        defaults = {
            "scale_floor": np.zeros(n),
            "exclude_affiliated": np.zeros(n, dtype=np.bool_),
            "max_participant_share": np.ones(n),
        }
        for name, default in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)

    @classmethod
    def from_rules(cls, rules: Sequence[CommodityRule]) -> KernelParameters:
        return cls(
            min_lot=np.array([r.min_lot for r in rules], dtype=np.float64),
            exclusion=np.array(
                [kernel.EXCLUSION_MAD if r.exclusion == "mad" else 0 for r in rules],
                dtype=np.int64,
            ),
            k=np.array([r.k for r in rules], dtype=np.float64),
            mad_scale=np.array([r.mad_scale for r in rules], dtype=np.float64),
            min_trades=np.array([r.min_trades for r in rules], dtype=np.int64),
            min_volume=np.array([r.min_volume for r in rules], dtype=np.float64),
            min_exchanges=np.array([r.min_exchanges for r in rules], dtype=np.int64),
            max_share=np.array([r.max_exchange_share for r in rules], dtype=np.float64),
            scale_floor=np.array([r.scale_floor for r in rules], dtype=np.float64),
            exclude_affiliated=np.array([r.exclude_affiliated for r in rules], dtype=np.bool_),
            max_participant_share=np.array(
                [r.max_participant_share for r in rules], dtype=np.float64
            ),
        )

    def __len__(self) -> int:
        return self.min_lot.size


@dataclass(frozen=True)
class WindowStatistics:
    """Arrays of shape (commodities, windows); ``flags`` per trade in the caller's order.

    ``window_trades`` trades fell in the window, ``lot_trades`` passed the lot filter,
    ``trades`` also passed the arm's-length rule and the outlier exclusion (they make the
    VWAP). ``center``/``scale`` are the exclusion's centre and spread (mean and SD, or
    median and scaled MAD, at least ``scale_floor`` × the centre). ``top_participant_share``
    is the largest share of the qualifying volume one participant has as buyer or as
    seller (NaN without participant codes).
    ``shortfall`` is a bit set of the failed sufficiency tests (:data:`SHORTFALL_TESTS`).
    """

    window_trades: np.ndarray
    lot_trades: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    trades: np.ndarray
    volume: np.ndarray
    vwap: np.ndarray
    high: np.ndarray
    low: np.ndarray
    exchanges: np.ndarray
    top_share: np.ndarray
    top_participant_share: np.ndarray
    shortfall: np.ndarray
    flags: np.ndarray | None


def failed_tests(shortfall: int) -> list[str]:
    return [name for bit, name in SHORTFALL_TESTS.items() if shortfall & bit]


def _column(name: str, values, dtype) -> np.ndarray:
    try:
        array = np.ascontiguousarray(values)
        if dtype is np.int64 and array.dtype.kind in "iu" and array.dtype.itemsize <= 8:
            if array.dtype == np.uint64:
                array = array.astype(np.int64)
        elif array.dtype != dtype:
            array = np.ascontiguousarray(array, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(name, f"cannot be read as {np.dtype(dtype)}: {exc}") from None
    if array.ndim != 1:
        raise InvalidInput(name, "must be one-dimensional")
    return array


def _check_parameters(parameters: KernelParameters, n_commodities: int) -> None:
    if len(parameters) != n_commodities:
        raise InvalidInput(
            "parameters", f"has {len(parameters)} commodities, closes has {n_commodities}"
        )
    for name in ("min_lot", "min_volume"):
        values = getattr(parameters, name)
        if not (np.all(np.isfinite(values)) and np.all(values >= 0)):
            raise InvalidInput(name, "every value must be finite and >= 0")
    if not np.all((parameters.scale_floor >= 0) & (parameters.scale_floor < 1)):
        raise InvalidInput("scale_floor", "every value must lie in [0, 1)")
    share = parameters.max_participant_share
    if not np.all((share > 0) & (share <= 1)):
        raise InvalidInput("max_participant_share", "every value must lie in (0, 1]")
    for name in ("k", "mad_scale"):
        values = getattr(parameters, name)
        if not (np.all(np.isfinite(values)) and np.all(values > 0)):
            raise InvalidInput(name, "every value must be finite and > 0")
    if np.any(parameters.min_trades < 1) or np.any(parameters.min_exchanges < 1):
        raise InvalidInput("min_trades", "min_trades and min_exchanges must be >= 1")
    if not np.all((parameters.max_share > 0) & (parameters.max_share <= 1)):
        raise InvalidInput("max_share", "every value must lie in (0, 1]")


def _chunks(bounds: np.ndarray) -> np.ndarray:
    """Split the groups into contiguous runs of about equal trade counts."""
    counts = np.diff(bounds, axis=1).ravel()
    n_groups = counts.size
    n_chunks = max(1, min(n_groups, CHUNKS_PER_THREAD * numba.get_num_threads()))
    cumulative = np.concatenate(([0], np.cumsum(counts + 1)))
    targets = np.linspace(0, cumulative[-1], n_chunks + 1)
    starts = np.searchsorted(cumulative, targets, side="left")
    starts[0], starts[-1] = 0, n_groups
    return np.unique(starts).astype(np.int64)


def _exchange_codes(exchanges: np.ndarray) -> tuple[np.ndarray, int]:
    """Exchange ids as dense uint8 codes and the number of code slots.

    uint8 ids are used as they are; int8 ids after a check that none is negative; wider
    ids are renumbered (at most :data:`MAX_EXCHANGES` distinct exchanges).
    """
    if exchanges.dtype == np.uint8:
        return exchanges, MAX_EXCHANGES
    if exchanges.size == 0:
        return exchanges.astype(np.uint8), MAX_EXCHANGES
    if exchanges.dtype == np.int8:
        if exchanges.min() < 0:
            raise InvalidInput("exchange_id", "every id must be >= 0")
        return exchanges.view(np.uint8), MAX_EXCHANGES
    low, high = int(exchanges.min()), int(exchanges.max())
    if low < 0:
        raise InvalidInput("exchange_id", "every id must be >= 0")
    if high < MAX_EXCHANGES:
        return exchanges.astype(np.uint8), MAX_EXCHANGES
    distinct, codes = np.unique(exchanges, return_inverse=True)
    if distinct.size > MAX_EXCHANGES:
        raise InvalidInput(
            "exchange_id", f"{distinct.size} distinct exchanges; at most {MAX_EXCHANGES}"
        )
    return codes.astype(np.uint8), MAX_EXCHANGES


def _participants(n: int, affiliated, buyer, seller):
    """The arm's-length columns checked: empty arrays where absent, ids >= -1, and the
    number of participant slots."""
    if affiliated is None:
        affiliated = np.zeros(0, dtype=np.bool_)
    else:
        affiliated = _column("affiliated", affiliated, np.bool_)
        if affiliated.size != n:
            raise InvalidInput("affiliated", f"has {affiliated.size} values, commodity_id has {n}")
    if (buyer is None) != (seller is None):
        raise InvalidInput("buyer", "buyer and seller ids come together")
    if buyer is None:
        empty = np.zeros(0, dtype=np.int64)
        return affiliated, empty, empty, 0
    buyer = _column("buyer", buyer, np.int64)
    seller = _column("seller", seller, np.int64)
    for name, ids in (("buyer", buyer), ("seller", seller)):
        if ids.size != n:
            raise InvalidInput(name, f"has {ids.size} values, commodity_id has {n}")
        if ids.size and ids.min() < -1:
            raise InvalidInput(name, "every id must be >= 0, or -1 for none")
    highest = max(int(buyer.max(initial=-1)), int(seller.max(initial=-1)))
    return affiliated, buyer, seller, highest + 1


def _raise_for(problems: int, n_commodities: int, n_exchanges: int) -> None:
    for bit, field, reason in (
        (kernel.BAD_PRICE, "price", "every value must be finite and > 0"),
        (kernel.BAD_QUANTITY, "quantity", "every value must be finite and > 0"),
        (kernel.BAD_COMMODITY, "commodity_id", f"every id must lie in [0, {n_commodities})"),
        (kernel.BAD_EXCHANGE, "exchange_id", f"every id must lie in [0, {n_exchanges})"),
        (kernel.UNSORTED, "traded_at_ms", "trades are not sorted by (commodity, time)"),
    ):
        if problems & bit:
            raise InvalidInput(field, reason)


def assess_windows(
    commodity,
    traded_at_ms,
    price,
    quantity,
    exchange,
    closes: np.ndarray,
    parameters: KernelParameters,
    *,
    affiliated=None,
    buyer=None,
    seller=None,
    presorted: bool = False,
    trusted: bool = False,
    with_flags: bool = False,
) -> WindowStatistics:
    """Assess every commodity in every window.

    ``commodity`` holds ids in ``[0, C)`` with C = ``closes.shape[0]``; ``closes[c, j]`` is
    commodity c's j-th cut-off (epoch ms), strictly increasing in j: window j ≥ 1 holds
    the trades after cut-off j - 1 up to and including cut-off j. ``exchange`` holds
    non-negative ids (uint8 or int8 ids are used without a copy). With ``presorted=True``
    the trades must already be sorted by (commodity, time) and that order is used as
    given; otherwise they are sorted by every column, so the result does not depend on the
    order they arrived in. ``affiliated`` (bool per trade) marks trades between members of
    one group; ``buyer`` and ``seller`` hold participant ids (>= 0, -1 for none; one id per
    participant and role, so a buyer's and a seller's ids never coincide).
    ``trusted=True`` (with ``presorted=True`` only) takes the order and the values as
    guaranteed (prices and quantities finite and > 0), as for trades the store validated on
    the way in, and skips checking every trade again: the arithmetic is the same, a broken
    guarantee gives meaningless numbers instead of an error.
    """
    if trusted and not presorted:
        raise InvalidInput("trusted", "only presorted trades can be trusted")
    commodity = _column("commodity_id", commodity, np.int64)
    n = commodity.size
    instants = _column("traded_at_ms", traded_at_ms, np.int64)
    prices = _column("price", price, np.float64)
    quantities = _column("quantity", quantity, np.float64)
    exchanges = _column("exchange_id", exchange, np.int64)
    for name, array in (
        ("traded_at_ms", instants),
        ("price", prices),
        ("quantity", quantities),
        ("exchange_id", exchanges),
    ):
        if array.size != n:
            raise InvalidInput(name, f"has {array.size} values, commodity_id has {n}")
    affiliated, buyer, seller, n_participants = _participants(n, affiliated, buyer, seller)
    closes = np.ascontiguousarray(closes, dtype=np.int64)
    if closes.ndim != 2 or closes.shape[1] < 1:
        raise InvalidInput("closes", "must be a (commodities, cut-offs) array")
    if closes.shape[1] > 1 and np.any(np.diff(closes, axis=1) <= 0):
        raise InvalidInput("closes", "cut-offs must be strictly increasing")
    n_commodities = closes.shape[0]
    _check_parameters(parameters, n_commodities)
    exchanges, n_exchanges = _exchange_codes(exchanges)

    order = None
    if not presorted:
        order = np.lexsort((exchanges, quantities, prices, instants, commodity))
        commodity, instants = commodity[order], instants[order]
        prices, quantities, exchanges = prices[order], quantities[order], exchanges[order]
        affiliated = affiliated[order] if affiliated.size else affiliated
        buyer = buyer[order] if buyer.size else buyer
        seller = seller[order] if seller.size else seller

    ids = np.arange(n_commodities + 1, dtype=commodity.dtype)
    segment_starts = np.searchsorted(commodity, ids).astype(np.int64)
    bounds, problems = kernel.window_bounds(
        segment_starts, commodity, instants, prices, quantities, exchanges, n_exchanges, closes
    )
    if segment_starts[0] != 0 or segment_starts[-1] != n:
        problems |= kernel.BAD_COMMODITY
    flags = np.full(n if with_flags else 0, kernel.OUTSIDE_WINDOWS, dtype=np.int8)
    p = parameters
    *stats, in_windows = kernel.assess_groups(
        bounds,
        _chunks(bounds),
        closes,
        commodity,
        instants,
        prices,
        quantities,
        exchanges,
        n_exchanges,
        p.min_lot,
        p.exclusion,
        p.k,
        p.mad_scale,
        p.scale_floor,
        p.exclude_affiliated,
        p.min_trades,
        p.min_volume,
        p.min_exchanges,
        p.max_share,
        p.max_participant_share,
        affiliated,
        buyer,
        seller,
        n_participants,
        flags,
        not trusted,
    )
    _raise_for(problems | in_windows, n_commodities, n_exchanges)
    if with_flags and order is not None:
        unsorted = np.empty_like(flags)
        unsorted[order] = flags
        flags = unsorted
    return WindowStatistics(*stats, flags=flags if with_flags else None)
