"""Domain errors. Each carries what went wrong; the API maps them to HTTP in one place."""

from __future__ import annotations


class BcpiError(Exception):
    """Base of every error bcpi raises on purpose."""

    status_code = 400

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.context = context


class CatalogueError(BcpiError):
    """The catalogue file is inconsistent."""


class UnknownIndex(BcpiError):
    status_code = 404

    def __init__(self, code: str) -> None:
        super().__init__(f"no index with code {code!r}", code=code)
        self.code = code


class InvalidRange(BcpiError):
    status_code = 422


class IngestError(BcpiError):
    """A feed file or body cannot be read at all (rows with bad values are rejections instead)."""

    status_code = 422


class UnknownExchange(BcpiError):
    status_code = 404

    def __init__(self, code: str) -> None:
        super().__init__(f"no exchange with code {code!r}", code=code)


class InvalidInput(BcpiError, ValueError):
    """An argument handed to a computation (a formula's data, a range, …) is unusable;
    ``field`` names it, ``reason`` says why."""

    status_code = 422

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", field=field)
        self.field = field
        self.reason = reason


class InfeasibleWeights(BcpiError):
    """The weight bounds cannot all hold at once."""

    status_code = 422


class RebalanceError(BcpiError):
    """A rebalance step asked at the wrong time (weights already effective, …)."""

    status_code = 409


class FixingTooEarly(BcpiError):
    """The fixing ran before the assessment window of its day had closed."""

    status_code = 409


class BatchRejected(BcpiError):
    """``atomic`` was asked and some row is invalid: nothing of the batch is stored.

    ``result`` is the batch's ingest result (its rejections say which rows and why).
    """

    status_code = 422

    def __init__(self, result) -> None:
        super().__init__(
            f"{result.rejected} row(s) invalid; with atomic=true nothing was stored",
            rejected=result.rejected,
        )
        self.result = result


class NotPublished(BcpiError):
    """Nothing was published for what was asked (at the instant asked about)."""

    status_code = 404


class UnknownCommodity(BcpiError):
    status_code = 404

    def __init__(self, code: str) -> None:
        super().__init__(f"no commodity with code {code!r}", code=code)


class MethodologyError(BcpiError):
    """A methodology file is unreadable or inconsistent; ``source`` names it."""

    status_code = 500


class CalendarError(BcpiError):
    """The trading calendar's configuration is inconsistent (e.g. a day both off and on)."""


class Unauthenticated(BcpiError):
    """No API key, or one that is unknown or revoked."""

    status_code = 401


class Forbidden(BcpiError):
    """A valid key that may not do this (wrong role, or another exchange's data)."""

    status_code = 403


class PayloadTooLarge(BcpiError):
    status_code = 413


class UnsupportedMediaType(BcpiError):
    status_code = 415


class IdempotencyConflict(BcpiError):
    """The same Idempotency-Key was used earlier for a different payload."""

    status_code = 409


class UnknownTrade(BcpiError):
    status_code = 404

    def __init__(self, trade_id: str) -> None:
        super().__init__(f"no trade with trade_id {trade_id!r} for this exchange")


class ReferenceDataConflict(BcpiError):
    """The catalogue or the methodology would change reference data that published values
    were computed from.

    ``subject`` is ``index`` or ``commodity``, ``code`` its code, ``field`` what would change
    (``weight`` for a base-date weight, of ``commodity``), ``stored`` and ``catalogue`` the
    stored and the wanted value (``None``: no such constituent on that side); ``because``
    says what rests on the stored value.
    """

    status_code = 409

    def __init__(
        self,
        subject: str,
        code: str,
        field: str,
        stored: object,
        catalogue: object,
        *,
        commodity: str | None = None,
        because: str = "published values rest on the stored value",
    ) -> None:
        what = f"the base-date weight of {commodity}" if commodity else field
        methodology = ("weight", "base_date", "base_value", "joins_on")
        source = "methodology" if field in methodology else "catalogue"
        remedy = f"restore the stored value in the {source}"
        if field == "joins_on":
            what = f"the day {commodity} joins"
            remedy = "give it a joins_on after the last published day"
        elif field == "weight" and stored is None:
            remedy = (
                f"a commodity joins an index whose values are published only from a stated "
                f"date: give {commodity} a joins_on after {code}'s last published day"
            )
        elif field == "weight":
            remedy += (
                ", or change weights through `bcpi rebalance announce` and `bcpi rebalance apply`"
            )
        super().__init__(
            f"{subject} {code}: the {source} changes {what} from {_shown(stored)} to "
            f"{_shown(catalogue)}, but {because}; {remedy}",
            subject=subject,
            code=code,
            field=field,
            commodity=commodity,
            stored=stored,
            catalogue=catalogue,
        )
        self.subject, self.code, self.field, self.commodity = subject, code, field, commodity
        self.stored, self.catalogue = stored, catalogue


def _shown(value: object) -> str:
    return "(none)" if value is None else repr(value) if isinstance(value, str) else str(value)


class AdoptionRefused(BcpiError):
    """A methodology version would change values already published: it takes effect on or
    before the last published day. ``published`` counts them; ``indices``, ``first`` and
    ``last`` name them."""

    status_code = 409


class ApprovalRefused(BcpiError):
    """A proposal cannot be approved: unknown, already decided, or by its proposer."""

    status_code = 409


class UnknownMethodologyVersion(BcpiError):
    status_code = 404


class UnknownParameter(InvalidInput):
    """A query parameter the endpoint does not take (often a misspelt one): ``field`` names
    it (several, comma-separated), ``allowed`` lists the parameters the endpoint takes."""

    status_code = 400

    def __init__(self, names: list[str], allowed: list[str], endpoint: str) -> None:
        taken = ", ".join(allowed) if allowed else "no query parameters"
        what = "not a query parameter" if len(names) == 1 else "not query parameters"
        super().__init__(", ".join(names), f"{what} of {endpoint}; it takes: {taken}")
        self.names, self.allowed = names, allowed


class UnknownIndices(BcpiError):
    """Index codes asked for together, some of which name no index (``codes``)."""

    status_code = 404

    def __init__(self, codes: list[str]) -> None:
        listed = ", ".join(repr(code) for code in codes)
        super().__init__(f"no index with code {listed}", codes=codes)
        self.codes = codes


class BackupError(BcpiError):
    """A backup that cannot be taken, or a restore refused (the message says why)."""

    status_code = 409


class FeedLogUnavailable(BcpiError):
    """The feed log (NATS JetStream) did not acknowledge a batch: nothing was queued."""

    status_code = 503


class UnknownBatch(BcpiError):
    status_code = 404

    def __init__(self, batch_id: str) -> None:
        super().__init__(f"no batch {batch_id!r} of this key's exchange", batch_id=batch_id)
