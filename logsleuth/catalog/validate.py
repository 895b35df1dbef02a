"""Checks a catalog must pass before anything uses it.

Run at every load: a typo in the TOML (a prior pointing at a cause that does not exist,
a fix under a misspelt framework key) must fail loudly in the tests, not print a half
diagnosis to a user. All problems are collected and reported together, so one edit
session fixes them all.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Iterator, Mapping
from types import MappingProxyType

from .frameworks import FRAMEWORKS
from .model import Catalog, CatalogError, Cause, Signature

SIGNATURE_CODE = re.compile(r"[A-Z]\d{3}")
CAUSE_CODE = re.compile(r"C\d{2}")
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

#: signatures the rest of logsleuth refers to by code: code -> slug
REQUIRED_SIGNATURES: Mapping[str, str] = MappingProxyType({
    "H001": "healthy",
    "X101": "exploding-loss",
    "N201": "sudden-nan",
    "N202": "nan-at-fixed-iteration",
    "N203": "nonfinite-hidden-by-logger",
    "L301": "early-lr-blowup",
    "S401": "stalled",
    "F501": "benign-fp16-overflow",
    "F502": "loss-scale-collapse",
    "R601": "recovered-loss-spike",
    "I000": "inconclusive",
})
#: required signatures whose verdict is "no failure" (exit code 0)
BENIGN_SIGNATURES = frozenset({"H001", "F501", "R601"})
#: signatures that need not name causes (nothing failed, or nothing is known)
PRIORS_OPTIONAL = frozenset({"H001", "I000"})
#: evidence fields a title template may use
TITLE_FIELDS = frozenset({"step", "metric", "value", "count"})
#: how far the priors of one signature may sum from 1
PRIOR_TOLERANCE = 1e-3


def validate(catalog: Catalog) -> None:
    """Raise :class:`CatalogError` listing every problem; return None when the catalog is sound."""
    found = problems(catalog)
    if found:
        raise CatalogError(f"invalid catalog ({len(found)} problems): " + "; ".join(found))


def problems(catalog: Catalog) -> list[str]:
    """Every problem in the catalog, one message each (empty when it is sound)."""
    return [
        *(p for code, sig in catalog.signatures.items() for p in _signature_problems(code, sig, catalog)),
        *(p for code, cause in catalog.causes.items() for p in _cause_problems(code, cause)),
        *_required_problems(catalog),
        *_slug_problems(catalog),
        *_orphan_problems(catalog),
    ]


def _signature_problems(key: str, sig: Signature, catalog: Catalog) -> Iterator[str]:
    where = f"signature {sig.code}"
    if key != sig.code:
        yield f"{where} is filed under the code {key}"
    if not SIGNATURE_CODE.fullmatch(sig.code):
        yield f"{where}: malformed code (want a letter and 3 digits, e.g. X101)"
    yield from _slug_problem(where, sig.slug)
    yield from _empty_problems(where, sig, ("title", "summary", "what", "why", "example", "confirm"))
    yield from _title_problems(where, sig.title)
    yield from _prior_problems(where, sig, catalog)


def _cause_problems(key: str, cause: Cause) -> Iterator[str]:
    where = f"cause {cause.code}"
    if key != cause.code:
        yield f"{where} is filed under the code {key}"
    if not CAUSE_CODE.fullmatch(cause.code):
        yield f"{where}: malformed code (want C and 2 digits, e.g. C01)"
    yield from _slug_problem(where, cause.slug)
    yield from _empty_problems(where, cause, ("title", "description", "evidence"))
    keys = [key for key, _ in cause.fixes]
    for unknown in sorted(set(keys) - set(FRAMEWORKS)):
        yield f"{where}: unknown framework key {unknown!r} in fixes (known: {', '.join(FRAMEWORKS)})"
    for dup in sorted({k for k in keys if keys.count(k) > 1}):
        yield f"{where}: two fixes for {dup!r}"
    if "generic" not in keys:
        yield f"{where}: no 'generic' fix"
    for fw, text in cause.fixes:
        if not text.strip():
            yield f"{where}: empty fix for {fw!r}"


def _slug_problem(where: str, slug: str) -> Iterator[str]:
    if not SLUG.fullmatch(slug):
        yield f"{where}: malformed slug {slug!r} (want lower-case words joined by '-')"


def _empty_problems(where: str, entry: object, fields: tuple[str, ...]) -> Iterator[str]:
    for name in fields:
        value = getattr(entry, name)
        if not isinstance(value, str) or not value.strip():
            yield f"{where}: {name!r} is empty"


def _title_problems(where: str, title: str) -> Iterator[str]:
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(title) if name is not None}
    except ValueError as exc:
        yield f"{where}: title template does not parse ({exc})"
        return
    for name in sorted(fields - TITLE_FIELDS):
        yield f"{where}: title uses {{{name}}}, not an evidence field ({', '.join(sorted(TITLE_FIELDS))})"


def _prior_problems(where: str, sig: Signature, catalog: Catalog) -> Iterator[str]:
    codes = [code for code, _ in sig.priors]
    for code in sorted({c for c in codes if codes.count(c) > 1}):
        yield f"{where}: cause {code} listed twice in priors"
    for code, prob in sig.priors:
        if code not in catalog.causes:
            yield f"{where}: priors name unknown cause {code}"
        if not (isinstance(prob, (int, float)) and 0.0 < prob <= 1.0):
            yield f"{where}: prior of {code} must be in (0, 1], got {prob!r}"
    if sig.code in PRIORS_OPTIONAL and not sig.priors:
        return
    total = math.fsum(prob for _, prob in sig.priors if isinstance(prob, (int, float)))
    if abs(total - 1.0) > PRIOR_TOLERANCE:
        yield f"{where}: priors sum to {total:.4g}, not 1"


def _required_problems(catalog: Catalog) -> Iterator[str]:
    for code, slug in REQUIRED_SIGNATURES.items():
        sig = catalog.signatures.get(code)
        if sig is None:
            yield f"required signature {code} {slug} is missing"
            continue
        if sig.slug != slug:
            yield f"signature {code}: slug must be {slug!r}, not {sig.slug!r}"
        if sig.benign != (code in BENIGN_SIGNATURES):
            yield f"signature {code}: benign must be {code in BENIGN_SIGNATURES}"


def _slug_problems(catalog: Catalog) -> Iterator[str]:
    """Slugs are looked up like codes, so they must be unique across signatures and causes."""
    seen: dict[str, str] = {}
    entries: list[Signature | Cause] = [*catalog.signatures.values(), *catalog.causes.values()]
    for entry in entries:
        if entry.slug in seen:
            yield f"slug {entry.slug!r} used by both {seen[entry.slug]} and {entry.code}"
        seen.setdefault(entry.slug, entry.code)


def _orphan_problems(catalog: Catalog) -> Iterator[str]:
    """A cause no signature names can never be proposed: it is dead data."""
    named = {code for sig in catalog.signatures.values() for code, _ in sig.priors}
    for code in sorted(set(catalog.causes) - named):
        yield f"cause {code} is named in no signature's priors"
