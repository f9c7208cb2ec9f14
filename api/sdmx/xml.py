"""A small writer of XML text, for messages built as strings (fast, and with every
namespace declared where SDMX-ML wants it)."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

SDMX21 = "http://www.sdmx.org/resources/sdmxml/schemas/v2_1/"
SDMX30 = "http://www.sdmx.org/resources/sdmxml/schemas/v3_0/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def message_namespaces(v3: bool = False, *extra: str) -> dict[str, str]:
    """``xmlns`` attributes of a message: ``mes``, ``com`` and ``extra`` (e.g. ``str``)."""
    base = SDMX30 if v3 else SDMX21
    names = {"mes": "message", "com": "common", "str": "structure", "gen": "data/generic"}
    names["ss"] = "data/structurespecific"
    out = {"xmlns:xsi": XSI}
    for prefix in ("mes", "com", *extra):
        out[f"xmlns:{prefix}"] = base + names[prefix]
    return out


def attributes(attrs: dict[str, object] | None) -> str:
    if not attrs:
        return ""
    return "".join(f" {k}={quoteattr(str(v))}" for k, v in attrs.items() if v is not None)


def element(name: str, attrs: dict[str, object] | None = None, *children: str, text=None) -> str:
    inner = "".join(children) + (escape(str(text)) if text is not None else "")
    if not inner:
        return f"<{name}{attributes(attrs)}/>"
    return f"<{name}{attributes(attrs)}>{inner}</{name}>"


def names(tag: str, name_en: str, name_zh: str | None) -> str:
    """``com:Name`` elements in English and, when given, Chinese."""
    out = element(tag, {"xml:lang": "en"}, text=name_en)
    if name_zh:
        out += element(tag, {"xml:lang": "zh"}, text=name_zh)
    return out
