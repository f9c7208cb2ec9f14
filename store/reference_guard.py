"""The catalogue and the methodology may not change reference data that published values
rest on.

An index's base date, base value, kind and base-date weights are fixed once a value of
the index is published; a commodity's unit and currency once it has an assessment or a
stored trade (trades are normalised to them), its sector once a sector index it belongs to
has a published value. Later weights come from the annual rebalance (publication/rebalance.py).
:func:`check_catalogue` runs before :func:`store.reference.sync_catalogue` writes anything.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from core.catalogue import Catalogue, IndexDefinition
from core.errors import ReferenceDataConflict
from core.methodology import Methodology
from store import models

COMMODITY_FIELDS = ("unit", "currency")
INDEX_FIELDS = ("kind", "base_date", "base_value")
INDEX_PUBLISHED = "values of this index are published"
COMMODITY_USED = "assessments or stored trades of this commodity rest on the stored value"
SECTOR_PUBLISHED = "a sector index it belongs to has published values"


def check_catalogue(session: Session, catalogue: Catalogue, methodology: Methodology) -> None:
    """Raise :class:`ReferenceDataConflict` for the first change the catalogue would make to
    reference data that published values rest on; changes nothing."""
    commodities = {c.code: c for c in session.scalars(select(models.Commodity))}
    for item in catalogue.commodities:
        row = commodities.get(item.code)
        if row is None:
            continue
        for field in COMMODITY_FIELDS:
            stored, wanted = getattr(row, field), getattr(item, field)
            if stored != wanted and _commodity_used(session, row.id):
                raise ReferenceDataConflict(
                    "commodity", item.code, field, stored, wanted, because=COMMODITY_USED
                )
        if row.sector != item.sector and _in_published_sector(session, row.id):
            raise ReferenceDataConflict(
                "commodity", item.code, "sector", row.sector, item.sector, because=SECTOR_PUBLISHED
            )

    indices = {i.code: i for i in session.scalars(select(models.IndexDefinition))}
    for definition in catalogue.index_definitions(methodology):
        row = indices.get(definition.code)
        if row is None:
            continue
        conflict = next(_index_changes(session, row, definition), None)
        if conflict is not None and _index_published(session, row.id):
            raise conflict


def _index_changes(
    session: Session, row: models.IndexDefinition, definition: IndexDefinition
) -> Iterator[ReferenceDataConflict]:
    """Each difference between a stored index and its catalogue definition, as the error
    it is once the index has published values."""
    for field in INDEX_FIELDS:
        stored, wanted = getattr(row, field), getattr(definition, field)
        if stored != wanted:
            yield ReferenceDataConflict(
                "index", row.code, field, stored, wanted, because=INDEX_PUBLISHED
            )
    stored_weights = dict(
        session.execute(
            select(models.Commodity.code, models.IndexConstituent.weight)
            .join(models.Commodity, models.Commodity.id == models.IndexConstituent.commodity_id)
            .where(
                models.IndexConstituent.index_id == row.id,
                models.IndexConstituent.effective_from == row.base_date,
            )
        ).all()
    )
    wanted_weights = dict(definition.constituents)
    joining = [code for code in wanted_weights if code not in stored_weights]
    leaving = sorted(stored_weights.keys() - wanted_weights.keys())
    for code in [*joining, *wanted_weights, *leaving]:  # a newcomer explains the rest
        stored, wanted = stored_weights.get(code), wanted_weights.get(code)
        if stored != wanted:
            yield ReferenceDataConflict(
                "index", row.code, "weight", stored, wanted, commodity=code, because=INDEX_PUBLISHED
            )


def _index_published(session: Session, index_id: int) -> bool:
    return bool(session.scalar(select(exists().where(models.IndexValue.index_id == index_id))))


def _commodity_used(session: Session, commodity_id: int) -> bool:
    assessed = exists().where(models.Assessment.commodity_id == commodity_id)
    traded = exists().where(models.Trade.commodity_id == commodity_id)
    return bool(session.scalar(select(assessed | traded)))


def _in_published_sector(session: Session, commodity_id: int) -> bool:
    published = exists().where(
        models.IndexConstituent.commodity_id == commodity_id,
        models.IndexDefinition.id == models.IndexConstituent.index_id,
        models.IndexDefinition.kind == "sector",
        models.IndexValue.index_id == models.IndexDefinition.id,
    )
    return bool(session.scalar(select(published)))
