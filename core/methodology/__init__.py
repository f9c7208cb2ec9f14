"""The published methodology: every parameter, read from versioned documents.

:mod:`core.methodology.document` reads and validates one version; a version is never
edited, a change is a new version. :mod:`core.methodology.registry` knows every version
(shipped beside it as ``v<version>.toml``, or adopted by an operator) and names the one in
force on a day. Every published value records the version that made it, and
:func:`load_methodology` reads any version so an old value can be reproduced.
"""

from core.methodology.document import (
    AssessmentRules,
    CalendarRules,
    ChangeReason,
    CommodityOverride,
    CommodityRule,
    Exclusion,
    IntradayRules,
    Methodology,
    PublicationRules,
    RebalanceRules,
    parse_methodology,
)
from core.methodology.reference import CommodityParameters, IndexFamily
from core.methodology.registry import (
    METHODOLOGY_DIR,
    Segments,
    Version,
    in_force,
    load_methodology,
    registered,
    replaced,
    segments,
    superseded_by,
    version_on,
    versions,
)

__all__ = [
    "METHODOLOGY_DIR",
    "AssessmentRules",
    "CalendarRules",
    "ChangeReason",
    "CommodityOverride",
    "CommodityParameters",
    "CommodityRule",
    "Exclusion",
    "IndexFamily",
    "IntradayRules",
    "Methodology",
    "PublicationRules",
    "RebalanceRules",
    "Segments",
    "Version",
    "in_force",
    "load_methodology",
    "parse_methodology",
    "registered",
    "replaced",
    "segments",
    "superseded_by",
    "version_on",
    "versions",
]
