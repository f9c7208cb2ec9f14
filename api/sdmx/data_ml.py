"""SDMX-ML 2.1 data messages: generic and structure-specific, one series per index."""

from __future__ import annotations

from collections.abc import Iterator

from api.sdmx import AGENCY, FLOW, FLOW_URN, VERSION
from api.sdmx.header import header
from api.sdmx.observations import Series
from api.sdmx.query import DataQuery
from api.sdmx.xml import attributes, element, message_namespaces

STRUCTURE_ID = f"{AGENCY}_{FLOW}_{VERSION.replace('.', '_')}"
SPECIFIC_NAMESPACE = f"{FLOW_URN}:ObsLevelDim:TIME_PERIOD"


def number(value: float | None) -> str:
    """The shortest text that reads back as the same float; ``NaN`` for no value."""
    return "NaN" if value is None else repr(float(value))


def _structure(specific: bool) -> str:
    attrs = {"structureID": STRUCTURE_ID}
    if specific:
        attrs["namespace"] = SPECIFIC_NAMESPACE
    attrs["dimensionAtObservation"] = "TIME_PERIOD"
    usage = element(
        "com:StructureUsage",
        None,
        element("Ref", {"agencyID": AGENCY, "id": FLOW, "version": VERSION}),
    )
    return element("mes:Structure", attrs, usage)


def _series_attributes(series: Series) -> dict[str, str | None]:
    return {"UNIT_MEASURE": series.info.unit, "CURRENCY": series.info.currency}


def generic(found: list[Series], query: DataQuery) -> Iterator[str]:
    namespaces = message_namespaces(False, "gen")
    yield '<?xml version="1.0" encoding="UTF-8"?>\n'
    yield f"<mes:GenericData{attributes(namespaces)}>"
    yield header(_structure(False))
    yield f'<mes:DataSet structureRef="{STRUCTURE_ID}">'
    for series in found:
        key = element(
            "gen:SeriesKey",
            None,
            element("gen:Value", {"id": "FREQ", "value": "D"}),
            element("gen:Value", {"id": "INDEX", "value": series.info.code}),
        )
        parts = [key]
        if query.attributes:
            values = [
                element("gen:Value", {"id": k, "value": v})
                for k, v in _series_attributes(series).items()
                if v is not None
            ]
            parts.append(element("gen:Attributes", None, *values))
        if query.with_observations:
            parts += [_generic_obs(o, query) for o in series.observations]
        yield element("gen:Series", None, *parts)
    yield "</mes:DataSet></mes:GenericData>"


def _generic_obs(observation, query: DataQuery) -> str:
    parts = [element("gen:ObsDimension", {"value": observation.date.isoformat()})]
    if query.measures:
        parts.append(element("gen:ObsValue", {"value": number(observation.value)}))
    if query.attributes:
        status = element("gen:Value", {"id": "OBS_STATUS", "value": observation.status})
        parts.append(element("gen:Attributes", None, status))
    return element("gen:Obs", None, *parts)


def structure_specific(found: list[Series], query: DataQuery) -> Iterator[str]:
    namespaces = message_namespaces(False, "ss") | {"xmlns:ns1": SPECIFIC_NAMESPACE}
    yield '<?xml version="1.0" encoding="UTF-8"?>\n'
    yield f"<mes:StructureSpecificData{attributes(namespaces)}>"
    yield header(_structure(True))
    dataset = {
        "ss:dataScope": "DataStructure",
        "xsi:type": "ns1:DataSetType",
        "ss:structureRef": STRUCTURE_ID,
    }
    yield f"<mes:DataSet{attributes(dataset)}>"
    for series in found:
        attrs = {"FREQ": "D", "INDEX": series.info.code}
        if query.attributes:
            attrs |= _series_attributes(series)
        observations = []
        if query.with_observations:
            for o in series.observations:
                obs = {"TIME_PERIOD": o.date.isoformat()}
                if query.measures:
                    obs["OBS_VALUE"] = number(o.value)
                if query.attributes:
                    obs["OBS_STATUS"] = o.status
                observations.append(element("Obs", obs))
        yield element("Series", attrs, *observations)
    yield "</mes:DataSet></mes:StructureSpecificData>"
