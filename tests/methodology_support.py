"""Test worlds written the way a reader thinks of them, one table per commodity, split into
what the catalogue holds (identity) and what the methodology holds (base, weight,
production value, price band, normalisation)."""

from __future__ import annotations

import datetime as dt
import hashlib
import tomllib

from core.catalogue import Catalogue
from core.methodology import Methodology, in_force

VALUE_FIELDS = ("weight", "production_value", "price_band", "normalisation", "joins_on")
WORLD_DAY = dt.date(2026, 11, 30)
"""The test worlds' rules by default: the version in force on this day (2025.2), whose
days the worlds' dates fall on."""


def split_world(text: str, base: Methodology | None = None) -> tuple[Catalogue, Methodology]:
    """``text`` is a catalogue that also carries ``[index_family]`` and each commodity's
    value fields; returns the catalogue and ``base`` (default: the version in force on
    :data:`WORLD_DAY`) with
    those values in place of its own, as a version of its own (named after its content)."""
    data = tomllib.loads(text)
    family = data.pop("index_family", None)
    parameters = {}
    for commodity in data.get("commodities", []):
        parameters[commodity["code"]] = {
            name: commodity.pop(name) for name in VALUE_FIELDS if name in commodity
        }
    catalogue = Catalogue.model_validate(data)
    methodology = (base or in_force(WORLD_DAY)).model_dump()
    methodology["commodities"] = parameters
    if family is not None:
        methodology["index_family"] = family
    stem = methodology["version"].split("-w")[0][:20]
    digest = hashlib.sha256(repr((family, sorted(parameters.items()), stem)).encode())
    methodology["version"] = f"{stem}-w{digest.hexdigest()[:8]}"
    return catalogue, Methodology.model_validate(methodology)


def identity_text(text: str) -> str:
    """The catalogue file of a world written for :func:`split_world`: identity only."""
    kept, skipping = [], False
    for line in text.splitlines():
        if line.startswith("["):
            skipping = line.strip() == "[index_family]"
        key = line.split("=", 1)[0].strip()
        if not skipping and key not in VALUE_FIELDS:
            kept.append(line)
    return "\n".join(kept) + "\n"
