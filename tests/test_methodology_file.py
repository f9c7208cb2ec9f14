"""The methodology file: the version in force loads, it agrees with the catalogue and with
METHODOLOGY.md, every earlier version still loads (old values are reproduced with it), and a
broken one is refused with the field named."""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path

import pytest

from core.calendar import Calendar
from core.errors import MethodologyError
from core.methodology import (
    METHODOLOGY_DIR,
    in_force,
    load_methodology,
    parse_methodology,
    superseded_by,
    versions,
)

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = (ROOT / "METHODOLOGY.md").read_text(encoding="utf-8")


FIRST_VERSION = "2025.1"
"""The first published version: its values stand, so its file must keep loading."""


def test_the_version_in_force_is_its_file():
    methodology = in_force()
    version = methodology.version
    assert (METHODOLOGY_DIR / f"v{version}.toml").is_file()
    assert load_methodology(version) == methodology
    assert methodology == versions()[-1]  # the newest version effective today
    assert f"Version **{version}**" in DOCUMENT
    assert f"[`core/methodology/v{version}.toml`](core/methodology/v{version}.toml)" in DOCUMENT
    assert f"## 9. Parameters of version {version} " in DOCUMENT


def test_every_published_version_still_loads_and_the_document_lists_it():
    published = versions()
    assert FIRST_VERSION in {m.version for m in published}
    first = load_methodology(FIRST_VERSION)
    assert first.version == FIRST_VERSION
    assert first.calendar.rule == "weekdays"  # 2025.1 as published: weekdays, no holidays
    assert first.calendar.holidays == frozenset()
    changes = {row[0]: row for row in _table_rows("## 10. Changes")}
    for methodology in published:
        path = METHODOLOGY_DIR / f"v{methodology.version}.toml"
        assert path.is_file(), methodology.version
        assert parse_methodology(path.read_text(encoding="utf-8")) == methodology
        row = changes[methodology.version]
        day = methodology.effective_from
        assert row[1] == f"{day.day} {day:%B %Y}", methodology.version
        if methodology.change:
            assert f"`{methodology.change}`" in row[2], methodology.version
    # Every version after the first corrects it (directly or not) or follows it.
    for methodology in published:
        if methodology.version != FIRST_VERSION:
            corrects = FIRST_VERSION in superseded_by(methodology)
            assert corrects or methodology.effective_from > first.effective_from


def test_every_catalogue_commodity_has_rules_and_a_production_value(catalogue):
    methodology = in_force()
    codes = {c.code for c in catalogue.commodities}
    assert set(methodology.assessment.commodities) == codes
    for code in codes:
        rule = methodology.assessment.rule(code)
        assert rule.min_lot > 0 and rule.min_volume > 0
        assert set(rule.related) <= codes
    assert set(methodology.commodities) == codes
    assert all(methodology.commodity(code).production_value for code in codes)
    assert {c.currency for c in catalogue.commodities} <= set(methodology.rebalance.fx_to_cny)


def test_initial_weights_respect_the_rebalance_bounds(catalogue):
    methodology = in_force()
    bounds = methodology.rebalance
    weight = {c.code: methodology.commodity(c.code).weight for c in catalogue.commodities}
    for code, w in weight.items():
        assert bounds.floor <= w <= bounds.commodity_cap, code
    for sector in catalogue.sectors:
        total = math.fsum(weight[c.code] for c in catalogue.commodities if c.sector == sector.code)
        assert total <= bounds.sector_cap + 1e-12, sector.code


def _table_rows(heading: str) -> list[list[str]]:
    section = DOCUMENT.split(heading, 1)[1].split("\n#", 1)[0]
    rows = [line.strip().strip("|").split("|") for line in section.splitlines() if "|" in line]
    return [[cell.strip() for cell in row] for row in rows[2:]]


PUBLICATION_DAYS = {
    "mainland": "mainland exchange days: weekdays that are not public holidays; no make-up days",
}
"""How §9 of the document states each calendar rule."""


def _number(text: str) -> float:
    return float(re.match(r"[\d,.]+", text).group(0).replace(",", ""))


def test_the_published_document_states_the_files_parameters():
    methodology = in_force()
    for code, lot, volume, related in _table_rows("### 4.5 Per-commodity parameters"):
        rule = methodology.assessment.rule(code)
        assert (_number(lot), _number(volume)) == (rule.min_lot, rule.min_volume), code
        assert related == (", ".join(rule.related) or "—"), code
    a, r = methodology.assessment, methodology.rebalance
    stated = dict(_table_rows("## 9. Parameters of version"))
    assert stated["publication days"] == PUBLICATION_DAYS[methodology.calendar.rule]
    fixing = Calendar(methodology).fixing_time
    assert stated["cut-off, fixing, time zone"] == (
        f"{a.cutoff:%H:%M}, {fixing:%H:%M}, {methodology.calendar.timezone}"
    )
    if a.exclusion == "sigma":
        exclusion = (
            f"k-sigma, k = {a.sigma_k:g} (MAD alternative: k = {a.mad_k:g}, scale {a.mad_scale:g})"
        )
    else:
        exclusion = (
            f"median and scaled MAD, k = {a.mad_k:g}, scale {a.mad_scale:g}, spread at least "
            f"{a.scale_floor:.0%} of the median (k-sigma alternative: k = {a.sigma_k:g})"
        )
    assert stated["outlier exclusion"] == exclusion
    assert stated["affiliated trades"] == ("excluded" if a.exclude_affiliated else "qualify")
    assert stated["minimum trades / exchanges / largest exchange share"] == (
        f"{a.min_trades} / {a.min_exchanges} / {a.max_exchange_share:.0%}"
    )
    assert stated["largest participant share (buyer or seller, one exchange)"] == (
        f"{a.max_participant_share:.0%}"
    )
    threshold = methodology.publication.review_threshold
    assert stated["review flag"] == f"day-on-day move beyond {threshold:.0%}"
    assert stated["stale days before suspension"] == str(a.stale_days)
    assert (
        stated["related-commodity spread, maximum age"]
        == f"{a.related_max_age_days} publication days"
    )
    assert stated["commodity cap / sector cap / floor"] == (
        f"{r.commodity_cap:.0%} / {r.sector_cap:.0%} / {r.floor:.0%}"
    )
    assert stated["weight targets"] == (
        f"{r.traded_value_share} traded value + {r.production_value_share} production value"
    )
    assert stated["weighting FX"] == f"USD {r.fx_to_cny['USD']:.2f} CNY"
    assert stated["intraday interval"] == f"{methodology.intraday.interval_seconds} s"


def test_the_sufficiency_table_states_the_version_in_force():
    methodology = in_force()
    a = methodology.assessment
    section = DOCUMENT.split("### 4.4 Data sufficiency", 1)[1].split("\n#", 1)[0]
    header = next(line for line in section.splitlines() if line.startswith("|"))
    assert [c.strip() for c in header.strip().strip("|").split("|")] == [
        "test",
        "parameter",
        methodology.version,
    ]
    stated = {parameter: value for _, parameter, value in _table_rows("### 4.4 Data sufficiency")}
    assert stated == {
        "`min_trades`": str(a.min_trades),
        "`min_volume`": "per commodity, below",
        "`min_exchanges`": str(a.min_exchanges),
        "`max_exchange_share`": f"{a.max_exchange_share:g}",
        "`max_participant_share`": f"{a.max_participant_share:g}",
    }


def _variant(version: str | None = None, **changes) -> str:
    version = version or in_force().version
    data = tomllib.loads((METHODOLOGY_DIR / f"v{version}.toml").read_text())
    for dotted, value in changes.items():
        *path, key = dotted.split("__")
        target = data
        for part in path:
            target = target[part]
        target[key] = value
    lines = []

    def dump(table: dict, prefix: str) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
        if prefix:
            lines.append(f"[{prefix}]")
        for key, value in scalars.items():
            lines.append(f'"{key}" = {_toml(value)}')
        for key, value in table.items():
            if isinstance(value, dict):
                dump(value, f"{prefix}.{key}" if prefix else key)

    dump(data, "")
    return "\n".join(lines)


def _toml(value) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + "}"
    return value.isoformat() if hasattr(value, "isoformat") else repr(value)


def test_a_faithful_copy_parses_to_the_same_methodology():
    assert parse_methodology(_variant()) == in_force()
    assert parse_methodology(_variant(FIRST_VERSION)) == load_methodology(FIRST_VERSION)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rebalance__production_value_share": "1/2"}, "sum to 7/6"),
        ({"assessment__sigma_k": -1.0}, "sigma_k"),
        ({"assessment__exclusion": "trimmed"}, "exclusion"),
        ({"assessment__max_exchange_share": 1.5}, "max_exchange_share"),
        ({"rebalance__announcement": "13-01"}, "month-day"),
        ({"calendar__timezone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"calendar__rule": "lunar"}, "rule"),
        ({"calendar__weekdays": [0, 8]}, "weekdays"),
        ({"assessment__commodities__HRC__related": ["HRC"]}, "names itself"),
        ({"assessment__surprise": 1}, "surprise"),
    ],
)
def test_a_broken_methodology_is_refused_naming_the_field(changes, message):
    with pytest.raises(MethodologyError) as info:
        parse_methodology(_variant(**changes), "candidate.toml")
    assert message in info.value.message
    assert info.value.context["source"] == "candidate.toml"


def test_an_unknown_version_names_the_known_ones():
    with pytest.raises(MethodologyError) as info:
        load_methodology("1999.1")
    for methodology in versions():
        assert methodology.version in info.value.message
