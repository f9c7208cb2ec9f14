"""SDMX answers: a data or structure query in, the negotiated message out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session

from api.sdmx import data_ml, data_text
from api.sdmx.errors import NoResults, SdmxSyntaxError
from api.sdmx.media import CSV, GENERIC, JSON, ML30, SPECIFIC, data_format, structure_format
from api.sdmx.observations import Series, index_infos, read_series
from api.sdmx.query import DataQuery, v1_query, v2_query
from api.sdmx.structure import Structures
from api.sdmx.structure_ml import structure_message

WRITERS: dict[str, Callable[[list[Series], DataQuery], Iterator[str]]] = {
    CSV: data_text.sdmx_csv,
    JSON: data_text.sdmx_json,
    GENERIC: data_ml.generic,
    SPECIFIC: data_ml.structure_specific,
}
STRUCTURE_PARAMS = ("references", "detail")
DETAILS = ("full", "referencepartial", "raw")


@dataclass(frozen=True)
class Answer:
    """A message and its kind (a key of :data:`api.sdmx.media.MEDIA_TYPES`)."""

    kind: str
    body: str


def single_params(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The query parameters, each given once."""
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise SdmxSyntaxError(f"query parameter {name!r} is given more than once", field=name)
        params[name] = value
    return params


def data(
    session: Session, key: str | None, params: dict[str, str], accept: str | None, *, v2: bool
) -> Answer:
    kind = data_format(accept, v2=v2)
    infos = index_infos(session)
    known = {i.code for i in infos}
    query = v2_query(key, params, known) if v2 else v1_query(key, params, known)
    found = read_series(session, query.observations, infos)
    if not found:
        raise NoResults("no observations match the query (key, time period, updatedAfter, asOf)")
    return Answer(kind, "".join(WRITERS[kind](found, query)))


def structure(
    session: Session,
    kind: str,
    agency: str,
    resource_id: str,
    version: str,
    params: dict[str, str],
    accept: str | None,
    *,
    v2: bool,
) -> Answer:
    message = structure_format(accept, v2=v2)
    for name in params:
        if name not in STRUCTURE_PARAMS:
            raise SdmxSyntaxError(
                f"unknown query parameter {name!r}; allowed: {', '.join(STRUCTURE_PARAMS)}",
                field=name,
            )
    detail = params.get("detail", "full")
    if detail not in DETAILS:
        raise SdmxSyntaxError(
            f"detail={detail!r} is not offered; structures are answered in full "
            f"(detail={'|'.join(DETAILS)})",
            field="detail",
        )
    references = params.get("references", "none")
    artefacts = Structures.of(index_infos(session)).select(
        kind, agency, resource_id, version, references
    )
    return Answer(message, structure_message(artefacts, v3=message == ML30))
