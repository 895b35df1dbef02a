"""The optional C extension (``logsleuth/_native.c``), loaded once, behind one switch.

Every compiled path asks :func:`compiled` at the moment it runs: the extension module, or
None when it is not built, was built from another version of ``_native.c`` (an editable
install not rebuilt), or is switched off. Switching it off turns *every* compiled path
off at once -- the scanners, the pair splitter, forward fill, the bar look-back, the CSV
and JSON writers -- which is what the fallback tests and ``LOGSLEUTH_NATIVE=0`` do; the
regex and numpy paths then do the same work, slower.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

#: the interface version of logsleuth/_native.c this code expects
ABI = 5


def _load() -> ModuleType | None:
    try:
        from .. import _native  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _native if getattr(_native, "ABI", None) == ABI else None


_MODULE = _load()
_enabled = os.environ.get("LOGSLEUTH_NATIVE", "1") not in ("0", "off", "no", "false")


def compiled() -> Any:  # the extension module (it has no type stubs), or None
    """The extension when it is built and switched on, else None (use the fallback)."""
    return _MODULE if _enabled else None


def available() -> bool:
    """Whether the extension is built (whatever the switch says)."""
    return _MODULE is not None


def set_enabled(flag: bool) -> None:
    """Switch every compiled path on or off for this process."""
    global _enabled
    _enabled = bool(flag)


@contextmanager
def disabled() -> Iterator[None]:
    """Every compiled path off inside the ``with`` block (the fallback tests)."""
    before = _enabled
    set_enabled(False)
    try:
        yield
    finally:
        set_enabled(before)
