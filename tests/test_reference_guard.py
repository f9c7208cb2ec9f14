"""Reference data behind published values does not change by editing the catalogue or the
methodology.

Rule: an index's base date, base value and base-date weights are fixed once the index has
a published value; a commodity's unit and currency once it has an assessment or a stored
trade; its sector once a sector index it belongs to has a published value. Everything else
(a database without values, names, specifications, new commodities and indices) still
follows the catalogue, and a refused catalogue changes nothing at all.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from cli.main import app as cli
from core.calendar import Calendar
from core.catalogue import Catalogue, load_catalogue
from core.errors import ReferenceDataConflict
from core.methodology import Methodology, in_force
from core.settings import Settings
from ingest.files import ingest_file
from store import models
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from store.reference import ensure_exchange
from tests.methodology_support import split_world
from tests.publication_data import T0, publish_assessments, publish_index
from tests.test_composite import FEED, SMALL_WORLD

BASE = dt.date(2025, 12, 30)
WEIGHTS = [("weight = 0.6", "weight = 0.5"), ("weight = 0.4", "weight = 0.5")]
BASE_VALUE = [("base_value = 1000.0", "base_value = 100.0")]
BASE_DATE = [("base_date = 2025-12-30", "base_date = 2025-12-31")]
COTTON = 'sector = "agriculture"\nunit = "t"\ncurrency = "CNY"'
COTTON_USD = [(COTTON, COTTON.replace("CNY", "USD"))]
COTTON_KG = [(COTTON, COTTON.replace('"t"', '"kg"'))]
REBAR = 'sector = "ferrous"\nunit = "t"\ncurrency = "CNY"'
REBAR_USD = [(REBAR, REBAR.replace("CNY", "USD"))]
RENAMED = [
    ('name_en = "Rebar"', 'name_en = "Reinforcing bar"'),
    ('name_zh = "螺纹钢"', 'name_zh = "钢筋"'),
    ('name_en = "Test composite"', 'name_en = "Test composite index"'),
    ('spec = { description = "rebar" }', 'spec = { description = "HRB400E, 20 mm" }'),
]
ENERGY = """
[[sectors]]
code = "energy"
index_code = "TEST-ENE"
name_en = "Energy"
name_zh = "能源"
"""
# Coal at 20%: rebar 0.6 → 0.5, cotton 0.4 → 0.3.
WITH_COAL = [("weight = 0.6", "weight = 0.5"), ("weight = 0.4", "weight = 0.3")]


def coal(sector: str) -> str:
    return f"""
[[commodities]]
code = "COAL"
name_en = "Thermal coal"
name_zh = "动力煤"
sector = "{sector}"
unit = "t"
currency = "CNY"
weight = 0.2
listed_on = 2020-01-01
price_band = [100.0, 3000.0]
spec = {{ description = "coal" }}
"""


def from_next_year(world: tuple[Catalogue, Methodology]) -> tuple[Catalogue, Methodology]:
    """``world`` as a version that takes effect after the values published here."""
    catalogue, methodology = world
    return catalogue, methodology.model_copy(update={"effective_from": dt.date(2026, 1, 1)})


def edited(*changes: tuple[str, str], extra: str = "") -> tuple[Catalogue, Methodology]:
    text = SMALL_WORLD
    for old, new in changes:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return split_world(text + extra)


@pytest.fixture
def store(database_url):
    engine = make_engine(database_url)
    prepare_database(engine, *split_world(SMALL_WORLD))
    yield engine
    engine.dispose()


def publish(engine, *codes: str) -> None:
    for code in codes:
        publish_index(engine, code, {BASE: 1000.0, dt.date(2025, 12, 31): 1010.0}, now=T0)


def assess(engine, code: str) -> None:
    point = {"date": BASE, "price": 15000.0, "trades": 2, "volume": 3.0}
    point |= {"high": 15003.0, "low": 14994.0, "fallback": "none"}
    publish_assessments(engine, code, [point], now=T0)


def weights(engine, code: str, base: dt.date = BASE) -> dict[str, float]:
    with session_scope(engine) as session:
        return dict(
            session.execute(
                select(models.Commodity.code, models.IndexConstituent.weight)
                .join(models.Commodity, models.Commodity.id == models.IndexConstituent.commodity_id)
                .join(
                    models.IndexDefinition,
                    models.IndexDefinition.id == models.IndexConstituent.index_id,
                )
                .where(
                    models.IndexDefinition.code == code,
                    models.IndexConstituent.effective_from == base,
                )
            ).all()
        )


def index(engine, code: str) -> models.IndexDefinition | None:
    with session_scope(engine) as session:
        return session.scalar(
            select(models.IndexDefinition).where(models.IndexDefinition.code == code)
        )


def commodity(engine, code: str) -> models.Commodity | None:
    with session_scope(engine) as session:
        return session.scalar(select(models.Commodity).where(models.Commodity.code == code))


def constituent_rows(engine) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(models.IndexConstituent))


@pytest.mark.parametrize(
    "catalogue",
    [
        pytest.param(lambda: split_world(SMALL_WORLD), id="small"),
        pytest.param(lambda: edited(*WEIGHTS, *BASE_VALUE, *COTTON_USD), id="edited"),
        pytest.param(lambda: (load_catalogue(Settings().catalogue_path), in_force()), id="shipped"),
    ],
)
def test_a_fresh_database_takes_any_catalogue(database_url, catalogue):
    engine = make_engine(database_url)
    wanted, methodology = catalogue()
    prepare_database(engine, wanted, methodology)
    composite = wanted.index_definitions(methodology)[0]
    assert weights(engine, composite.code, composite.base_date) == dict(composite.constituents)
    assert index(engine, composite.code).base_value == composite.base_value
    engine.dispose()


def test_without_published_values_every_edit_applies(store):
    prepare_database(store, *edited(*WEIGHTS, *BASE_VALUE, *BASE_DATE, *COTTON_USD))
    new_base = dt.date(2025, 12, 31)
    assert weights(store, "TEST", new_base) == {"REBAR": 0.5, "COTTON": 0.5}
    test = index(store, "TEST")
    assert (test.base_date, test.base_value) == (new_base, 100.0)
    assert commodity(store, "COTTON").currency == "USD"


@pytest.mark.parametrize(
    ("changes", "field", "member", "stored", "wanted"),
    [
        (WEIGHTS, "weight", "REBAR", 0.6, 0.5),
        (BASE_VALUE, "base_value", None, 1000.0, 100.0),
        (BASE_DATE, "base_date", None, BASE, dt.date(2025, 12, 31)),
    ],
    ids=["weight", "base_value", "base_date"],
)
def test_published_index_refuses_a_change_of_what_its_values_rest_on(
    store, changes, field, member, stored, wanted
):
    publish(store, "TEST")
    rows = constituent_rows(store)
    with pytest.raises(ReferenceDataConflict) as info:
        prepare_database(store, *edited(*changes))
    error = info.value
    assert (error.subject, error.code, error.field) == ("index", "TEST", field)
    assert (error.commodity, error.stored, error.catalogue) == (member, stored, wanted)
    assert "TEST" in error.message and "restore" in error.message
    if member:
        assert member in error.message and "bcpi rebalance announce" in error.message
    assert weights(store, "TEST") == {"REBAR": 0.6, "COTTON": 0.4}
    test = index(store, "TEST")
    assert (test.base_date, test.base_value) == (BASE, 1000.0)
    assert constituent_rows(store) == rows


def test_weights_of_indices_without_values_still_change(store):
    # Only the agriculture sector has values; cotton is its only member, weight 1 either way.
    publish(store, "TEST-AGR", "COTTON")
    prepare_database(store, *from_next_year(edited(*WEIGHTS)))
    assert weights(store, "TEST") == {"REBAR": 0.5, "COTTON": 0.5}
    assert weights(store, "TEST-AGR") == {"COTTON": 1.0}


@pytest.mark.parametrize(
    ("changes", "field", "stored", "wanted"),
    [(COTTON_USD, "currency", "CNY", "USD"), (COTTON_KG, "unit", "t", "kg")],
    ids=["currency", "unit"],
)
def test_assessed_commodity_refuses_a_new_currency_or_unit(store, changes, field, stored, wanted):
    assess(store, "COTTON")
    with pytest.raises(ReferenceDataConflict) as info:
        prepare_database(store, *edited(*changes))
    error = info.value
    assert (error.subject, error.code, error.field) == ("commodity", "COTTON", field)
    assert (error.stored, error.catalogue) == (stored, wanted)
    assert "COTTON" in error.message
    cotton = commodity(store, "COTTON")
    assert (cotton.unit, cotton.currency) == ("t", "CNY")


def test_stored_trades_alone_fix_the_currency(store, tmp_path):
    with session_scope(store) as session:
        ensure_exchange(session, "X")
    feed = tmp_path / "feed.csv"
    feed.write_text("\n".join(FEED) + "\n")
    with session_scope(store) as session:
        catalogue, methodology = split_world(SMALL_WORLD)
        result = ingest_file(session, catalogue, feed, "X", calendar=Calendar(methodology))
        assert result.accepted == 12
    with pytest.raises(ReferenceDataConflict) as info:
        prepare_database(store, *edited(*COTTON_USD))
    assert (info.value.code, info.value.field) == ("COTTON", "currency")
    assert commodity(store, "COTTON").currency == "CNY"


def test_currency_of_a_commodity_without_assessments_or_trades_still_changes(store):
    assess(store, "COTTON")
    prepare_database(store, *edited(*REBAR_USD))
    assert commodity(store, "REBAR").currency == "USD"


def test_sector_is_fixed_once_a_sector_index_it_belongs_to_is_published(database_url):
    engine = make_engine(database_url)
    prepare_database(engine, *edited(*WITH_COAL, extra=coal("agriculture")))
    publish(engine, "TEST-AGR")
    with pytest.raises(ReferenceDataConflict) as info:
        prepare_database(engine, *edited(*WITH_COAL, extra=coal("ferrous")))
    error = info.value
    assert (error.subject, error.code, error.field) == ("commodity", "COAL", "sector")
    assert (error.stored, error.catalogue) == ("agriculture", "ferrous")
    assert commodity(engine, "COAL").sector == "agriculture"
    assert set(weights(engine, "TEST-FER")) == {"REBAR"}
    engine.dispose()


def test_names_and_specifications_follow_the_catalogue_after_publication(store):
    publish(store, "TEST", "TEST-FER", "REBAR")
    assess(store, "REBAR")
    prepare_database(store, *edited(*RENAMED))
    rebar = commodity(store, "REBAR")
    assert (rebar.name_en, rebar.name_zh) == ("Reinforcing bar", "钢筋")
    assert rebar.spec == {"description": "HRB400E, 20 mm"}
    assert index(store, "REBAR").name_en == "Reinforcing bar"
    assert index(store, "TEST").name_en == "Test composite index"
    assert weights(store, "TEST") == {"REBAR": 0.6, "COTTON": 0.4}


def test_a_new_commodity_and_its_indices_are_created(store):
    # The composite has no values yet, so its weights may make room for coal.
    publish(store, "TEST-FER", "REBAR")
    prepare_database(store, *from_next_year(edited(*WITH_COAL, extra=ENERGY + coal("energy"))))
    assert commodity(store, "COAL").sector == "energy"
    assert index(store, "TEST-ENE").kind == "sector"
    assert weights(store, "TEST-ENE") == {"COAL": 1.0}
    assert weights(store, "COAL") == {"COAL": 1.0}
    assert weights(store, "TEST") == {"REBAR": 0.5, "COTTON": 0.3, "COAL": 0.2}
    assert weights(store, "REBAR") == {"REBAR": 1.0}


def test_a_refused_catalogue_changes_nothing(store):
    publish(store, "TEST")
    rows = constituent_rows(store)
    world = edited(*WITH_COAL, *RENAMED, extra=ENERGY + coal("energy"))
    with pytest.raises(ReferenceDataConflict) as info:
        prepare_database(store, *world)
    assert (info.value.code, info.value.commodity) == ("TEST", "COAL")
    assert "joins an index whose values are published only from a stated date" in info.value.message
    assert commodity(store, "COAL") is None and index(store, "TEST-ENE") is None
    assert commodity(store, "REBAR").name_en == "Rebar"
    assert constituent_rows(store) == rows


def use(monkeypatch, world: tuple[Catalogue, Methodology]) -> None:
    catalogue, methodology = world
    monkeypatch.setattr("cli.common.load_catalogue", lambda path: catalogue)
    monkeypatch.setattr("store.bootstrap.in_force", lambda: methodology)


def test_cli_reports_the_conflict_without_a_traceback(store, database_url, monkeypatch):
    publish(store, "TEST")
    use(monkeypatch, edited(*BASE_VALUE))
    result = CliRunner().invoke(cli, ["db", "upgrade", "--database-url", database_url])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: index TEST: ")
    assert "base_value" in result.stderr and "Traceback" not in result.output
    assert index(store, "TEST").base_value == 1000.0


def test_the_scheduler_refuses_to_start_on_a_conflict(store, database_url, monkeypatch):
    publish(store, "TEST")
    use(monkeypatch, edited(*BASE_VALUE))
    monkeypatch.setattr(
        "scheduler.service.SchedulerService.serve_forever",
        lambda self: pytest.fail("the scheduler started despite the conflict"),
    )
    result = CliRunner().invoke(cli, ["scheduler", "--database-url", database_url])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: index TEST: ")
    assert "Traceback" not in result.output
