"""SDMX-ML structure messages: 2.1 (SDMX-REST 1.x) and 3.0 (SDMX-REST 2.x)."""

from __future__ import annotations

from api.sdmx import AGENCY, FLOW, VERSION
from api.sdmx.header import header
from api.sdmx.structure import (
    CL_FREQ,
    CL_INDEX,
    CL_OBS_STATUS,
    CODELIST,
    CONCEPT_SCHEME,
    CONCEPTSCHEME,
    DATAFLOW,
    DATASTRUCTURE,
    Artefact,
)
from api.sdmx.xml import element, message_namespaces, names

PACKAGES = {
    DATAFLOW: ("datastructure", "Dataflow"),
    DATASTRUCTURE: ("datastructure", "DataStructure"),
    CONCEPTSCHEME: ("conceptscheme", "ConceptScheme"),
    CODELIST: ("codelist", "Codelist"),
}
ORDER_21 = {DATAFLOW: "Dataflows", CODELIST: "Codelists", CONCEPTSCHEME: "Concepts"}
ORDER_21[DATASTRUCTURE] = "DataStructures"
ORDER_30 = {CODELIST: "Codelists", CONCEPTSCHEME: "ConceptSchemes", DATAFLOW: "Dataflows"}
ORDER_30[DATASTRUCTURE] = "DataStructures"
# Dimension: (concept, code list); attribute: (concept, code list or text type, mandatory,
# attached to the observation).
DIMENSIONS = (("FREQ", CL_FREQ), ("INDEX", CL_INDEX))
ATTRIBUTES = (
    ("OBS_STATUS", CL_OBS_STATUS, True, True),
    ("UNIT_MEASURE", None, True, False),
    ("CURRENCY", None, False, False),
)


def urn(kind: str, artefact_id: str) -> str:
    package, cls = PACKAGES[kind]
    return f"urn:sdmx:org.sdmx.infomodel.{package}.{cls}={AGENCY}:{artefact_id}({VERSION})"


def concept_urn(concept: str) -> str:
    item = f"{AGENCY}:{CONCEPT_SCHEME}({VERSION}).{concept}"
    return f"urn:sdmx:org.sdmx.infomodel.conceptscheme.Concept={item}"


def code_urn(codelist: str, code: str) -> str:
    return f"urn:sdmx:org.sdmx.infomodel.codelist.Code={AGENCY}:{codelist}({VERSION}).{code}"


def structure_message(artefacts: list[Artefact], *, v3: bool) -> str:
    order = ORDER_30 if v3 else ORDER_21
    groups = []
    for kind, group in order.items():
        items = [a for a in artefacts if a.kind == kind]
        if items:
            groups.append(element(f"str:{group}", None, *(_artefact(a, v3) for a in items)))
    body = element(
        "mes:Structure",
        message_namespaces(v3, "str"),
        header(),
        element("mes:Structures", None, *groups),
    )
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body


def _artefact(a: Artefact, v3: bool) -> str:
    attrs = {"id": a.id, "urn": urn(a.kind, a.id), "agencyID": AGENCY, "version": VERSION}
    if not v3:
        attrs["isFinal"] = "true"
    name = names("com:Name", a.name_en, a.name_zh)
    if a.kind == CODELIST:
        codes = (
            element(
                "str:Code",
                {"id": c.id, "urn": code_urn(a.id, c.id)},
                names("com:Name", c.name_en, c.name_zh),
            )
            for c in a.items
        )
        return element("str:Codelist", attrs, name, *codes)
    if a.kind == CONCEPTSCHEME:
        concepts = (
            element(
                "str:Concept",
                {"id": c.id, "urn": concept_urn(c.id)},
                names("com:Name", c.name_en, c.name_zh),
            )
            for c in a.items
        )
        return element("str:ConceptScheme", attrs, name, *concepts)
    if a.kind == DATAFLOW:
        return element("str:Dataflow", attrs, name, _structure_ref(v3))
    return element("str:DataStructure", attrs, name, _components(v3))


def _ref(kind: str, artefact_id: str) -> str:
    package, cls = PACKAGES[kind]
    attrs = {"id": artefact_id, "version": VERSION, "agencyID": AGENCY}
    return element("Ref", attrs | {"package": package, "class": cls})


def _structure_ref(v3: bool) -> str:
    if v3:
        return element("str:Structure", None, text=urn(DATASTRUCTURE, FLOW))
    return element("str:Structure", None, _ref(DATASTRUCTURE, FLOW))


def _concept(concept: str, v3: bool) -> str:
    if v3:
        return element("str:ConceptIdentity", None, text=concept_urn(concept))
    attrs = {
        "id": concept,
        "maintainableParentID": CONCEPT_SCHEME,
        "maintainableParentVersion": VERSION,
        "agencyID": AGENCY,
        "package": "conceptscheme",
        "class": "Concept",
    }
    return element("str:ConceptIdentity", None, element("Ref", attrs))


def _representation(codelist: str | None, text_type: str, v3: bool) -> str:
    if codelist is None:
        inner = element("str:TextFormat", {"textType": text_type})
    elif v3:
        inner = element("str:Enumeration", None, text=urn(CODELIST, codelist))
    else:
        inner = element("str:Enumeration", None, _ref(CODELIST, codelist))
    return element("str:LocalRepresentation", None, inner)


def _components(v3: bool) -> str:
    dimensions = [
        element(
            "str:Dimension",
            {"id": concept, "position": str(position)},
            _concept(concept, v3),
            _representation(codelist, "String", v3),
        )
        for position, (concept, codelist) in enumerate(DIMENSIONS, start=1)
    ]
    time_attrs = {"id": "TIME_PERIOD"} if v3 else {"id": "TIME_PERIOD", "position": "3"}
    dimensions.append(
        element(
            "str:TimeDimension",
            time_attrs,
            _concept("TIME_PERIOD", v3),
            _representation(None, "ObservationalTimePeriod", v3),
        )
    )
    attributes = [_attribute(*spec, v3=v3) for spec in ATTRIBUTES]
    measure_tag = "str:Measure" if v3 else "str:PrimaryMeasure"
    measure = element(
        measure_tag,
        {"id": "OBS_VALUE"} | ({"usage": "optional"} if v3 else {}),
        _concept("OBS_VALUE", v3),
        _representation(None, "Double", v3),
    )
    lists = (
        element("str:AttributeList", {"id": "AttributeDescriptor"}, *attributes),
        element("str:MeasureList", {"id": "MeasureDescriptor"}, measure),
    )
    dimension_list = element("str:DimensionList", {"id": "DimensionDescriptor"}, *dimensions)
    return element("str:DataStructureComponents", None, dimension_list, *lists)


def _attribute(concept: str, codelist: str | None, mandatory: bool, observed: bool, *, v3):
    if v3:
        attrs = {"id": concept, "usage": "mandatory" if mandatory else "optional"}
        if observed:
            # With one measure, no MeasureRelationship (which sdmx1 cannot read) is needed.
            relation = element("str:AttributeRelationship", None, element("str:Observation"))
        else:
            relation = element(
                "str:AttributeRelationship",
                None,
                *(element("str:Dimension", None, text=d) for d, _ in DIMENSIONS),
            )
    else:
        attrs = {"id": concept, "assignmentStatus": "Mandatory" if mandatory else "Conditional"}
        if observed:
            inner = element("str:PrimaryMeasure", None, element("Ref", {"id": "OBS_VALUE"}))
        else:
            inner = "".join(
                element("str:Dimension", None, element("Ref", {"id": d})) for d, _ in DIMENSIONS
            )
        relation = element("str:AttributeRelationship", None, inner)
    return element(
        "str:Attribute",
        attrs,
        _concept(concept, v3),
        _representation(codelist, "String", v3),
        relation,
    )
