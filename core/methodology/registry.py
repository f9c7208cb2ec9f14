"""Which methodology versions exist, and which is in force on a day.

Versions ship as ``v<version>.toml`` beside this module; an operator adds one by adoption
(the store keeps its document and registers it at start). A shipped version that would
change what a deployment already published is *held* until an operator adopts it. Of the
versions in force, the latest whose ``effective_from`` has come governs a day; of two
effective together, the later version, as a correction supersedes what it corrects.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from core.errors import MethodologyError
from core.methodology.document import Methodology, parse_methodology

METHODOLOGY_DIR = Path(__file__).resolve().parent

Source = Literal["shipped", "adopted"]
Segments = tuple[tuple[dt.date, str], ...]
"""The version in force from each date on, oldest first (empty: one version throughout)."""


@dataclass(frozen=True)
class Version:
    """One registered version: its document as published and its SHA-256."""

    methodology: Methodology
    document: str
    sha256: str
    source: Source

    @classmethod
    def of(cls, document: str, source: Source, origin: str = "<string>") -> Version:
        methodology = parse_methodology(document, origin)
        digest = hashlib.sha256(document.encode("utf-8")).hexdigest()
        return cls(methodology, document, digest, source)


_lock = threading.RLock()
_adopted: dict[str, Version] = {}
"""Adopted versions in the order of their adoption."""
_held: set[str] = set()


@functools.cache
def shipped() -> dict[str, Version]:
    """The versions this package ships, by version."""
    found = {}
    for path in sorted(METHODOLOGY_DIR.glob("v*.toml")):
        version = Version.of(path.read_text(encoding="utf-8"), "shipped", str(path))
        if version.methodology.version != path.stem[1:]:
            raise MethodologyError(
                f"{path.name} declares version {version.methodology.version!r}",
                source=str(path),
            )
        found[path.stem[1:]] = version
    return found


def registered() -> dict[str, Version]:
    """Every version this process knows: shipped and adopted."""
    with _lock:
        return {**shipped(), **_adopted}


def register(version: Version) -> None:
    """Make an adopted ``version`` known (and in force as dated). The same document again is
    a no-op; another document under a known version is a :class:`MethodologyError`."""
    code = version.methodology.version
    known = registered().get(code)
    if known is not None and known.sha256 != version.sha256:
        raise MethodologyError(
            f"methodology {code} is already {known.source} with SHA-256 {known.sha256}; "
            "a version is never edited: give the change a new version",
            version=code,
        )
    with _lock:
        if known is None:
            _adopted[code] = version
        _held.discard(code)
    versions.cache_clear()


def hold(codes: set[str]) -> None:
    """Keep shipped versions out of force until an operator adopts them."""
    with _lock:
        _held.clear()
        _held.update(codes)
    versions.cache_clear()


def knows(adopted: list[tuple[str, str]]) -> bool:
    """Does this process hold exactly these adopted (version, SHA-256), in this order?"""
    with _lock:
        known = {**shipped(), **_adopted}
        own = [(code, v.sha256) for code, v in _adopted.items()]
    expected = [(code, sha) for code, sha in adopted if code not in shipped()]
    return own == expected and all(
        code in known and known[code].sha256 == sha for code, sha in adopted
    )


def held() -> frozenset[str]:
    with _lock:
        return frozenset(_held)


def forget_adopted() -> None:
    """Back to the shipped versions alone (a process opening another database)."""
    with _lock:
        _adopted.clear()
        _held.clear()
    versions.cache_clear()


def load_methodology(version: str) -> Methodology:
    """The methodology of ``version``, shipped or adopted (held ones too: old values made
    under any version can be reproduced)."""
    found = registered().get(version)
    if found is None:
        known = ", ".join(sorted(registered(), key=version_key))
        raise MethodologyError(
            f"no methodology version {version!r}; known: {known}", version=version
        )
    return found.methodology


def version_key(version: str) -> tuple:
    return tuple(
        (0, int(p), "") if p.isdigit() else (1, 0, p) for p in version.replace("-", ".").split(".")
    )


def _order(methodology: Methodology) -> tuple:
    """Of versions effective together the later governs: shipped ones by version, then
    adopted ones in the order of their adoption."""
    adopted = list(_adopted)
    if methodology.version in adopted:
        return methodology.effective_from, 1, (adopted.index(methodology.version),)
    return methodology.effective_from, 0, version_key(methodology.version)


@functools.cache
def versions() -> tuple[Methodology, ...]:
    """Every version in force as dated (not held), oldest first."""
    with _lock:
        found = {**shipped(), **_adopted}
        out = [v.methodology for code, v in found.items() if code not in _held]
        return tuple(sorted(out, key=_order))


def in_force(on: dt.date | None = None) -> Methodology:
    """The version in force on ``on`` (default: today in the index's zone)."""
    day = on or dt.datetime.now(ZoneInfo(versions()[-1].calendar.timezone)).date()
    effective = [m for m in versions() if m.effective_from <= day]
    return effective[-1] if effective else versions()[0]


def superseded_by(methodology: Methodology) -> frozenset[str]:
    """Every version ``methodology`` replaces, directly or through those it replaces."""
    found, version = set(), methodology.supersedes
    while version is not None and version not in found:
        found.add(version)
        successor = registered().get(version)
        version = successor.methodology.supersedes if successor else None
    return frozenset(found)


def version_on(segments: Segments, day: dt.date, default: str) -> str:
    """The version that governs ``day`` under ``segments`` (``default`` when empty)."""
    if not segments:
        return default
    found = segments[0][1]
    for start, version in segments:
        if start > day:
            break
        found = version
    return found


def replaced(methodology: Methodology) -> frozenset[str]:
    """Every version corrected by ``methodology`` or by a version in force before it: the
    values made under them may be restated by a computation under ``methodology``."""
    own = registered().get(methodology.version)
    if own is None or own.methodology != methodology:
        return superseded_by(methodology)
    with _lock:
        position = _order(methodology)
        earlier = [m for m in versions() if _order(m) < position]
    return superseded_by(methodology).union(*(superseded_by(m) for m in earlier))


def segments(methodology: Methodology) -> Segments:
    """The versions that govern the days of a computation under ``methodology``: each earlier
    version in force on its own days (not those ``methodology`` or a later one corrects),
    then ``methodology`` from its effective date. Empty for a methodology not registered
    (it governs every day)."""
    own = registered().get(methodology.version)
    if own is None or own.methodology != methodology:
        return ()
    with _lock:
        own = _order(methodology)
        earlier = [m for m in versions() if _order(m) < own]
    corrected = replaced(methodology)
    steps: dict[dt.date, str] = {}
    for m in earlier:
        if m.version not in corrected and m.effective_from < methodology.effective_from:
            steps[m.effective_from] = m.version
    steps[methodology.effective_from] = methodology.version
    return tuple(sorted(steps.items()))
