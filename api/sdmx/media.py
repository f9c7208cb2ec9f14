"""Which SDMX message a request gets, from its ``Accept`` header."""

from __future__ import annotations

from api.formats import NotAcceptable

CSV, JSON, GENERIC, SPECIFIC = "csv", "json", "generic", "structurespecific"
ML21, ML30 = "ml21", "ml30"
MEDIA_TYPES = {
    CSV: "application/vnd.sdmx.data+csv; version=2.0.0; charset=utf-8",
    JSON: "application/vnd.sdmx.data+json; version=2.0.0; charset=utf-8",
    GENERIC: "application/vnd.sdmx.genericdata+xml; version=2.1; charset=utf-8",
    SPECIFIC: "application/vnd.sdmx.structurespecificdata+xml; version=2.1; charset=utf-8",
    ML21: "application/vnd.sdmx.structure+xml; version=2.1; charset=utf-8",
    ML30: "application/vnd.sdmx.structure+xml; version=3.0.0; charset=utf-8",
}
# (media type, versions it may name (empty: any)) → message.
_DATA = (
    ("application/vnd.sdmx.data+csv", ("2.0.0", "2.0"), CSV),
    ("text/csv", (), CSV),
    ("application/vnd.sdmx.data+json", ("2.0.0", "2.0"), JSON),
    ("application/json", (), JSON),
    ("application/vnd.sdmx.genericdata+xml", ("2.1",), GENERIC),
    ("application/vnd.sdmx.structurespecificdata+xml", ("2.1",), SPECIFIC),
)
_STRUCTURE = (
    ("application/vnd.sdmx.structure+xml", ("3.0.0", "3.0"), ML30),
    ("application/vnd.sdmx.structure+xml", ("2.1",), ML21),
)
_ANY = ("*/*", "application/*", "application/xml", "text/xml", "text/*")


def _offers(accept: str) -> list[tuple[str, str | None]]:
    """(media type, version) of ``Accept``, most preferred first."""
    ranked = []
    for position, item in enumerate(accept.split(",")):
        media, *params = (part.strip() for part in item.split(";"))
        quality, version = 1.0, None
        for param in params:
            name, _, value = (p.strip() for p in param.partition("="))
            if name.lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
            elif name.lower() == "version":
                version = value.strip('"')
        if media and quality > 0:
            ranked.append((-quality, position, media.lower(), version))
    return [(media, version) for _, _, media, version in sorted(ranked)]


def _choose(accept: str | None, table, default: str, plain_xml: str) -> str:
    if not accept:
        return default
    for media, version in _offers(accept):
        if media in _ANY:
            return plain_xml if "xml" in media else default
        for offered, versions, kind in table:
            if media == offered and (version is None or not versions or version in versions):
                return kind
    choices = ", ".join(sorted({f"{m}; version={v[0]}" if v else m for m, v, _ in table}))
    raise NotAcceptable(
        f"none of the media types in Accept ({accept!r}) is offered here; choose {choices}",
        accept=accept,
    )


def data_format(accept: str | None, *, v2: bool) -> str:
    """SDMX-REST 2.x answers SDMX-CSV 2.0 unless asked otherwise; 1.x generic data, as its
    standard says (sdmx1 asks for structure-specific data when it holds the structure)."""
    default = CSV if v2 else GENERIC
    return _choose(accept, _DATA, default, GENERIC)


def structure_format(accept: str | None, *, v2: bool) -> str:
    default = ML30 if v2 else ML21
    return _choose(accept, _STRUCTURE, default, default)
