"""The catalog's types: :class:`Signature`, :class:`Cause` and the :class:`Catalog` holding them.

All frozen: the catalog is loaded once per process (see :func:`logsleuth.catalog.load_catalog`)
and shared, so nothing may change it after validation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import LogsleuthError
from .frameworks import fix_chain
from .render import render_cause, render_signature


class CatalogError(LogsleuthError):
    """The catalog data is invalid, or a code asked for is not in it."""


class _Unknown:
    """Stands in for an evidence field a title needs but the caller did not give."""

    def __format__(self, spec: str) -> str:
        return "?"


#: the clause of a title that a missing field takes with it
_CLAUSES = (
    ("step", r",? *(?:at|through|by|from) step \{step\}"),
    ("value", r" to \{value\}"),
    ("count", r"\{count\} "),
)


def _shown(value: object) -> object:
    """A field as a title shows it: whole numbers without a fraction, nan as missing."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return int(value) if value.is_integer() and abs(value) < 1e15 else f"{value:.4g}"
    return value


class _Evidence(dict[str, object]):
    """Evidence for a title template: missing fields print as ``?`` rather than raising."""

    def __missing__(self, key: str) -> _Unknown:
        return _Unknown()


@dataclass(frozen=True)
class Signature:
    """A failure signature: what the loss curve looks like (``X101 exploding-loss``).

    Attributes
    ----------
    code, slug : str
        Stable identifiers: ``[A-Z]\\d{3}`` and a kebab-case name.
    title : str
        Template filled from evidence: ``{step}``, ``{metric}``, ``{value}``, ``{count}``.
    summary : str
        One line.
    benign : bool
        True when the run did not fail (exit code 0): healthy, calibration, recovered spike.
    what, why, example, confirm : str
        Documentation sections: what the log shows, why it happens, real-looking log
        lines, and how to confirm it.
    priors : tuple of (cause code, probability)
        P(cause | signature) before the log's own evidence; sums to 1 (may be empty for
        healthy and inconclusive).
    """

    code: str
    slug: str
    title: str
    summary: str
    benign: bool
    what: str
    why: str
    example: str
    confirm: str
    priors: tuple[tuple[str, float], ...] = ()

    def format_title(self, **evidence: object) -> str:
        """The title with evidence filled in. A field the log cannot give (None, or a nan
        number) takes its clause out of the title, so no placeholder ever reaches a user:
        ``... at step {step}`` without a step reads ``...``; a missing metric reads
        "the loss"."""
        known = {k: _shown(v) for k, v in evidence.items() if _shown(v) is not None}
        template = self.title
        for field, clause in _CLAUSES:
            if field not in known:
                template = re.sub(clause, "", template)
        known.setdefault("metric", "the loss")
        return re.sub(r"\s{2,}", " ", template.format_map(_Evidence(known))).strip()

    def prior(self, cause_code: str) -> float:
        """P(cause | this signature); 0 for a cause it does not list."""
        return dict(self.priors).get(cause_code, 0.0)

    def ranked_priors(self) -> list[tuple[str, float]]:
        """Priors, most likely cause first (ties by code, so the order is stable)."""
        return sorted(self.priors, key=lambda item: (-item[1], item[0]))


@dataclass(frozen=True)
class Cause:
    """A cause of a failure (``C01 learning-rate-too-high``) with fixes per framework.

    Attributes
    ----------
    code, slug, title : str
        ``C\\d{2}``, kebab-case name, and a short human title.
    description, evidence : str
        What goes wrong, and what in a log supports this cause.
    fixes : tuple of (framework key, fix text)
        In :data:`~logsleuth.catalog.frameworks.FRAMEWORKS` order; ``generic`` is required.
    """

    code: str
    slug: str
    title: str
    description: str
    evidence: str
    fixes: tuple[tuple[str, str], ...]

    def fix(self, framework: str) -> str | None:
        """The fix text for one framework key, or None when the catalog has none."""
        return dict(self.fixes).get(framework)


Entry = Signature | Cause


@dataclass(frozen=True, eq=False)
class Catalog:
    """Every signature and cause, by code. Build it with :func:`~logsleuth.catalog.load_catalog`."""

    signatures: Mapping[str, Signature]
    causes: Mapping[str, Cause]

    def signature(self, code: str) -> Signature:
        """The signature with this code or slug (case-insensitive); CatalogError if unknown."""
        entry = self.lookup(code)
        if not isinstance(entry, Signature):
            raise CatalogError(f"{code!r} is a cause, not a signature")
        return entry

    def cause(self, code: str) -> Cause:
        """The cause with this code or slug (case-insensitive); CatalogError if unknown."""
        entry = self.lookup(code)
        if not isinstance(entry, Cause):
            raise CatalogError(f"{code!r} is a signature, not a cause")
        return entry

    def lookup(self, code_or_slug: str) -> Entry:
        """A signature or cause by code (``n202``, ``C09``) or slug (``sudden-nan``)."""
        key = code_or_slug.strip()
        entries: list[Entry] = [*self.signatures.values(), *self.causes.values()]
        for entry in entries:
            if key.upper() == entry.code or key.lower() == entry.slug:
                return entry
        raise CatalogError(
            f"unknown signature or cause {code_or_slug!r} "
            f"(known: {', '.join(e.code for e in entries)})"
        )

    def fixes_for(self, cause_code: str, format_name: str) -> list[str]:
        """Fix texts for a cause in a log of this format: the framework's own fix first, then generic.

        The framework comes from the parser's format name (``maskrcnn_benchmark`` takes
        detectron2's fixes); a framework built on PyTorch without a fix of its own takes
        the ``pytorch`` one. Unknown formats get the generic fix only.
        """
        cause = self.cause(cause_code)
        fixes = [text for key in fix_chain(format_name) if (text := cause.fix(key))][:1]
        generic = cause.fix("generic")
        if generic and generic not in fixes:
            fixes.append(generic)
        return fixes

    def render_doc(self, code: str) -> str:
        """Plain-text documentation of a signature or cause (what ``logsleuth explain`` prints)."""
        entry = self.lookup(code)
        if isinstance(entry, Signature):
            return render_signature(entry, self)
        return render_cause(entry, self)
