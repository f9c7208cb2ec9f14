"""Small worlds for the rebalance tests: a composite ``T`` with one sector per commodity,
bounds that never bind (so the weights are the hand-computed targets), under the rules of
a shipped version (2025.2 or 2026.1) with the world's own commodities, in force from the
base date (so its rules judge every window) unless ``effective_from`` says otherwise."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from core.catalogue import Catalogue
from core.methodology import Methodology, load_methodology
from store import models
from store.db import session_scope
from tests.methodology_support import split_world
from tests.test_methodology_fallbacks import BEIJING

OPEN_BOUNDS = {"commodity_cap": 1.0, "sector_cap": 1.0, "floor": 0.0}
BASE_DATE = dt.date(2025, 1, 2)


def world(
    version: str,
    production: dict[str, float],
    *,
    joins: dict[str, tuple[float, dt.date]] | None = None,
    effective_from: dt.date = BASE_DATE,
    **rebalance,
) -> tuple[Catalogue, Methodology]:
    """Commodities ``production`` (code → production value, base weights in proportion),
    plus ``joins`` (code → (weight, joins_on)), under ``version``'s rules."""
    joins = joins or {}
    text = """
[index_family]
base_date = 2025-01-02
base_value = 1000.0

[composite]
code = "T"
name_en = "Test composite"
name_zh = "测试综合指数"
"""
    total = sum(v for code, v in production.items() if code not in joins)
    for code, value in production.items():
        extra = ""
        weight = value / total
        if code in joins:
            weight, day = joins[code]
            extra = f"joins_on = {day.isoformat()}\n"
        text += f"""
[[sectors]]
code = "S{code}"
index_code = "T-{code}"
name_en = "Sector {code}"
name_zh = "板块{code}"

[[commodities]]
code = "{code}"
name_en = "{code.title()}"
name_zh = "商品{code}"
sector = "S{code}"
unit = "t"
currency = "CNY"
weight = {weight!r}
production_value = {value!r}
listed_on = 2020-01-01
price_band = [1.0, 100000.0]
spec = {{ description = "{code.lower()}" }}
{extra}"""
    catalogue, methodology = split_world(text, load_methodology(version))
    rules = methodology.rebalance.model_copy(update={**OPEN_BOUNDS, **rebalance})
    return catalogue, methodology.model_copy(
        update={"rebalance": rules, "effective_from": effective_from, "supersedes": None}
    )


def at(day: dt.date, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hh, mm, tzinfo=BEIJING)


def members(engine, effective: dt.date) -> dict[str, models.WeightSetMember]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(models.WeightSetMember, models.Commodity.code)
            .join(models.Commodity, models.Commodity.id == models.WeightSetMember.commodity_id)
            .join(models.WeightSet, models.WeightSet.id == models.WeightSetMember.weight_set_id)
            .where(models.WeightSet.effective_from == effective)
        ).all()
        session.expunge_all()
    return {code: member for member, code in rows}


def composite_weights(engine, effective: dt.date) -> dict[str, float]:
    """The composite's constituent weights from ``effective``."""
    with session_scope(engine) as session:
        return dict(
            session.execute(
                select(models.Commodity.code, models.IndexConstituent.weight)
                .join(
                    models.IndexConstituent,
                    models.IndexConstituent.commodity_id == models.Commodity.id,
                )
                .join(
                    models.IndexDefinition,
                    models.IndexDefinition.id == models.IndexConstituent.index_id,
                )
                .where(
                    models.IndexDefinition.code == "T",
                    models.IndexConstituent.effective_from == effective,
                )
            ).all()
        )
