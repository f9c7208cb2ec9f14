"""SDMX-REST: the index values as the dataflow BCPI:INDICES(1.0) for statistical clients.

``/sdmx/v2``: SDMX-REST 2.x (data as SDMX-CSV 2.0 or SDMX-JSON 2.0, structures as
SDMX-ML 3.0). ``/sdmx/2.1``: SDMX-REST 1.x (data as SDMX-ML 2.1 generic or
structure-specific, structures as SDMX-ML 2.1). Refusals are SDMX error messages.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.auth import optional_reader
from api.deps import ReadSessionDep
from api.sdmx import query, service
from api.sdmx.errors import SdmxRoute
from api.sdmx.media import MEDIA_TYPES

router = APIRouter(
    prefix="/sdmx",
    tags=["sdmx"],
    route_class=SdmxRoute,
    dependencies=[Depends(optional_reader)],
)

REFUSALS = {
    400: {"description": "a malformed query: the part at fault and what is allowed"},
    404: {"description": "no such flow, structure, key or observations"},
    406: {"description": "no acceptable media type"},
}
DATA_FORMATS = {
    200: {
        "content": {
            MEDIA_TYPES[kind].split(";")[0]: {}
            for kind in ("csv", "json", "generic", "structurespecific")
        },
        "description": "An SDMX data message, chosen by Accept",
    },
    **REFUSALS,
}
STRUCTURE_FORMATS = {
    200: {
        "content": {"application/vnd.sdmx.structure+xml": {}},
        "description": "An SDMX-ML structure message (3.0 under /sdmx/v2, 2.1 under /sdmx/2.1)",
    },
    **REFUSALS,
}
V2_DATA = (
    "SDMX-REST 2.x data. context `dataflow`, agency `BCPI`, flow `INDICES`, version `1.0` "
    "(or `~`). key: `D.CODE1+CODE2` or `*`. Query: `c[TIME_PERIOD]=ge:2026-01+le:2026-03` "
    "(also `c[INDEX]`, `c[FREQ]`, `c[OBS_STATUS]`), `updatedAfter` (values published or "
    "restated after that instant), `firstNObservations`, `lastNObservations`, `asOf` (as "
    "published at that instant), `attributes`, `measures`. Accept: "
    "application/vnd.sdmx.data+csv;version=2.0.0 (default) or "
    "application/vnd.sdmx.data+json;version=2.0.0."
)
V1_DATA = (
    "SDMX-REST 1.x data. flow_ref: `INDICES`, `BCPI,INDICES` or `BCPI,INDICES,1.0`; key: "
    "`D.CODE1+CODE2` or `all`. Query: `startPeriod`, `endPeriod`, `updatedAfter`, "
    "`firstNObservations`, `lastNObservations`, `detail`, `asOf`. Accept: SDMX-ML 2.1 generic "
    "data (the default) or structure-specific data."
)
STRUCTURES = (
    "Structure types: `dataflow`, `datastructure`, `conceptscheme`, `codelist` (or `*`); "
    "agency `BCPI` (or `all`), id (or `all`), version `1.0` (or `latest`, `~`). "
    "`references=none|parents|parentsandsiblings|children|descendants|all` or a structure type."
)


def _answer(answer: service.Answer) -> Response:
    return Response(answer.body, media_type=MEDIA_TYPES[answer.kind])


READ_KEY_PARAMETER = "api_key"
"""A reader's key sent in the URL: read by the authentication, not a term of the query."""


def _params(request: Request) -> dict[str, str]:
    items = request.query_params.multi_items()
    return service.single_params([(k, v) for k, v in items if k != READ_KEY_PARAMETER])


def _data(request: Request, session, key: str | None, *, v2: bool) -> Response:
    params = _params(request)
    accept = request.headers.get("accept")
    return _answer(service.data(session, key, params, accept, v2=v2))


def _structure(request: Request, session, kind, agency, resource_id, version, *, v2: bool):
    params = _params(request)
    accept = request.headers.get("accept")
    answer = service.structure(session, kind, agency, resource_id, version, params, accept, v2=v2)
    return _answer(answer)


# -- SDMX-REST 2.x ----------------------------------------------------------------------


@router.get(
    "/v2/data/{context}/{agency_id}/{resource_id}/{version}/{key}",
    responses=DATA_FORMATS,
    summary="SDMX-REST 2.x data",
    description=V2_DATA,
)
def data_v2(
    context: str,
    agency_id: str,
    resource_id: str,
    version: str,
    key: str,
    request: Request,
    session: ReadSessionDep,
) -> Response:
    query.flow(agency_id, resource_id, version, context)
    return _data(request, session, key, v2=True)


@router.get(
    "/v2/data/{context}/{agency_id}/{resource_id}/{version}",
    responses=DATA_FORMATS,
    summary="SDMX-REST 2.x data, every series",
    description=V2_DATA,
)
def data_v2_every_series(
    context: str,
    agency_id: str,
    resource_id: str,
    version: str,
    request: Request,
    session: ReadSessionDep,
) -> Response:
    query.flow(agency_id, resource_id, version, context)
    return _data(request, session, None, v2=True)


@router.get(
    "/v2/structure/{structure_type}/{agency_id}/{resource_id}/{version}",
    responses=STRUCTURE_FORMATS,
    summary="SDMX-REST 2.x structures (SDMX-ML 3.0)",
    description=STRUCTURES,
)
def structure_v2(
    structure_type: str,
    agency_id: str,
    resource_id: str,
    version: str,
    request: Request,
    session: ReadSessionDep,
) -> Response:
    return _structure(request, session, structure_type, agency_id, resource_id, version, v2=True)


@router.get(
    "/v2/structure/{structure_type}",
    responses=STRUCTURE_FORMATS,
    summary="SDMX-REST 2.x structures of one type (SDMX-ML 3.0)",
    description=STRUCTURES,
)
def structures_v2(structure_type: str, request: Request, session: ReadSessionDep) -> Response:
    return _structure(request, session, structure_type, "*", "*", "~", v2=True)


# -- SDMX-REST 1.x ----------------------------------------------------------------------


@router.get(
    "/2.1/data/{flow_ref}/{key}",
    responses=DATA_FORMATS,
    summary="SDMX-REST 1.x data (SDMX-ML 2.1)",
    description=V1_DATA,
)
def data_v1(flow_ref: str, key: str, request: Request, session: ReadSessionDep) -> Response:
    query.flow_v1(flow_ref)
    return _data(request, session, key, v2=False)


@router.get(
    "/2.1/data/{flow_ref}",
    responses=DATA_FORMATS,
    summary="SDMX-REST 1.x data, every series (SDMX-ML 2.1)",
    description=V1_DATA,
)
def data_v1_every_series(flow_ref: str, request: Request, session: ReadSessionDep) -> Response:
    query.flow_v1(flow_ref)
    return _data(request, session, None, v2=False)


@router.get(
    "/2.1/{resource}/{agency_id}/{resource_id}/{version}",
    responses=STRUCTURE_FORMATS,
    summary="SDMX-REST 1.x structures (SDMX-ML 2.1)",
    description=STRUCTURES,
)
def structure_v1(
    resource: str,
    agency_id: str,
    resource_id: str,
    version: str,
    request: Request,
    session: ReadSessionDep,
) -> Response:
    return _structure(request, session, resource, agency_id, resource_id, version, v2=False)


@router.get(
    "/2.1/{resource}/{agency_id}/{resource_id}",
    responses=STRUCTURE_FORMATS,
    summary="SDMX-REST 1.x structures, latest version (SDMX-ML 2.1)",
    description=STRUCTURES,
)
def structure_v1_latest(
    resource: str, agency_id: str, resource_id: str, request: Request, session: ReadSessionDep
) -> Response:
    return _structure(request, session, resource, agency_id, resource_id, "latest", v2=False)


@router.get(
    "/2.1/{resource}",
    responses=STRUCTURE_FORMATS,
    summary="SDMX-REST 1.x structures of one type (SDMX-ML 2.1)",
    description=STRUCTURES,
)
def structures_v1(resource: str, request: Request, session: ReadSessionDep) -> Response:
    return _structure(request, session, resource, "all", "all", "latest", v2=False)
