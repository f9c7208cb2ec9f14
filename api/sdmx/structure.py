"""The structures of the dataflow: code lists, concept scheme, data structure definition and
dataflow, and which of them a structure query with ``references=`` returns.

The artefacts and their references: the dataflow uses the data structure; the data
structure uses the concept scheme and the code lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.sdmx import AGENCY, FLOW, FREQUENCIES, VERSION
from api.sdmx.errors import NoResults, SdmxSyntaxError
from api.sdmx.observations import OBS_STATUS_NAMES, SeriesInfo

DATAFLOW, DATASTRUCTURE, CONCEPTSCHEME, CODELIST = (
    "dataflow",
    "datastructure",
    "conceptscheme",
    "codelist",
)
RESOURCES = (DATAFLOW, DATASTRUCTURE, CONCEPTSCHEME, CODELIST)
CONCEPT_SCHEME = "CS_INDICES"
CL_FREQ, CL_INDEX, CL_OBS_STATUS = "CL_FREQ", "CL_INDEX", "CL_OBS_STATUS"
CONCEPTS = {
    "FREQ": ("Frequency", "频率"),
    "INDEX": ("Index", "指数"),
    "TIME_PERIOD": ("Time period", "时间"),
    "OBS_VALUE": ("Observation value", "观测值"),
    "OBS_STATUS": ("Observation status", "观测状态"),
    "UNIT_MEASURE": ("Unit of measure", "计量单位"),
    "CURRENCY": ("Currency", "货币"),
}
REFERENCES = (
    "none",
    "parents",
    "parentsandsiblings",
    "children",
    "descendants",
    "all",
    *RESOURCES,
)
ALL_IDS = ("all", "*")
LATEST = ("latest", "~", "*", "all", "+", VERSION, f"{VERSION}+")


@dataclass(frozen=True)
class Code:
    id: str
    name_en: str
    name_zh: str | None = None


@dataclass(frozen=True)
class Artefact:
    kind: str
    """One of :data:`RESOURCES`."""
    id: str
    name_en: str
    name_zh: str | None
    items: tuple[Code, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return self.kind, self.id


@dataclass(frozen=True)
class Structures:
    """Every artefact of the dataflow, built from the indices of the store."""

    artefacts: tuple[Artefact, ...]

    @classmethod
    def of(cls, indices: list[SeriesInfo]) -> Structures:
        codelists = (
            Artefact(
                CODELIST,
                CL_FREQ,
                "Frequency",
                "频率",
                tuple(Code(k, v) for k, v in FREQUENCIES.items()),
            ),
            Artefact(
                CODELIST,
                CL_INDEX,
                "Beijing bulk-commodity price indices",
                "北京大宗商品价格指数",
                tuple(Code(i.code, i.name_en, i.name_zh) for i in indices),
            ),
            Artefact(
                CODELIST,
                CL_OBS_STATUS,
                "Observation status (SDMX cross-domain codes)",
                "观测状态",
                tuple(Code(k, v) for k, v in sorted(OBS_STATUS_NAMES.items())),
            ),
        )
        concepts = tuple(Code(k, en, zh) for k, (en, zh) in CONCEPTS.items())
        return cls(
            (
                Artefact(DATAFLOW, FLOW, "Index values", "指数值"),
                Artefact(
                    DATASTRUCTURE,
                    FLOW,
                    "Beijing bulk-commodity price indices",
                    "北京大宗商品价格指数",
                ),
                Artefact(
                    CONCEPTSCHEME, CONCEPT_SCHEME, "Concepts of the indices", "指数概念", concepts
                ),
                *codelists,
            )
        )

    def find(self, kind: str) -> list[Artefact]:
        return [a for a in self.artefacts if a.kind == kind]

    def children(self, artefact: Artefact) -> list[Artefact]:
        if artefact.kind == DATAFLOW:
            return self.find(DATASTRUCTURE)
        if artefact.kind == DATASTRUCTURE:
            return [*self.find(CONCEPTSCHEME), *self.find(CODELIST)]
        return []

    def parents(self, artefact: Artefact) -> list[Artefact]:
        return [a for a in self.artefacts if artefact in self.children(a)]

    def descendants(self, artefact: Artefact) -> list[Artefact]:
        out: list[Artefact] = []
        for child in self.children(artefact):
            out += [child, *self.descendants(child)]
        return out

    def related(self, artefact: Artefact, references: str) -> list[Artefact]:
        """The artefacts ``references`` adds to ``artefact`` (SDMX-REST semantics)."""
        parents = self.parents(artefact)
        siblings = [s for p in parents for s in self.children(p)]
        chosen = {
            "none": [],
            "parents": parents,
            "parentsandsiblings": parents + siblings,
            "children": self.children(artefact),
            "descendants": self.descendants(artefact),
        }.get(references)
        if chosen is None:
            everything = parents + siblings + self.descendants(artefact)
            chosen = (
                everything
                if references == "all"
                else [a for a in everything + self._ancestors(artefact) if a.kind == references]
            )
        return [a for a in chosen if a != artefact]

    def _ancestors(self, artefact: Artefact) -> list[Artefact]:
        out: list[Artefact] = []
        for parent in self.parents(artefact):
            out += [parent, *self._ancestors(parent)]
        return out

    def select(
        self, kind: str, agency: str, resource_id: str, version: str, references: str
    ) -> list[Artefact]:
        """The artefacts a structure query asks for, with the ones ``references`` adds."""
        kinds = RESOURCES if kind in ("*", "structure") else (kind,)
        if any(k not in RESOURCES for k in kinds):
            raise SdmxSyntaxError(
                f"structure type {kind!r} is not offered; use one of {', '.join(RESOURCES)}"
            )
        if references not in REFERENCES:
            raise SdmxSyntaxError(
                f"references={references!r} is not allowed; use one of {', '.join(REFERENCES)}"
            )
        agencies = [a.strip() for a in agency.split(",")]
        if not any(a in (AGENCY, *ALL_IDS) for a in agencies):
            raise NoResults(f"no structures of agency {agency!r}; the agency is {AGENCY}")
        versions = [v.strip() for v in version.split(",")]
        if not any(v in LATEST for v in versions):
            raise NoResults(f"no version {version!r}; the structures have version {VERSION}")
        ids = {i.strip() for i in resource_id.split(",")}
        wanted = [
            a for a in self.artefacts if a.kind in kinds and (ids & set(ALL_IDS) or a.id in ids)
        ]
        if not wanted:
            raise NoResults(f"no {kind} {resource_id!r} of agency {AGENCY}")
        out = list(wanted)
        for artefact in wanted:
            out += [a for a in self.related(artefact, references) if a not in out]
        return out
