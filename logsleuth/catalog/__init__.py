"""The catalog: failure signatures and their causes, as data with stable codes.

Like a linter's rule registry (ruff, pylint), every finding logsleuth reports has a code
(``X101 exploding-loss``, ``N202 nan-at-fixed-iteration``; causes ``C01`` ...) whose
documentation has fixed sections and whose advice is written per framework, in the
knobs of the framework that wrote the log. The content lives in ``signatures.toml`` and
``causes.toml`` next to this module; this package reads, validates and renders it.

Examples
--------
>>> from logsleuth.catalog import load_catalog
>>> catalog = load_catalog()
>>> catalog.signature("N202").slug
'nan-at-fixed-iteration'
>>> catalog.fixes_for("C02", "deepspeed")[0].startswith('Set `"gradient_clipping"')
True
"""

from __future__ import annotations

from .frameworks import FRAMEWORKS, fix_chain, framework_for
from .load import load_catalog, parse_catalog, read_catalog
from .model import Catalog, CatalogError, Cause, Signature
from .render import CAUSE_SECTIONS, SIGNATURE_SECTIONS
from .validate import BENIGN_SIGNATURES, REQUIRED_SIGNATURES, problems, validate

__all__ = [
    "BENIGN_SIGNATURES",
    "CAUSE_SECTIONS",
    "FRAMEWORKS",
    "REQUIRED_SIGNATURES",
    "SIGNATURE_SECTIONS",
    "Catalog",
    "CatalogError",
    "Cause",
    "Signature",
    "fix_chain",
    "framework_for",
    "load_catalog",
    "parse_catalog",
    "problems",
    "read_catalog",
    "validate",
]
