"""``bcpi backtest``: a methodology version run over the stored history, set
beside what was published, with nothing published.

The history is the demo's feeds over 30 weekdays from 2 January 2025, published under
2025.2. Every expected figure is computed here from what a user can read: the published
series from the API, the published rationales from the database, the backtest's own series
from ``values.parquet``."""

from __future__ import annotations

import datetime as dt
import json
import math

import polars as pl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, select, text
from typer.testing import CliRunner

from api.app import create_app
from cli.demo import run_pipeline
from cli.main import app as cli
from core.calendar import Calendar
from core.methodology import METHODOLOGY_DIR, load_methodology
from core.settings import Settings, get_settings
from store.db import make_engine

START = dt.date(2025, 1, 2)
DAYS = 30
V2025_2 = METHODOLOGY_DIR / "v2025.2.toml"
V2026_1 = METHODOLOGY_DIR / "v2026.1.toml"
COMMODITIES = ("COTTON", "REBAR", "HRC", "IRONORE", "BEA", "CEA", "PTA", "METHANOL", "PINELOG")


@pytest.fixture
def history(database_url, catalogue, tmp_path, monkeypatch):
    """A deployment whose every value was published under 2025.2."""
    monkeypatch.chdir(tmp_path)  # the demo archives under ./var/archive
    get_settings.cache_clear()
    engine = make_engine(database_url)
    calendar = Calendar(load_methodology("2025.2"))
    run_pipeline(engine, catalogue, tmp_path / "feeds", days=DAYS, start=START, calendar=calendar)
    yield engine, database_url
    engine.dispose()
    get_settings.cache_clear()


def variant(tmp_path, version: str, *changes: tuple[str, str]):
    """2025.2 under another version number, with ``changes`` (old line, new line)."""
    document = V2025_2.read_text(encoding="utf-8")
    document = document.replace('version = "2025.2"', f'version = "{version}"')
    document = document.replace('supersedes = "2025.1"\nchange = "calendar_correction"\n', "")
    for old, new in changes:
        assert old in document
        document = document.replace(old, new)
    path = tmp_path / f"v{version}.toml"
    path.write_text(document, encoding="utf-8")
    return path


def bcpi(database_url: str, *args):
    return CliRunner().invoke(cli, [*map(str, args), "--database-url", database_url])


def backtest(database_url: str, methodology, out) -> tuple[pl.DataFrame, pl.DataFrame]:
    result = bcpi(database_url, "backtest", "--methodology", methodology, "--out", out)
    assert result.exit_code == 0, result.output
    assert "nothing was published" in result.stderr
    summary = pl.read_csv(out / "summary.csv")
    return summary, pl.read_parquet(out / "values.parquet")


def figures(summary: pl.DataFrame, index: str) -> dict:
    return summary.filter(pl.col("index") == index).row(0, named=True)


def table_contents(engine) -> dict[str, list[str]]:
    """Every row of every table, as the database holds it."""
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        return {
            name: sorted(repr(tuple(row)) for row in connection.execute(select(table)))
            for name, table in metadata.tables.items()
        }


def published_series(database_url: str, path: str, field: str = "value") -> dict:
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        answer = client.get(path)
        assert answer.status_code == 200, answer.text
        return {dt.date.fromisoformat(p["date"]): p[field] for p in answer.json()["points"]}


def rationales(engine, commodity: str) -> dict[dt.date, dict]:
    """The published assessments' rationales, read with plain SQL."""
    query = text(
        "select a.date, a.rationale from assessments a join commodities c "
        "on c.id = a.commodity_id where c.code = :code and a.superseded_at is null "
        "and a.status in ('final', 'restated')"
    )
    with engine.connect() as connection:
        rows = connection.execute(query, {"code": commodity}).all()
    out = {}
    for day, rationale in rows:
        day = day if isinstance(day, dt.date) else dt.date.fromisoformat(day)
        out[day] = json.loads(rationale) if isinstance(rationale, str) else rationale
    return out


def test_the_version_that_made_the_history_reproduces_it_and_nothing_is_written(history, tmp_path):
    engine, url = history
    before = table_contents(engine)
    summary, values = backtest(url, V2025_2, tmp_path / "same")
    assert table_contents(engine) == before

    assert summary.height == 15  # the composite, 5 sectors, 9 commodities
    assert summary["days_differing"].to_list() == [0] * 15
    for name in ("exclusions", "fallbacks", "sufficiency"):
        assert summary[f"{name}_changed_days"].to_list() == [0] * 15
    published = published_series(url, "/v1/indices/BCPI/series")
    bcpi_rows = values.filter(pl.col("index") == "BCPI")
    assert dict(zip(bcpi_rows["date"], bcpi_rows["published"], strict=True)) == published
    assert bcpi_rows["backtest"].to_list() == bcpi_rows["published"].to_list()
    assert figures(summary, "BCPI")["days_compared"] == len(published)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_2026_1_over_the_history_beside_the_published_series(history, tmp_path):
    engine, url = history
    before = table_contents(engine)
    out = tmp_path / "out"
    result = bcpi(url, "backtest", "--methodology", V2026_1, "--out", out)
    assert result.exit_code == 0, result.output
    assert table_contents(engine) == before
    assert "methodology 2026.1 over 2025-01-02.." in result.stdout
    assert "BCPI-FER" in result.stdout and "tracking error" in result.stdout

    summary = pl.read_csv(out / "summary.csv")
    values = pl.read_parquet(out / "values.parquet")
    assert values.columns == ["date", "index", "published", "backtest", "difference"]
    for code in ("BCPI", "BCPI-ENV", "COTTON"):
        published = published_series(url, f"/v1/indices/{code}/series")
        rows = values.filter(pl.col("index") == code)
        ours = dict(zip(rows["date"], rows["backtest"], strict=True))
        assert dict(zip(rows["date"], rows["published"], strict=True)) == published
        assert set(ours) == set(published)
        logs = [math.log(ours[d] / published[d]) for d in published]
        expected = {
            "days_compared": len(published),
            "days_differing": sum(ours[d] != published[d] for d in published),
            "max_abs_difference": max(abs(ours[d] - published[d]) for d in published),
            "max_rel_difference": max(abs(ours[d] / published[d] - 1) for d in published),
            "tracking_error": math.sqrt(sum(x * x for x in logs) / len(logs)),
        }
        got = figures(summary, code)
        assert got["days_compared"] == expected["days_compared"]
        assert got["days_differing"] == expected["days_differing"] > 0
        for name in ("max_abs_difference", "max_rel_difference", "tracking_error"):
            assert got[name] == pytest.approx(expected[name], rel=1e-9), name
        assert [r - p for r, p in zip(rows["backtest"], rows["published"], strict=True)] == (
            rows["difference"].to_list()
        )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_days_whose_fallbacks_and_sufficiency_change(history, tmp_path):
    engine, url = history
    strict = variant(tmp_path, "2025.9", ("min_trades = 3", "min_trades = 1000"))
    summary, _ = backtest(url, strict, tmp_path / "strict")
    # No window holds 1000 trades: every assessment falls back, and "min_trades" fails on
    # every day; the other tests are as they were.
    changed_days: dict[str, set] = {"fallbacks": set(), "sufficiency": set()}
    for commodity in COMMODITIES:
        published = published_series(url, f"/v1/assessments/{commodity}/series", "fallback")
        fallbacks = {d for d, name in published.items() if name != "suspended"}
        failed = rationales(engine, commodity)
        sufficiency = {
            d for d, r in failed.items() if "min_trades" not in r["sufficiency"]["failed"]
        }
        got = figures(summary, commodity)
        assert got["fallbacks_changed_days"] == len(fallbacks) > 0
        assert got["sufficiency_changed_days"] == len(sufficiency) > 0
        changed_days["fallbacks"] |= fallbacks
        changed_days["sufficiency"] |= sufficiency
    composite = figures(summary, "BCPI")  # every commodity is a constituent
    assert composite["fallbacks_changed_days"] == len(changed_days["fallbacks"])
    assert composite["sufficiency_changed_days"] == len(changed_days["sufficiency"])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_days_whose_exclusions_change(history, tmp_path):
    engine, url = history
    lenient = variant(tmp_path, "2025.8", ("sigma_k = 2.0", "sigma_k = 1000.0"))
    out = tmp_path / "lenient"
    summary, _ = backtest(url, lenient, out)
    changes = pl.read_csv(out / "changes.csv")
    for commodity in ("COTTON", "REBAR", "CEA"):
        outliers = {
            day
            for day, r in rationales(engine, commodity).items()
            if any(t["rule"] == "outlier_sigma" for t in r["excluded"])
        }
        assert figures(summary, commodity)["exclusions_changed_days"] == len(outliers) > 0
        listed = changes.filter(
            (pl.col("commodity") == commodity) & pl.col("changed").str.contains("exclusions")
        )
        assert {dt.date.fromisoformat(d) for d in listed["date"]} == outliers


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_range_of_the_history(history, tmp_path):
    _, url = history
    out = tmp_path / "range"
    result = bcpi(
        url,
        "backtest",
        "--methodology",
        V2025_2,
        "--start",
        "2025-01-06",
        "--end",
        "2025-01-10",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    values = pl.read_parquet(out / "values.parquet")
    assert sorted(set(values["date"])) == [dt.date(2025, 1, d) for d in range(6, 11)]
    assert pl.read_csv(out / "summary.csv")["days_differing"].to_list() == [0] * 15


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--start", "2025-13-01"], "error: --start: '2025-13-01' is not a date (YYYY-MM-DD)"),
        (["--end", "yesterday"], "error: --end: 'yesterday' is not a date (YYYY-MM-DD)"),
        (
            ["--start", "2025-02-03", "--end", "2025-01-06"],
            "error: --start: 2025-02-03 is after --end 2025-01-06",
        ),
        (["--end", "2099-01-01"], "a backtest runs over history"),
    ],
)
def test_bad_dates_are_refused(history, arguments, message):
    _, url = history
    result = bcpi(url, "backtest", "--methodology", V2025_2, *arguments)
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_file_that_is_not_a_methodology_is_refused(engine, database_url, tmp_path):
    notes = tmp_path / "notes.toml"
    notes.write_text('title = "not a methodology"\n', encoding="utf-8")
    for path, message in (
        (notes, "error: methodology: methodology"),
        (tmp_path / "missing.toml", "error: methodology: cannot read"),
    ):
        result = bcpi(database_url, "backtest", "--methodology", path)
        assert result.exit_code == 2, result.output
        assert message in result.stderr
    empty = bcpi(database_url, "backtest", "--methodology", V2025_2)
    assert empty.exit_code == 2
    assert "nothing has been published" in empty.stderr
