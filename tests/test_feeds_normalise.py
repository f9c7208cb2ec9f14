"""Normalisation to the benchmark specification, against hand computations."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from core.calendar import Calendar
from core.errors import IngestError
from core.methodology import Methodology, in_force
from core.settings import Settings
from ingest.batch import ingest_frame
from ingest.fx import load_fx
from store import models
from store.db import session_scope
from store.reference import ensure_exchange
from tests.feeds_support import frame, stored_counts, stored_trades, trade

DAY = "2025-03-03"
USD_CNY = 7.2


@pytest.fixture
def exchange(engine) -> str:
    with session_scope(engine) as session:
        ensure_exchange(session, "BJCX")
    return "BJCX"


def _fx_file(tmp_path: Path, rows: list[str], name: str = "fx.csv") -> Path:
    path = tmp_path / name
    path.write_text("date,currency,cny_per_unit\n" + "".join(r + "\n" for r in rows))
    return path


def _ingest(engine, catalogue, rows, tmp_path, **kwargs):
    settings = Settings(archive_dir=tmp_path / "archive")
    with session_scope(engine) as session:
        return ingest_frame(
            session,
            catalogue,
            frame(rows),
            exchange_code="BJCX",
            source="test",
            sha256="0" * 64,
            settings=settings,
            **kwargs,
        )


def _load_rates(engine, catalogue, path):
    with session_scope(engine) as session:
        return load_fx(session, catalogue, path, calendar=Calendar(in_force()))


def test_iron_ore_60_fe_9_moisture_cny_per_wmt_to_62_fe_usd_per_dmt(
    engine, catalogue, exchange, tmp_path
):
    _load_rates(engine, catalogue, _fx_file(tmp_path, [f"{DAY},USD,{USD_CNY}"]))
    wet = trade(
        "IO-1",
        commodity="IRONORE",
        traded_at=f"{DAY}T10:00:00+08:00",
        price="700",  # CNY per wet metric tonne
        quantity="50000",  # wet metric tonnes
        currency="CNY",
        unit="wmt",
        fe_pct="60",
        moisture_pct="9",
    )
    result = _ingest(engine, catalogue, [wet], tmp_path)
    assert (result.accepted, result.rejected, result.held) == (1, 0, 0)
    stored = stored_trades(engine)["IO-1"]

    # By hand: 50,000 wmt × (1 − 0.09) = 45,500 dmt. 700 CNY/wmt ÷ 0.91 = 769.2308 CNY/dmt;
    # ÷ 7.2 CNY per USD = 106.8376 USD/dmt at 60% Fe; × 62 / 60 = 110.3989 USD/dmt at 62% Fe.
    assert stored.quantity == pytest.approx(45_500.0, rel=1e-12)
    assert stored.price == pytest.approx(700 / 0.91 / 7.2 * 62 / 60, rel=1e-12)
    assert stored.price == pytest.approx(110.39886039886, rel=1e-11)
    assert (stored.price_raw, stored.quantity_raw) == (700.0, 50_000.0)
    assert (stored.currency_raw, stored.unit_raw) == ("CNY", "wmt")
    assert stored.adjustments == pytest.approx(
        {"dry_factor": 0.91, "fx_rate": 1 / 7.2, "pro_rata_fe_pct": 62 / 60}, rel=1e-12
    )
    assert stored.attributes == {"fe_pct": 60.0, "moisture_pct": 9.0}
    # the traded value is the same in both bases
    assert stored.price * stored.quantity == pytest.approx(700 * 50_000 / 7.2 * 62 / 60)


def test_iron_ore_penalties_are_deducted_after_the_fe_pro_rata(
    engine, catalogue, exchange, tmp_path
):
    row = trade(
        "IO-2",
        commodity="IRONORE",
        price="100",
        quantity="60000",
        currency="USD",
        unit="dmt",
        fe_pct="62",
        sio2_pct="5.5",
        al2o3_pct="2.8",
        p_pct="0.12",
    )
    _ingest(engine, catalogue, [row], tmp_path)
    stored = stored_trades(engine)["IO-2"]
    # SiO2: 1.5 USD per 1% above 4% → 1.5 × 1.5; Al2O3: 3.0 per 1% above 2.3% → 3.0 × 0.5;
    # P: 0.8 per 0.01% above 0.10% → 0.8 × 2.
    penalties = {"penalty_sio2_pct": 2.25, "penalty_al2o3_pct": 1.5, "penalty_p_pct": 1.6}
    assert stored.price == pytest.approx(100 - 2.25 - 1.5 - 1.6, rel=1e-12)
    assert stored.adjustments == pytest.approx(penalties, rel=1e-12)


def test_kg_and_lb_quantities_become_tonnes(engine, catalogue, exchange, tmp_path):
    rows = [
        trade("KG", price="3.3", quantity="10000", unit="kg"),
        trade("LB", price="1.5", quantity="2204.62262185", unit="lb"),
    ]
    _ingest(engine, catalogue, rows, tmp_path)
    stored = stored_trades(engine)
    assert stored["KG"].quantity == pytest.approx(10.0, rel=1e-12)
    assert stored["KG"].price == pytest.approx(3300.0, rel=1e-12)
    assert stored["KG"].adjustments == {"unit_factor": 0.001}
    # 1 lb = 0.45359237 kg exactly
    assert stored["LB"].quantity == pytest.approx(2204.62262185 * 0.00045359237, rel=1e-12)
    assert stored["LB"].price == pytest.approx(1.5 / 0.00045359237, rel=1e-12)


def test_cotton_grade_and_steel_spec_differentials(engine, catalogue, exchange, tmp_path):
    rows = [
        trade("C1", commodity="COTTON", price="15000", quantity="20", grade="2129B"),
        trade("C2", commodity="COTTON", price="14500", quantity="20", grade="3128B"),
        trade("C3", commodity="COTTON", price="14000", quantity="20", grade="2227B"),
        trade("S1", price="3500", grade="HRB400E", diameter_mm="12"),
        trade("S2", commodity="HRC", price="3600", grade="Q355B", thickness_mm="3.0"),
        trade("S3", commodity="HRC", price="3600", grade="Q355B", thickness_mm="3.1"),
    ]
    result = _ingest(engine, catalogue, rows, tmp_path)
    assert [(r.trade_id, r.field, r.code) for r in result.rejections] == [
        ("S3", "thickness_mm", "quality_out_of_range")
    ]
    stored = stored_trades(engine)
    # CC Index premiums over 3128B (catalogue): 2129B +400, 2227B −150
    assert stored["C1"].price == 15000 - 400
    assert stored["C1"].adjustments == {"differential_grade": 400.0}
    assert stored["C2"].price == 14500 and stored["C2"].adjustments is None
    assert stored["C3"].price == 14000 + 150
    # rebar HRB400E +30 and Ø12 mm +150 over HRB400 Ø20; coil Q355B +100 and 3.0 mm +100
    assert stored["S1"].price == 3500 - 30 - 150
    assert stored["S1"].adjustments == {
        "differential_grade": 30.0,
        "differential_diameter_mm": 150.0,
    }
    assert stored["S2"].price == 3600 - 100 - 100


def test_a_trade_without_an_fx_rate_is_held_then_released(engine, catalogue, exchange, tmp_path):
    rows = [trade("M1", commodity="METHANOL", price="300", currency="USD", quantity="500")]
    result = _ingest(engine, catalogue, rows, tmp_path)
    assert (result.accepted, result.held) == (1, 1)
    held = stored_trades(engine)["M1"]
    assert (held.status, held.hold_reason, held.price) == ("held", "fx_rate_missing", None)
    assert held.quantity == 500.0

    # a rate for another day releases nothing: nothing is guessed
    loaded = _load_rates(engine, catalogue, _fx_file(tmp_path, ["2025-03-04,USD,7.1"], "a.csv"))
    assert loaded.released == 0
    assert stored_trades(engine)["M1"].status == "held"

    loaded = _load_rates(engine, catalogue, _fx_file(tmp_path, [f"{DAY},USD,{USD_CNY}"], "b.csv"))
    assert loaded.released == 1
    released = stored_trades(engine)["M1"]
    assert (released.status, released.hold_reason) == ("active", None)
    assert released.price == pytest.approx(300 * USD_CNY, rel=1e-12)
    assert released.adjustments == pytest.approx({"fx_rate": USD_CNY}, rel=1e-12)

    # with the rate known, a new trade of that day is normalised at once
    again = _ingest(engine, catalogue, [{**rows[0], "trade_id": "M2"}], tmp_path)
    assert (again.accepted, again.held) == (1, 0)


def test_releasing_a_trade_into_a_published_day_marks_it_for_restatement(
    engine, catalogue, exchange, tmp_path
):
    _ingest(
        engine,
        catalogue,
        [trade("M1", commodity="METHANOL", price="300", currency="USD")],
        tmp_path,
    )
    with session_scope(engine) as session:
        methanol = session.query(models.Commodity).filter_by(code="METHANOL").one()
        session.add(
            models.Assessment(
                commodity_id=methanol.id,
                date=dt.date(2025, 3, 3),
                price=2400.0,
                trades=3,
                volume=30.0,
                high=2410.0,
                low=2390.0,
                exchanges=1,
                status="final",
                methodology_version="test",
                inputs_hash="x",
            )
        )
    _load_rates(engine, catalogue, _fx_file(tmp_path, [f"{DAY},USD,{USD_CNY}"]))
    with session_scope(engine) as session:
        marks = [(m.date, m.reason) for m in session.query(models.RestatementMark)]
    assert marks == [(dt.date(2025, 3, 3), "late_trade")]


def test_a_released_price_outside_the_band_stays_held_for_review(
    engine, catalogue, exchange, tmp_path
):
    rows = [trade("M9", commodity="METHANOL", price="5000", currency="USD")]  # ×7.2: 36,000
    _ingest(engine, catalogue, rows, tmp_path)
    _load_rates(engine, catalogue, _fx_file(tmp_path, [f"{DAY},USD,{USD_CNY}"]))
    stored = stored_trades(engine)["M9"]
    assert (stored.status, stored.hold_reason) == ("held", "price_out_of_band")


def test_fx_files_are_checked_whole_and_never_overwrite_a_rate(
    engine, catalogue, exchange, tmp_path
):
    _load_rates(engine, catalogue, _fx_file(tmp_path, [f"{DAY},USD,7.2"]))
    bad_files = {
        "missing column": "date,currency\n2025-03-03,USD\n",
        "bad date": "date,currency,cny_per_unit\n2025-02-30,USD,7.2\n",
        "CNY": "date,currency,cny_per_unit\n2025-03-03,CNY,1\n",
        "negative": "date,currency,cny_per_unit\n2025-03-05,USD,-7.2\n",
        "not finite": "date,currency,cny_per_unit\n2025-03-05,USD,inf\n",
        "twice": "date,currency,cny_per_unit\n2025-03-05,USD,7.2\n2025-03-05,USD,7.3\n",
        "changed": "date,currency,cny_per_unit\n2025-03-05,EUR,7.9\n2025-03-03,USD,7.25\n",
    }
    for name, text in bad_files.items():
        path = tmp_path / f"{name}.csv"
        path.write_text(text)
        with pytest.raises(IngestError):
            _load_rates(engine, catalogue, path)
    with session_scope(engine) as session:
        from store.models import FxRate

        assert [(r.currency, r.cny_per_unit) for r in session.query(FxRate)] == [("USD", 7.2)]


def test_negative_prices_only_where_the_specification_allows_them(
    engine, catalogue, exchange, tmp_path
):
    wanted = in_force().model_dump()
    wanted["commodities"]["BEA"]["price_band"] = (-50.0, 500.0)
    wanted["commodities"]["BEA"]["normalisation"]["allow_negative_prices"] = True
    negative = Methodology.model_validate(wanted)
    rows = [
        trade("N1", commodity="BEA", price="-3.5", unit="tCO2e"),
        trade("N2", commodity="BEA", price="0", unit="tCO2e"),
        trade("N3", price="-3.5"),
    ]
    result = _ingest(engine, catalogue, rows, tmp_path, calendar=Calendar(negative))
    assert [(r.trade_id, r.code) for r in result.rejections] == [("N3", "non_positive_price")]
    assert stored_trades(engine)["N1"].price == -3.5
    assert stored_counts(engine)["trades"] == 2


def test_trading_day_is_the_beijing_calendar_date(engine, catalogue, exchange, tmp_path):
    # 2025-03-02 17:30 UTC is 2025-03-03 01:30 in Beijing: the USD rate of the 3rd applies.
    _load_rates(engine, catalogue, _fx_file(tmp_path, [f"{DAY},USD,{USD_CNY}"]))
    rows = [
        trade(
            "D1",
            commodity="METHANOL",
            price="300",
            currency="USD",
            traded_at="2025-03-02T17:30:00Z",
        ),
        trade(
            "D2",
            commodity="METHANOL",
            price="300",
            currency="USD",
            traded_at="2025-03-02T15:59:59Z",
        ),
    ]
    _ingest(engine, catalogue, rows, tmp_path)
    stored = stored_trades(engine)
    assert stored["D1"].status == "active"
    assert stored["D2"].status == "held"  # 23:59:59 on the 2nd in Beijing: no rate that day


def test_normalised_frame_keeps_every_row_in_order(catalogue):
    from ingest.rules import FxTable, build_rules
    from ingest.validate import REJECT_CODE, validated_frame

    rules = build_rules(
        catalogue, {c.code: i for i, c in enumerate(catalogue.commodities)}, Calendar(in_force())
    )
    rows = [trade(f"T{i}", price=str(3000 + i)) for i in range(1000)]
    out = validated_frame(
        frame(rows).lazy(), rules, FxTable.from_rows([]), now=dt.datetime.now(dt.UTC)
    ).collect()
    assert out["row"].to_list() == list(range(1, 1001))
    assert out[REJECT_CODE].null_count() == 1000
    assert out["price_n"].to_list() == [3000.0 + i for i in range(1000)]
    assert out.schema["traded_at"] == pl.Datetime("us", "UTC")


def test_normalised_frame_names_the_local_trade_date_and_the_window_day(catalogue):
    """``trade_date`` is the Beijing date of the stamp; ``window_day`` the publication day
    whose window (after the previous publication day's 15:00 cut-off, to its own) holds it.
    By hand from the State Council's 2025 notice: the Spring Festival holiday runs from
    Tue 28 January to Tue 4 February; Sun 26 January and Sat 8 February are make-up working
    days, which are not publication days under the mainland rule."""
    from ingest.rules import FxTable, build_rules
    from ingest.validate import REJECT_CODE, validated_frame

    rules = build_rules(
        catalogue, {c.code: i for i, c in enumerate(catalogue.commodities)}, Calendar(in_force())
    )
    cases = {
        # stamp: (trade_date, window_day)
        "2025-03-03T10:00:00+08:00": ("2025-03-03", "2025-03-03"),
        "2025-03-03T15:00:00+08:00": ("2025-03-03", "2025-03-03"),  # the cut-off is inside
        "2025-03-03T15:00:01+08:00": ("2025-03-03", "2025-03-04"),
        "2025-03-02T15:59:59Z": ("2025-03-02", "2025-03-03"),  # Sunday 23:59:59 in Beijing
        "2025-03-07T16:00:00+08:00": ("2025-03-07", "2025-03-10"),  # Friday after the cut-off
        "2025-01-26T10:00:00+08:00": ("2025-01-26", "2025-01-27"),  # a make-up Sunday
        "2025-01-27T15:30:00+08:00": ("2025-01-27", "2025-02-05"),  # into the holiday
        "2025-01-31T10:00:00+08:00": ("2025-01-31", "2025-02-05"),  # a holiday weekday
        "2025-02-08T10:00:00+08:00": ("2025-02-08", "2025-02-10"),  # a make-up Saturday
    }
    rows = [trade(f"W{i}", traded_at=at) for i, at in enumerate(cases)]
    out = validated_frame(
        frame(rows).lazy(), rules, FxTable.from_rows([]), now=dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    ).collect()
    assert out[REJECT_CODE].null_count() == len(cases)
    assert "trading_date" not in out.columns
    assert out.schema["trade_date"] == pl.Date and out.schema["window_day"] == pl.Date
    got = [(d.isoformat(), w.isoformat()) for d, w in out.select("trade_date", "window_day").rows()]
    assert got == list(cases.values())
