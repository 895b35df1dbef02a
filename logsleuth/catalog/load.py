"""Reading the catalog's TOML files into frozen :class:`Catalog` objects.

The shape of each table (required keys, types, no unknown keys) is checked here, while
the tables are still lists: a code used twice can only be seen before the entries are
indexed by code. Everything about meaning (references, priors, codes) is
:func:`~logsleuth.catalog.validate.validate`'s job, run on every catalog built here.
"""

from __future__ import annotations

import functools
import os
import tomllib
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from .frameworks import FRAMEWORKS
from .model import Catalog, CatalogError, Cause, Signature
from .validate import validate

SIGNATURES_FILE = "signatures.toml"
CAUSES_FILE = "causes.toml"

_TEXT = ("title", "summary", "what", "why", "example", "confirm")
#: key -> type of a [[signature]] table; "priors" may be left out (healthy, inconclusive)
SIGNATURE_KEYS: dict[str, type] = {"code": str, "slug": str, "benign": bool, "priors": dict,
                                   **{name: str for name in _TEXT}}
#: key -> type of a [[cause]] table
CAUSE_KEYS: dict[str, type] = {"code": str, "slug": str, "title": str, "description": str,
                               "evidence": str, "fixes": dict}

_E = TypeVar("_E", Signature, Cause)


@functools.lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The catalog shipped with logsleuth, read and validated once per process."""
    package = resources.files(__package__ or "logsleuth.catalog")
    return parse_catalog(
        package.joinpath(SIGNATURES_FILE).read_text(encoding="utf-8"),
        package.joinpath(CAUSES_FILE).read_text(encoding="utf-8"),
    )


def read_catalog(directory: str | os.PathLike[str]) -> Catalog:
    """A catalog from a directory holding ``signatures.toml`` and ``causes.toml`` (not cached)."""
    root = Path(directory)
    texts = []
    for name in (SIGNATURES_FILE, CAUSES_FILE):
        try:
            texts.append((root / name).read_text(encoding="utf-8"))
        except OSError as exc:
            raise CatalogError(f"{root / name}: cannot read the catalog file: {exc.strerror or exc}") from None
    return parse_catalog(*texts)


def parse_catalog(signatures_toml: str, causes_toml: str) -> Catalog:
    """Build and validate a catalog from the text of its two TOML files."""
    sig_tables = _tables(signatures_toml, SIGNATURES_FILE, "signature")
    cause_tables = _tables(causes_toml, CAUSES_FILE, "cause")
    signatures = _index(SIGNATURES_FILE, (
        _signature(table, f"{SIGNATURES_FILE}: [[signature]] #{n}") for n, table in enumerate(sig_tables, 1)
    ))
    causes = _index(CAUSES_FILE, (
        _cause(table, f"{CAUSES_FILE}: [[cause]] #{n}") for n, table in enumerate(cause_tables, 1)
    ))
    catalog = Catalog(signatures=MappingProxyType(signatures), causes=MappingProxyType(causes))
    validate(catalog)
    return catalog


def _tables(text: str, filename: str, array: str) -> list[dict[str, Any]]:
    """The ``[[array]]`` tables of one TOML file; nothing else may be at the top level."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{filename}: not valid TOML: {exc}") from None
    extra = sorted(set(data) - {array})
    if extra:
        raise CatalogError(f"{filename}: unexpected top-level keys {extra} (only [[{array}]] tables)")
    tables = data.get(array, [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise CatalogError(f"{filename}: {array!r} must be [[{array}]] tables")
    return tables


def _checked(table: dict[str, Any], keys: dict[str, type], optional: set[str], where: str) -> dict[str, Any]:
    """The table, after checking it has every required key, no unknown key, and the right types."""
    if isinstance(table.get("code"), str):
        where = f"{where} ({table['code']})"
    missing = sorted(set(keys) - optional - set(table))
    unknown = sorted(set(table) - set(keys))
    if missing or unknown:
        raise CatalogError(f"{where}: missing keys {missing}, unknown keys {unknown}")
    for name, value in table.items():
        if not isinstance(value, keys[name]):
            raise CatalogError(f"{where}: {name!r} must be a {keys[name].__name__}, got {value!r}")
    return table


def _signature(table: dict[str, Any], where: str) -> Signature:
    t = _checked(table, SIGNATURE_KEYS, {"priors"}, where)
    priors = t.get("priors", {})
    for code, prob in priors.items():
        if isinstance(prob, bool) or not isinstance(prob, (int, float)):
            raise CatalogError(f"{where} ({t['code']}): prior of {code} must be a number, got {prob!r}")
    return Signature(
        code=t["code"], slug=t["slug"], benign=t["benign"],
        priors=tuple((code, float(prob)) for code, prob in priors.items()),
        **{name: t[name] for name in _TEXT},
    )


def _cause(table: dict[str, Any], where: str) -> Cause:
    t = _checked(table, CAUSE_KEYS, set(), where)
    fixes = t["fixes"]
    for key, text in fixes.items():
        if not isinstance(text, str):
            raise CatalogError(f"{where} ({t['code']}): fix for {key!r} must be a string")
    order = {key: n for n, key in enumerate(FRAMEWORKS)}
    ordered = sorted(fixes.items(), key=lambda item: order.get(item[0], len(order)))
    return Cause(
        code=t["code"], slug=t["slug"], title=t["title"], description=t["description"],
        evidence=t["evidence"], fixes=tuple(ordered),
    )


def _index(filename: str, entries: Iterable[_E]) -> dict[str, _E]:
    """Entries by code; a code used twice is an error (a mapping would silently keep one)."""
    indexed: dict[str, _E] = {}
    for entry in entries:
        if entry.code in indexed:
            raise CatalogError(f"{filename}: duplicate code {entry.code}")
        indexed[entry.code] = entry
    return indexed
