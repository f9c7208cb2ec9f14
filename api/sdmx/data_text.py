"""SDMX-CSV 2.0 and SDMX-JSON 2.0 data messages."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from api.sdmx import AGENCY, DSD_URN, FLOW, FLOW_URN, FREQUENCIES, VERSION
from api.sdmx.data_ml import number
from api.sdmx.header import message_id, prepared
from api.sdmx.observations import OBS_STATUS_NAMES, Series
from api.sdmx.query import DataQuery
from api.sdmx.structure import CONCEPTS

JSON_SCHEMA = (
    "https://raw.githubusercontent.com/sdmx-twg/sdmx-json/v2.0.0/"
    "data-message/tools/schemas/2.0.0/sdmx-json-data-schema.json"
)


def sdmx_csv(found: list[Series], query: DataQuery) -> Iterator[str]:
    columns = ["STRUCTURE", "STRUCTURE_ID", "ACTION", "FREQ", "INDEX", "TIME_PERIOD"]
    if query.measures:
        columns.append("OBS_VALUE")
    if query.attributes:
        columns += ["OBS_STATUS", "UNIT_MEASURE", "CURRENCY"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    structure = ("dataflow", f"{AGENCY}:{FLOW}({VERSION})", "I", "D")
    for series in found:
        info = series.info
        observations = series.observations if query.with_observations else [None]
        for o in observations:
            row = [*structure, info.code, o.date.isoformat() if o else ""]
            if query.measures:
                row.append(number(o.value) if o else "")
            if query.attributes:
                row += [o.status if o else "", info.unit, info.currency or ""]
            writer.writerow(row)
            if buffer.tell() > 1 << 20:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


def _component(
    concept: str, position: int | None, values: list[dict], relationship: dict | None = None
) -> dict:
    name_en, name_zh = CONCEPTS[concept]
    out = {"id": concept, "name": name_en, "names": {"en": name_en, "zh": name_zh}}
    if position is not None:
        out["keyPosition"] = position
    out["roles"] = [concept]
    if relationship is not None:
        out["relationship"] = relationship
    if values:
        out["values"] = values
    return out


def sdmx_json(found: list[Series], query: DataQuery) -> Iterator[str]:
    """One data set; series keyed ``FREQ:INDEX`` positions, observations keyed by their
    position in the time dimension's values."""
    days = sorted({o.date for s in found for o in s.observations})
    day_position = {day: n for n, day in enumerate(days)}
    statuses = sorted({o.status for s in found for o in s.observations})
    status_position = {code: n for n, code in enumerate(statuses)}
    units = sorted({s.info.unit for s in found})
    currencies = sorted({s.info.currency for s in found if s.info.currency})
    indices = [
        {
            "id": s.info.code,
            "name": s.info.name_en,
            "names": {"en": s.info.name_en, "zh": s.info.name_zh},
        }
        for s in found
    ]
    structure = {
        "structure": DSD_URN,
        "dimensions": {
            "dataSet": [],
            "series": [
                _component("FREQ", 0, [{"id": k, "name": v} for k, v in FREQUENCIES.items()]),
                _component("INDEX", 1, indices),
            ],
            "observation": [
                _component(
                    "TIME_PERIOD",
                    2,
                    [
                        {"value": d.isoformat(), "start": f"{d}T00:00:00", "end": f"{d}T23:59:59"}
                        for d in days
                    ],
                )
            ],
        },
        "measures": {"observation": [_component("OBS_VALUE", None, [])] if query.measures else []},
        "attributes": {"dataSet": [], "series": [], "observation": []},
        "annotations": [],
        "dataSets": [0],
    }
    if query.attributes:
        by_series = {"dimensions": ["FREQ", "INDEX"]}
        structure["attributes"] = {
            "dataSet": [],
            "series": [
                _component("UNIT_MEASURE", None, [{"value": u} for u in units], by_series),
                _component("CURRENCY", None, [{"value": c} for c in currencies], by_series),
            ],
            "observation": [
                _component(
                    "OBS_STATUS",
                    None,
                    [{"id": c, "name": OBS_STATUS_NAMES[c]} for c in statuses],
                    {"observation": {}},
                )
            ],
        }
    series_out = {}
    for n, s in enumerate(found):
        item: dict = {}
        if query.attributes:
            currency = currencies.index(s.info.currency) if s.info.currency else None
            item["attributes"] = [units.index(s.info.unit), currency]
        if query.with_observations:
            item["observations"] = {
                str(day_position[o.date]): _observation(o, status_position, query)
                for o in s.observations
            }
        series_out[f"0:{n}"] = item
    message = {
        "meta": {
            "schema": JSON_SCHEMA,
            "id": message_id(),
            "test": False,
            "prepared": prepared(),
            "contentLanguages": ["en", "zh"],
            "sender": {"id": AGENCY},
        },
        "data": {
            "structures": [structure],
            "dataSets": [
                {
                    "action": "Information",
                    "structure": 0,
                    "links": [{"urn": FLOW_URN, "rel": "dataflow"}],
                    "series": series_out,
                }
            ],
        },
    }
    yield json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def _observation(o, status_position: dict[str, int], query: DataQuery) -> list:
    out: list = []
    if query.measures:
        out.append(o.value)
    if query.attributes:
        out.append(status_position[o.status])
    return out
