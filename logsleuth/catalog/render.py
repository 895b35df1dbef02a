"""Plain-text documentation of signatures and causes, with fixed section headings.

Like ``ruff rule F634``: every entry prints the same sections in the same order, so a
reader (or a test) can find "How to confirm" without reading the rest. Paragraphs in the
TOML are re-wrapped to :data:`WIDTH`; the example is log text and printed verbatim.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .frameworks import FRAMEWORKS

if TYPE_CHECKING:
    from .model import Catalog, Cause, Signature

#: headings of a signature's documentation, in order
SIGNATURE_SECTIONS = ("What it looks like", "Why", "Example", "How to confirm", "Likely causes")
#: headings of a cause's documentation, in order
CAUSE_SECTIONS = ("What", "Evidence", "Fixes by framework", "Suggested by")
#: line width of wrapped prose
WIDTH = 88

_ITEM = re.compile(r"(?:[-*]|\d+[.)])\s+")
#: a `code span`: copied verbatim by users, so never broken across lines
_CODE = re.compile(r"`[^`\n]*`")
_NBSP = "\x00"


def render_signature(sig: Signature, catalog: Catalog) -> str:
    """Documentation of one signature: header, then :data:`SIGNATURE_SECTIONS`."""
    benign = "yes (the run did not fail)" if sig.benign else "no"
    header = [f"{sig.code} {sig.slug}", sig.summary, "", f"Benign: {benign}", f"Title: {sig.title}"]
    bodies = (
        _wrap(sig.what),
        _wrap(sig.why),
        _verbatim(sig.example),
        _wrap(sig.confirm),
        _priors_table(sig, catalog),
    )
    return _document(header, zip(SIGNATURE_SECTIONS, bodies))


def render_cause(cause: Cause, catalog: Catalog) -> str:
    """Documentation of one cause: header, then :data:`CAUSE_SECTIONS`."""
    header = [f"{cause.code} {cause.slug}", cause.title]
    bodies = (
        _wrap(cause.description),
        _wrap(cause.evidence),
        _fixes_list(cause),
        _suggested_by(cause, catalog),
    )
    return _document(header, zip(CAUSE_SECTIONS, bodies))


def _document(header: list[str], sections: Iterable[tuple[str, str]]) -> str:
    """Header lines, then each section as an underlined heading over its body."""
    parts = ["\n".join(header)]
    for heading, body in sections:
        parts.append(f"{heading}\n{'-' * len(heading)}\n{body}")
    return "\n\n".join(parts) + "\n"


def _priors_table(sig: Signature, catalog: Catalog) -> str:
    """One line per cause, most likely first: code, prior as a percentage, slug, title."""
    if not sig.priors:
        return "(none: this signature names no cause)"
    slugs = [catalog.causes[code].slug for code, _ in sig.priors if code in catalog.causes]
    width = max(map(len, slugs), default=1)
    rows = []
    for code, prob in sig.ranked_priors():
        cause = catalog.causes.get(code)
        slug, title = (cause.slug, cause.title) if cause else ("?", "(not in the catalog)")
        rows.append(f"  {code}  {prob:4.0%}  {slug:<{width}}  {title}")
    return "\n".join(rows)


def _fixes_list(cause: Cause) -> str:
    """Each framework's fix under its key, in :data:`FRAMEWORKS` order."""
    blocks = []
    for key in FRAMEWORKS:
        text = cause.fix(key)
        if text:
            blocks.append(f"{key}:\n{_wrap(text, indent='    ')}")
    return "\n".join(blocks)


def _suggested_by(cause: Cause, catalog: Catalog) -> str:
    """The signatures whose priors list this cause, highest prior first."""
    naming = [sig for sig in catalog.signatures.values() if sig.prior(cause.code) > 0]
    naming.sort(key=lambda sig: (-sig.prior(cause.code), sig.code))
    rows = [f"  {sig.code} {sig.slug} ({sig.prior(cause.code):.0%})" for sig in naming]
    return "\n".join(rows) or "(no signature)"


def _verbatim(text: str, indent: str = "    ") -> str:
    """Log lines as written, indented, without surrounding blank lines."""
    return textwrap.indent(text.strip("\n"), indent)


def _wrap(text: str, indent: str = "") -> str:
    """Re-wrap prose: paragraphs split on blank lines, list items (``- ``, ``1. ``) kept apart."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        items = _items(block.splitlines())
        paragraphs.append("\n".join(_fill(item, indent) for item in items))
    return "\n\n".join(paragraphs)


def _items(lines: list[str]) -> list[str]:
    """Join continuation lines onto the list item (or paragraph) they continue."""
    items: list[str] = []
    for line in (raw.strip() for raw in lines):
        if items and not _ITEM.match(line):
            items[-1] += " " + line
        else:
            items.append(line)
    return items


def _fill(item: str, indent: str) -> str:
    """Wrap one item, continuation lines aligned after its list marker."""
    marker = _ITEM.match(item)
    hang = indent + " " * (marker.end() if marker else 0)
    glued = _CODE.sub(lambda m: m.group().replace(" ", _NBSP), item)
    filled = textwrap.fill(glued, WIDTH, initial_indent=indent, subsequent_indent=hang,
                           break_long_words=False, break_on_hyphens=False)
    return filled.replace(_NBSP, " ")
