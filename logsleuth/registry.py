"""All formats a run can use: built-ins, entry points, and user format files."""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points

from .engine import Format
from .errors import FormatError
from .parsers import builtin_formats

_extra: list[Format] = []


def register(fmt: Format) -> None:
    """Add a format (user format files and plugins); a later one with the same name wins."""
    _extra[:] = [f for f in _extra if f.name != fmt.name] + [fmt]


@lru_cache(maxsize=1)
def _plugins() -> tuple[Format, ...]:
    """Formats of the ``logsleuth.formats`` entry points (looked up once per process)."""
    found = []
    for ep in entry_points(group="logsleuth.formats"):
        try:
            found.append(ep.load())
        except Exception as exc:  # a broken plugin must not break every run
            raise FormatError(f"format plugin {ep.name!r} failed to load: {exc}") from exc
    return tuple(found)


def all_formats() -> tuple[Format, ...]:
    """User formats first (a team's own format beats a generic match), then built-ins."""
    return tuple(_extra) + _plugins() + builtin_formats()


def find_format(name: str) -> Format | None:
    """The registered format called ``name``, or None."""
    return next((fmt for fmt in all_formats() if fmt.name == name), None)


def get_format(name: str) -> Format:
    found = find_format(name)
    if found is not None:
        return found
    known = ", ".join(sorted(f.name for f in all_formats()))
    raise FormatError(f"unknown format {name!r} (known: {known}; see `logsleuth formats`)")
