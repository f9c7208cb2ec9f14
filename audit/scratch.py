"""The replay's scratch database, fed in order from the production records.

It receives the reference data as recorded (exchanges, commodities, index definitions;
weights from their application; FX rates in the order they were loaded). Before each
journaled computation, every archived batch the computation's transaction could see is
re-ingested through the ingest code (:func:`ingest.batch.ingest_batch`) at its recorded
arrival instant, and each FX load is repeated (releasing held trades) at its instant; the
computation then runs with its recorded methodology version, publication days and
``now``, so it publishes its vintages with the same ``published_at``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine, Table, select
from sqlalchemy.orm import Session

from audit.chain import file_sha256
from audit.differences import Difference, ReplayReport
from core.calendar import Calendar
from core.catalogue import Catalogue
from core.methodology import load_methodology, replaced
from core.settings import Settings
from ingest.batch import BatchSource, check_exchange_column, ingest_batch, ingest_context
from ingest.fx import release_held_trades
from ingest.readers import read_body, scan_feed
from ingest.rules import feed_rules
from publication.fixing import compute
from publication.intraday import publish_provisional
from publication.rebalance import republish
from publication.vintage import Restating
from store import models
from store.db import make_engine, session_scope
from store.ledger import reference_hash
from store.migrate import upgrade
from store.models import AuditComputation, FxRate, WeightSet

BATCH_COUNTS = ("rows_total", "accepted", "duplicates", "rejected", "held", "revised")


def _rows(session: Session, table: Table, *where) -> list[dict[str, Any]]:
    query = select(table).where(*where) if where else select(table)
    return [dict(row) for row in session.execute(query).mappings()]


def _insert(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(table.insert(), rows)


class Scratch:
    """The replay's own database and the production records it is fed from, in order."""

    def __init__(
        self,
        source: Session,
        directory: Path,
        *,
        catalogue: Catalogue,
        settings: Settings,
        archive_dir: Path,
        report: ReplayReport,
    ) -> None:
        self.source = source
        self.catalogue = catalogue
        self.settings = settings
        self.calendar = Calendar.from_settings(settings)
        self.archive_dir = Path(archive_dir)
        self.report = report
        self.engine: Engine = make_engine(f"sqlite:///{directory / 'replay.db'}")
        upgrade(self.engine)
        self.exchange_codes = dict(
            source.execute(select(models.Exchange.id, models.Exchange.code)).all()
        )
        self.batches = _rows(source, models.IngestBatch.__table__)
        self.batches.sort(key=lambda b: b["id"])
        fx = _rows(source, FxRate.__table__)
        fx.sort(key=lambda r: r["id"])
        self.fx_loads: list[list[dict[str, Any]]] = []
        for rate in fx:
            if self.fx_loads and self.fx_loads[-1][0]["loaded_at"] == rate["loaded_at"]:
                self.fx_loads[-1].append(rate)
            else:
                self.fx_loads.append([rate])
        self.weight_sets = {
            ws.effective_from: ws.applied_at
            for ws in source.scalars(select(WeightSet).where(WeightSet.applied_at.is_not(None)))
        }
        self.constituents = _rows(source, models.IndexConstituent.__table__)
        self.placed_weights: set[int] = set()
        self.file_digests: dict[str, str] = {}
        self.file_frames: dict[str, pl.DataFrame] = {}
        with session_scope(self.engine) as scratch:
            for model in (models.Exchange, models.Commodity, models.IndexDefinition):
                _insert(scratch, model.__table__, _rows(source, model.__table__))

    def dispose(self) -> None:
        self.engine.dispose()

    # reference data in force at an instant

    def place_weights(self, now: dt.datetime) -> None:
        """Weights from the catalogue at once; a rebalance's weights from its application."""
        due = []
        for row in self.constituents:
            applied = self.weight_sets.get(row["effective_from"])
            if row["id"] not in self.placed_weights and (applied is None or applied <= now):
                due.append(row)
                self.placed_weights.add(row["id"])
        if due:
            with session_scope(self.engine) as scratch:
                _insert(scratch, models.IndexConstituent.__table__, due)

    # inputs up to a computation

    def feed_until(self, last_batch_id: int | None, last_fx_id: int | None) -> None:
        """Re-ingest the batches and repeat the FX loads a computation could see, in the
        order they arrived."""
        batches = [
            b for b in self.batches if last_batch_id is not None and b["id"] <= last_batch_id
        ]
        loads = [
            load
            for load in self.fx_loads
            if last_fx_id is not None and load[-1]["id"] <= last_fx_id
        ]
        events = [(b["received_at"], 1, b["id"], "batch", b) for b in batches]
        events += [(load[0]["loaded_at"], 0, load[0]["id"], "fx", load) for load in loads]
        for _, _, _, kind, item in sorted(events, key=lambda e: e[:3]):
            if kind == "batch":
                self.batches.remove(item)
                self.replay_batch(item)
            else:
                self.fx_loads.remove(item)
                self.replay_fx(item)

    def replay_fx(self, load: list[dict[str, Any]]) -> None:
        now = load[0]["loaded_at"]
        with session_scope(self.engine) as scratch:
            _insert(scratch, FxRate.__table__, load)
            rules = feed_rules(scratch, self.catalogue, self.calendar)
            release_held_trades(scratch, rules, now=now)

    def _archived(self, batch: dict[str, Any]) -> Path | None:
        relative = batch["archive_path"]
        if relative is None:
            self._batch_problem(batch, "archive_path", "archived bytes", None)
            return None
        path = self.archive_dir / relative
        if relative not in self.file_digests:
            try:
                self.file_digests[relative] = file_sha256(path)
            except OSError as exc:
                self._batch_problem(batch, "archive", relative, f"unreadable: {exc}")
                return None
        if self.file_digests[relative] != batch["sha256"]:
            self._batch_problem(batch, "sha256", batch["sha256"], self.file_digests[relative])
            return None
        return path

    def _frame(self, batch: dict[str, Any], path: Path) -> pl.DataFrame:
        if batch["source"] == "file":
            relative = batch["archive_path"]
            if relative not in self.file_frames:  # one file kept: its parts come in a row
                self.file_frames = {relative: scan_feed(path).collect()}
            first = (batch["first_row"] or 1) - 1
            return self.file_frames[relative].slice(first, batch["rows_total"])
        return read_body(path.read_bytes(), batch["format"])

    def replay_batch(self, batch: dict[str, Any]) -> None:
        self.report.batches += 1
        path = self._archived(batch)
        if path is None:
            return
        code = self.exchange_codes[batch["exchange_id"]]
        frame = self._frame(batch, path)
        with session_scope(self.engine) as scratch:
            ctx = ingest_context(
                scratch,
                self.catalogue,
                code,
                settings=self.settings,
                now=batch["received_at"],
                calendar=self.calendar,
            )
            check_exchange_column(frame, code)
            source = BatchSource(
                batch["source"],
                batch["format"] or batch["source"],
                batch["sha256"],
                batch["archive_path"],
                batch["filename"],
                batch["first_row"] or 1,
            )
            result = ingest_batch(scratch, ctx, frame, source)
            replayed = scratch.get(models.IngestBatch, result.batch_id)
            for name in BATCH_COUNTS:
                if getattr(replayed, name) != batch[name]:
                    self._batch_problem(batch, name, batch[name], getattr(replayed, name))

    def _batch_problem(self, batch: dict[str, Any], name: str, published, replayed) -> None:
        code = f"{self.exchange_codes.get(batch['exchange_id'], '?')} batch {batch['id']}"
        self.report.differences.append(
            Difference("batch", code, None, batch["received_at"], name, published, replayed)
        )

    # computations

    def run(self, entry: AuditComputation) -> None:
        self.feed_until(entry.last_batch_id, entry.last_fx_id)
        self.place_weights(entry.computed_at)
        calendar = Calendar(
            load_methodology(entry.methodology_version),
            days=[dt.date.fromisoformat(d) for d in entry.trading_days],
        )
        now = entry.computed_at
        with session_scope(self.engine) as scratch:
            seen = reference_hash(scratch)
            if seen != entry.reference_hash:
                self.report.differences.append(
                    Difference(
                        "journal",
                        f"computation {entry.id} ({entry.kind})",
                        entry.start,
                        now,
                        "reference_hash",
                        entry.reference_hash,
                        seen,
                    )
                )
            if entry.kind == "compute":
                methodology = calendar.methodology
                rules = Restating(methodology.version, replaced(methodology))
                rules = rules.recorded(entry.restating)
                compute(scratch, entry.start, entry.end, now=now, calendar=calendar, rules=rules)
            elif entry.kind == "provisional":
                publish_provisional(scratch, now, calendar=calendar)
            elif entry.kind == "reweight":
                republish(scratch, entry.start, now, calendar)
        self.report.computations += 1
