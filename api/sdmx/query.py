"""Data queries of SDMX-REST 2.x and 1.x, read into one :class:`DataQuery`.

2.x: ``/data/dataflow/{agency}/{flow}/{version}/{key}`` with ``c[COMPONENT]=op:value``
filters, ``updatedAfter``, ``firstNObservations``, ``lastNObservations``, ``asOf``,
``attributes`` and ``measures``. 1.x: ``/data/{flowRef}/{key}`` with ``startPeriod``,
``endPeriod``, ``updatedAfter``, ``firstNObservations``, ``lastNObservations``,
``dimensionAtObservation``, ``detail`` and ``includeHistory``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace

from api.sdmx import AGENCY, DIMENSIONS, FLOW, FREQUENCIES
from api.sdmx.errors import NoResults, SdmxSyntaxError
from api.sdmx.observations import OBS_STATUS_NAMES, ObservationQuery
from api.sdmx.periods import moment, period
from api.sdmx.structure import ALL_IDS, LATEST

MAX_OBSERVATIONS = 100_000_000
DETAILS = ("full", "dataonly", "serieskeysonly", "nodata")
COMMON_PARAMS = ("updatedAfter", "firstNObservations", "lastNObservations", "asOf")
V1_PARAMS = (
    *COMMON_PARAMS,
    "startPeriod",
    "endPeriod",
    "dimensionAtObservation",
    "detail",
    "includeHistory",
)
V2_PARAMS = (*COMMON_PARAMS, "attributes", "measures", "includeHistory")
OPERATORS = ("eq", "ge", "gt", "le", "lt")
_FILTER = re.compile(r"^c\[(?P<component>[A-Za-z0-9_@$-]+)\]$")


@dataclass(frozen=True)
class DataQuery:
    observations: ObservationQuery
    detail: str = "full"
    attributes: bool = True
    measures: bool = True

    @property
    def with_observations(self) -> bool:
        return self.detail in ("full", "dataonly")


def flow_v1(flow_ref: str) -> None:
    """``INDICES``, ``BCPI,INDICES`` or ``BCPI,INDICES,1.0`` (or ``latest``)."""
    parts = [p.strip() for p in flow_ref.split(",")]
    if len(parts) == 1:
        parts = [AGENCY, *parts]
    if len(parts) == 2:
        parts.append("latest")
    if len(parts) != 3:
        raise SdmxSyntaxError(
            f"flow {flow_ref!r} is not a flow reference; use {FLOW}, {AGENCY},{FLOW} or "
            f"{AGENCY},{FLOW},1.0"
        )
    flow(parts[0], parts[1], parts[2])


def flow(agency: str, resource_id: str, version: str, context: str = "dataflow") -> None:
    if context not in ("dataflow", "*"):
        raise NoResults(f"context {context!r}: data are offered by dataflow only")
    if agency not in (AGENCY, *ALL_IDS):
        raise NoResults(f"no dataflow of agency {agency!r}; the agency is {AGENCY}")
    if resource_id not in (FLOW, *ALL_IDS):
        raise NoResults(f"no dataflow {resource_id!r}; the dataflow is {AGENCY}:{FLOW}")
    if version not in LATEST:
        raise NoResults(f"no version {version!r} of {AGENCY}:{FLOW}; it has version 1.0")


def _values(text: str) -> set[str] | None:
    """The values of one key position (``None``: any)."""
    values = {v for v in re.split(r"[+,]", text.strip()) if v}
    return None if not values or "*" in values else values


def key_codes(key: str | None, known: set[str]) -> frozenset[str] | None:
    """The index codes a key selects (``None``: every index)."""
    if key is None or key.strip() in ("", "all", "*"):
        return None
    parts = key.split(".")
    if len(parts) != len(DIMENSIONS):
        raise SdmxSyntaxError(
            f"key {key!r} has {len(parts)} part(s); the dataflow's key is "
            f"{'.'.join(DIMENSIONS)} (e.g. D.BCPI+REBAR, or * for everything)",
            field="key",
        )
    frequencies, codes = (_values(p) for p in parts)
    _check_frequencies(frequencies)
    return _check_codes(codes, known)


def _check_frequencies(frequencies: set[str] | None) -> None:
    if frequencies is not None and not frequencies & set(FREQUENCIES):
        raise NoResults(
            f"no series of frequency {', '.join(sorted(frequencies))}; the indices are "
            f"daily (FREQ=D)"
        )


def _check_codes(codes: set[str] | None, known: set[str]) -> frozenset[str] | None:
    if codes is None:
        return None
    unknown = sorted(codes - known)
    if unknown:
        raise NoResults(
            f"no index {', '.join(unknown)} in the code list CL_INDEX; see "
            f"/sdmx/v2/structure/codelist/{AGENCY}/CL_INDEX"
        )
    return frozenset(codes)


def _positive(params: dict[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None:
        return None
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_OBSERVATIONS:
        raise SdmxSyntaxError(
            f"{name}: {text!r} must be a whole number from 1 to {MAX_OBSERVATIONS}", field=name
        )
    return int(text)


def _check_names(params: dict[str, str], allowed: tuple[str, ...], filters: bool) -> None:
    for name in params:
        if name in allowed or (filters and _FILTER.match(name)):
            continue
        extra = ", c[COMPONENT]" if filters else ""
        raise SdmxSyntaxError(
            f"unknown query parameter {name!r}; allowed: {', '.join(allowed)}{extra}",
            field=name,
        )


def _common(params: dict[str, str]) -> ObservationQuery:
    updated = params.get("updatedAfter")
    as_of = params.get("asOf")
    return ObservationQuery(
        updated_after=moment("updatedAfter", updated) if updated else None,
        as_of=moment("asOf", as_of) if as_of else None,
        first_n=_positive(params, "firstNObservations"),
        last_n=_positive(params, "lastNObservations"),
    )


def _choice(params: dict[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = params.get(name, default)
    if value not in allowed:
        raise SdmxSyntaxError(
            f"{name}={value!r} is not offered; use one of {', '.join(allowed)}", field=name
        )
    return value


def _limit_dates(query: ObservationQuery, first: dt.date | None, last: dt.date | None):
    start = max(filter(None, (query.start, first)), default=None)
    end = min(filter(None, (query.end, last)), default=None)
    return replace(query, start=start, end=end)


def v1_query(key: str | None, params: dict[str, str], known: set[str]) -> DataQuery:
    _check_names(params, V1_PARAMS, filters=False)
    query = replace(_common(params), codes=key_codes(key, known))
    if "startPeriod" in params:
        query = _limit_dates(query, period("startPeriod", params["startPeriod"])[0], None)
    if "endPeriod" in params:
        query = _limit_dates(query, None, period("endPeriod", params["endPeriod"])[1])
    _choice(params, "dimensionAtObservation", ("TIME_PERIOD",), "TIME_PERIOD")
    _choice(params, "includeHistory", ("false",), "false")
    detail = _choice(params, "detail", DETAILS, "full")
    return DataQuery(query, detail=detail, attributes=detail != "dataonly")


def v2_query(key: str | None, params: dict[str, str], known: set[str]) -> DataQuery:
    _check_names(params, V2_PARAMS, filters=True)
    query = replace(_common(params), codes=key_codes(key, known))
    for name, text in params.items():
        match = _FILTER.match(name)
        if match:
            query = _component_filter(query, match["component"], text, known)
    _choice(params, "includeHistory", ("false",), "false")
    attributes = _choice(params, "attributes", ("dsd", "all", "none"), "dsd")
    measures = _choice(params, "measures", ("all", "OBS_VALUE", "none"), "all")
    return DataQuery(query, attributes=attributes != "none", measures=measures != "none")


def _equal_values(name: str, text: str) -> set[str]:
    values = set()
    for item in text.split(","):
        operator, _, value = item.strip().rpartition(":")
        if operator not in ("", "eq"):
            raise SdmxSyntaxError(
                f"{name}: only equality (eq, the default) is offered for this component",
                field=name,
            )
        values.add(value)
    return values


def _component_filter(query: ObservationQuery, component: str, text: str, known: set[str]):
    name = f"c[{component}]"
    if component == "TIME_PERIOD":
        return _time_filter(query, name, text)
    if component == "FREQ":
        _check_frequencies(_equal_values(name, text))
        return query
    if component == "INDEX":
        codes = _check_codes(_equal_values(name, text), known)
        return replace(query, codes=codes if query.codes is None else query.codes & codes)
    if component == "OBS_STATUS":
        statuses = frozenset(_equal_values(name, text))
        unknown = sorted(statuses - set(OBS_STATUS_NAMES))
        if unknown:
            raise SdmxSyntaxError(
                f"{name}: {', '.join(unknown)} not in CL_OBS_STATUS "
                f"({', '.join(sorted(OBS_STATUS_NAMES))})",
                field=name,
            )
        return replace(query, statuses=statuses)
    raise SdmxSyntaxError(
        f"{name}: no component {component!r}; filter on TIME_PERIOD, FREQ, INDEX or OBS_STATUS",
        field=name,
    )


def _time_filter(query: ObservationQuery, name: str, text: str) -> ObservationQuery:
    if "," in text:
        raise SdmxSyntaxError(
            f"{name}: one range only (conditions joined by +, e.g. ge:2026-01+le:2026-03)",
            field=name,
        )
    # The query string turns "+" into a space: either joins the conditions.
    for condition in re.split(r"[+ ]", text.strip()):
        if not condition:
            continue
        operator, _, value = condition.rpartition(":")
        operator = operator or "eq"
        if operator not in OPERATORS:
            raise SdmxSyntaxError(
                f"{name}: operator {operator!r} is not offered; use {', '.join(OPERATORS)}",
                field=name,
            )
        first, last = period(name, value)
        one_day = dt.timedelta(days=1)
        bounds = {
            "eq": (first, last),
            "ge": (first, None),
            "gt": (last + one_day, None),
            "le": (None, last),
            "lt": (None, first - one_day),
        }[operator]
        query = _limit_dates(query, *bounds)
    return query
