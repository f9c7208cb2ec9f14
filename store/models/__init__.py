"""Typed SQLAlchemy 2.0 models, one module per kind of data; every model is named here."""

from store.models.assessments import Assessment, Commodity
from store.models.base import Base, BigId, UTCDateTime, utcnow
from store.models.exchanges import ApiKey, Exchange, RateLimitCounter
from store.models.feed_log import QueuedBatch
from store.models.governance import (
    APPROVED,
    HELD,
    IN_FORCE,
    PENDING,
    MethodologyVersion,
    OperatorAct,
    Proposal,
)
from store.models.indices import (
    IndexConstituent,
    IndexDailyOHLC,
    IndexDefinition,
    IndexValue,
    IntradayIndexValue,
    NormalisingConstant,
    WeightSet,
    WeightSetMember,
)
from store.models.ledger import GENESIS_HASH, AuditChainHead, AuditComputation, AuditLink
from store.models.operations import FAILED, RUNNING, SUCCEEDED, JobRun, SchedulerInstance
from store.models.trades import (
    BandRejection,
    FxRate,
    IdempotencyRecord,
    IngestBatch,
    RestatementMark,
    Trade,
    TradeRevision,
)
from store.models.vintages import (
    FINAL,
    FIXED,
    PROVISIONAL,
    REASONS,
    RESTATED,
    WITHDRAWN,
    Alert,
    Correction,
    PublicationState,
    StandingSeries,
    Vintage,
)

metadata = Base.metadata

__all__ = [
    "APPROVED",
    "FAILED",
    "FINAL",
    "FIXED",
    "GENESIS_HASH",
    "HELD",
    "IN_FORCE",
    "PENDING",
    "PROVISIONAL",
    "REASONS",
    "RESTATED",
    "RUNNING",
    "SUCCEEDED",
    "WITHDRAWN",
    "Alert",
    "ApiKey",
    "Assessment",
    "AuditChainHead",
    "AuditComputation",
    "AuditLink",
    "BandRejection",
    "Base",
    "BigId",
    "Commodity",
    "Correction",
    "Exchange",
    "FxRate",
    "IdempotencyRecord",
    "IndexConstituent",
    "IndexDailyOHLC",
    "IndexDefinition",
    "IndexValue",
    "IngestBatch",
    "IntradayIndexValue",
    "JobRun",
    "MethodologyVersion",
    "NormalisingConstant",
    "OperatorAct",
    "Proposal",
    "PublicationState",
    "QueuedBatch",
    "RateLimitCounter",
    "RestatementMark",
    "SchedulerInstance",
    "StandingSeries",
    "Trade",
    "TradeRevision",
    "UTCDateTime",
    "Vintage",
    "WeightSet",
    "WeightSetMember",
    "metadata",
    "utcnow",
]
