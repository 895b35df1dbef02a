"""User-defined log formats from a TOML file: a team with its own print format writes no Python.

A format file holds one or more formats::

    [[format]]
    name = "acme"
    title = "ACME trainer"
    sniff = ['^\\[acme\\] it ']     # optional: regexes scored on the head of a log
    samples = ["[acme] it 120 | loss 0.52 | lr 1e-3 | gnorm 1.2"]   # required, checked
    aliases = { ppl = "perplexity" }   # optional: metric renames
    framework = "pytorch"              # optional: whose terms the fixes use (default: generic)
    replayable = true                  # optional: a PyTorch job, `logsleuth replay` can re-run it

    [[format.rule]]
    template = "[acme] it {step} | loss {loss} | lr {lr} | gnorm {grad_norm}"
    phase = "train"                    # optional: "train" or "eval"

    [[format.rule]]
    template = "[acme] eval at {step}: loss={eval_loss}"

Template language (parsed with pyparsing, compiled once into a literal-anchored bytes
regex, see :class:`logsleuth.engine.Rule`):

* literal text matches itself; a run of whitespace matches one or more spaces or tabs
  (never a line break); leading and trailing whitespace is ignored;
* ``{step}`` (an integer) and ``{epoch}`` (a number) are positions;
* ``{name}`` is a metric, its name canonicalised (``gnorm`` -> ``grad_norm``); it reads
  any number, every nan/inf spelling included (``nan -nan NaN inf 1.#QNAN nan(ind)`` ...);
* ``{name:num}`` is the same, ``{name:int}`` reads an integer, ``{name:word}`` skips a
  non-numeric word, ``{*}`` skips anything up to what follows it on the line;
* ``{{`` and ``}}`` are a literal ``{`` and ``}``.

A template must begin with literal text (it is the rule's *anchor*, what makes searching
fast) and match anywhere in a line, so timestamps or rank prefixes before it do not
matter. A template with a step or an epoch and no metric only sets the position for the
lines after it. Without a ``phase`` a metric is ``eval`` if its name says so
(``eval_*``, ``val_*``, ``test_*``); with ``phase = "eval"`` names gain an ``eval_`` prefix
unless they already have one of those.

Every problem is a :class:`~logsleuth.errors.FormatError` whose one-line message names the
file, the format and the rule; a file with any error registers nothing.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pyparsing as pp

from .engine import KEY, NUM, Batch, Format, Rule, canonical, phase_of, to_float
from .errors import FormatError
from .registry import register

__all__ = ["TemplateHandler", "build_rule", "compile_template", "load_format_file", "parse_format_file"]

#: positions, and the field types each accepts (the first is the default)
POSITIONS = {"step": ("int",), "epoch": ("num", "int")}
METRIC_TYPES = ("num", "int", "word")
PHASES = ("train", "eval")

_FORMAT_KEYS = ("name", "title", "sniff", "samples", "aliases", "framework", "replayable", "rule")
_RULE_KEYS = ("template", "phase", "name")
_NAME_RX = re.compile(r"[A-Za-z0-9][\w.\-]*\Z")
_EVAL_PREFIXES = ("eval_", "val_", "test_", "valid_")

# regex sources of the pieces (bytes regexes: \s and \w are ASCII)
_WS = r"[^\S\r\n]+"
_INT = r"\d+"
_SIGNED_INT = r"[-+]?\d+"
_EPOCH = r"(?:\d+(?:\.\d*)?|\.\d+)"
_WORD_LAZY, _WORD = r"\S+?", r"\S+"
_SKIP_LAZY, _SKIP = r"[^\r\n]*?", r"[^\r\n]*"
#: after a number that ends the template: the number must end there too
_NUM_END = r"(?![\w.])"


# ---- the template language (pyparsing) ------------------------------------------------


@dataclass(frozen=True)
class _Lit:
    text: str


@dataclass(frozen=True)
class _Space:
    pass


@dataclass(frozen=True)
class _Field:
    name: str | None  # None for {*}
    type: str | None  # as written, None if not written
    col: int


def _fatal(message: str):
    def action(s: str, loc: int, _t: pp.ParseResults) -> None:
        raise pp.ParseFatalException(s, loc, f"column {loc + 1}: {message}")

    return action


def _grammar() -> pp.ParserElement:
    """literal runs, whitespace runs, ``{field}`` / ``{field:type}`` / ``{*}``, ``{{`` ``}}``."""
    pad = pp.Opt(pp.Regex(r"[ \t]+")).suppress()
    escaped = pp.Regex(r"\{\{|\}\}").set_parse_action(lambda t: _Lit(t[0][0]))
    text = pp.Regex(r"[^{}\s]+").set_parse_action(lambda t: _Lit(t[0]))
    space = pp.Regex(r"\s+").set_parse_action(lambda: _Space())
    star = pp.Literal("*")("star")
    name = pp.Regex(KEY)("name")
    ftype = pp.Regex(r"[A-Za-z_]\w*")("type")
    body = star | name + pp.Opt(pad + pp.Suppress(":") + pad + ftype)
    field = pp.Suppress("{") + pad + body + pad + pp.Suppress("}")
    field.set_parse_action(lambda s, loc, t: _Field(None if t.get("star") else t["name"], t.get("type"), loc + 1))
    bad_open = pp.Literal("{").set_parse_action(_fatal(
        "'{' does not start a field: write {name}, {name:type} or {*} (a literal '{' is '{{')"))
    bad_close = pp.Literal("}").set_parse_action(_fatal("unmatched '}' (a literal '}' is '}}')"))
    template = pp.ZeroOrMore(escaped | field | text | space | bad_open | bad_close) + pp.StringEnd()
    template.leave_whitespace()
    return template


_TEMPLATE = _grammar()


def _pieces(template: str) -> list[_Lit | _Space | _Field]:
    """The template as merged literal runs, whitespace runs and fields."""
    try:
        parsed = _TEMPLATE.parse_string(template, parse_all=True).as_list()
    except pp.ParseBaseException as exc:
        raise FormatError(f"bad template: {exc.msg}") from None
    pieces: list[_Lit | _Space | _Field] = []
    for p in parsed:
        if isinstance(p, _Lit) and pieces and isinstance(pieces[-1], _Lit):
            pieces[-1] = _Lit(pieces[-1].text + p.text)
        else:
            pieces.append(p)
    while pieces and isinstance(pieces[0], _Space):  # leading / trailing whitespace is ignored
        pieces.pop(0)
    while pieces and isinstance(pieces[-1], _Space):
        pieces.pop()
    return pieces


def _literal(text: str) -> str:
    """Regex source matching the UTF-8 bytes of ``text`` (non-ASCII as ``\\xNN`` escapes, so
    the source stays ASCII and its literal prefix is the anchor, byte for byte)."""
    return "".join(re.escape(chr(b)) if b < 128 else f"\\x{b:02x}" for b in text.encode("utf-8"))


@dataclass(frozen=True)
class _Compiled:
    anchor: bytes
    regex: str
    #: captured fields in group order: (name as written, kind) with kind "step", "epoch" or "metric"
    fields: tuple[tuple[str, str], ...]


def _compile(template: str) -> _Compiled:
    if not isinstance(template, str) or not template.strip():
        raise FormatError("template is empty")
    pieces = _pieces(template)
    if not isinstance(pieces[0], _Lit):
        raise FormatError("template must start with literal text (it anchors the search), "
                          f"not with {_show(pieces[0])}")
    parts: list[str] = []
    fields: list[tuple[str, str]] = []
    seen: set[str] = set()
    absorbed = False
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        if isinstance(piece, _Lit):
            parts.append(_literal(piece.text))
            continue
        if isinstance(piece, _Space):
            if not absorbed:
                parts.append(_WS)
            absorbed = False
            continue
        if isinstance(pieces[i - 1], _Field):
            raise FormatError(f"column {piece.col}: fields {_show(pieces[i - 1])} and {_show(piece)} need literal "
                              "text or whitespace between them")
        if piece.name is None:
            if piece.type is not None:  # pragma: no cover - the grammar does not allow {*:type}
                raise FormatError(f"column {piece.col}: {{*}} takes no type")
            if isinstance(pieces[i - 1], _Space) and not last and isinstance(pieces[i + 1], _Space):
                # "a {*} b" also reads "a b": the skipped text and one of its spaces are optional
                parts.append(f"(?:{_SKIP_LAZY}{_WS})?")
                absorbed = True
            else:
                parts.append(_SKIP if last else _SKIP_LAZY)
            continue
        if piece.name in seen:
            raise FormatError(f"column {piece.col}: field {{{piece.name}}} appears twice")
        seen.add(piece.name)
        allowed = POSITIONS.get(piece.name, METRIC_TYPES)
        kind = piece.type or allowed[0]
        if kind not in allowed:
            what = f"{{{piece.name}}}" if piece.name in POSITIONS else "a metric"
            raise FormatError(f"column {piece.col}: bad type '{kind}' in {_show(piece)}: {what} takes "
                              + " or ".join(f"':{t}'" for t in allowed))
        if kind == "word":
            parts.append(_WORD if last else _WORD_LAZY)
            continue
        if piece.name == "step":
            source = _INT
        elif piece.name == "epoch":
            source = _INT if kind == "int" else _EPOCH
        else:
            source = _SIGNED_INT if kind == "int" else NUM
        parts.append(f"({source})" + (_NUM_END if last else ""))
        fields.append((piece.name, piece.name if piece.name in POSITIONS else "metric"))
    if not fields:
        raise FormatError("template reads nothing: it needs {step}, {epoch} or a metric field")
    anchor = pieces[0].text.encode("utf-8")
    return _Compiled(anchor, "".join(parts), tuple(fields))


def _show(piece: _Lit | _Space | _Field) -> str:
    if isinstance(piece, _Field):
        if piece.name is None:
            return "{*}"
        return f"{{{piece.name}:{piece.type}}}" if piece.type else f"{{{piece.name}}}"
    return "whitespace" if isinstance(piece, _Space) else repr(piece.text)


def compile_template(template: str) -> tuple[bytes, str, list[str]]:
    """Compile a template into (anchor, regex source, captured field names in group order).

    The regex is ``str`` source for a *bytes* pattern (``re.compile(regex.encode())``), its
    groups numbered in the order of the returned names; it starts with ``anchor``.
    Raises :class:`FormatError` for a malformed template.
    """
    compiled = _compile(template)
    return compiled.anchor, compiled.regex, [name for name, _ in compiled.fields]


# ---- handlers -------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateHandler:
    """Turns the matches of one template into records (a class, so formats pickle)."""

    step: int | None  # group numbers
    epoch: int | None
    metrics: tuple[tuple[int, str, str], ...]  # (group, metric, phase)

    def __call__(self, matches: Iterator[re.Match[bytes]], out: Batch) -> None:
        si, ei, metrics = self.step, self.epoch, self.metrics
        for m in matches:
            pos = m.start()
            step = int(m.group(si)) if si else None
            epoch = float(m.group(ei)) if ei else None
            if not metrics:
                out.marker(pos, step, epoch)
                continue
            for group, metric, phase in metrics:
                out.add(pos, step, metric, m.group(group), phase, epoch)


def _metric_name(raw: str, phase: str | None, aliases: Mapping[str, str]) -> tuple[str, str]:
    name = canonical(raw, aliases or None)
    if phase is None:
        return name, phase_of(name)
    if phase == "eval" and not name.startswith(_EVAL_PREFIXES):
        name = f"eval_{name}"
    return name, phase


def build_rule(rule_name: str, template: str, phase: str | None = None,
               aliases: Mapping[str, str] | None = None) -> Rule:
    """A :class:`Rule` reading ``template`` (see the module docstring)."""
    compiled = _compile(template)
    step = epoch = None
    metrics = []
    for group, (name, kind) in enumerate(compiled.fields, start=1):
        if kind == "step":
            step = group
        elif kind == "epoch":
            epoch = group
        else:
            metrics.append((group, *_metric_name(name, phase, aliases or {})))
    names = [m[1] for m in metrics]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise FormatError(f"fields name the same metric {dupes[0]!r} twice")
    handler = TemplateHandler(step, epoch, tuple(metrics))
    try:
        return Rule(rule_name, compiled.anchor, compiled.regex, handler)
    except (re.error, ValueError) as exc:  # pragma: no cover - the compiler builds valid patterns
        raise FormatError(f"internal regex error: {exc}") from None


# ---- the file -------------------------------------------------------------------------


def _where(path: str, fmt: str | None = None, rule: int | None = None) -> str:
    where = str(path)
    if fmt is not None:
        where += f": format {fmt}"
    if rule is not None:
        where += f" rule {rule}"
    return where


def _read(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise FormatError(f"{path}: format file not found") from None
    except IsADirectoryError:
        raise FormatError(f"{path}: is a directory, not a format file") from None
    except OSError as exc:
        raise FormatError(f"{path}: cannot read the format file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise FormatError(f"{path}: not valid TOML: {_one_line(str(exc))}") from None
    except UnicodeDecodeError:
        raise FormatError(f"{path}: not valid TOML: the file is not UTF-8 text") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _unknown_keys(table: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in known:
            raise FormatError(f"{where}: unknown key {key!r} (known: {', '.join(known)})")


def _strings(value: Any, key: str, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FormatError(f"{where}: '{key}' must be a list of strings")
    return value


def _format(path: str, index: int, table: Any) -> Format:
    where = _where(path, f"#{index}")
    if not isinstance(table, dict):
        raise FormatError(f"{where}: must be a table ([[format]])")
    name = table.get("name")
    if name is None:
        raise FormatError(f"{where}: missing 'name'")
    if not isinstance(name, str) or not _NAME_RX.match(name):
        raise FormatError(f"{where}: name {name!r} must be a word (letters, digits, '_', '-', '.')")
    where = _where(path, repr(name))
    _unknown_keys(table, _FORMAT_KEYS, where)
    title = table.get("title", name)
    if not isinstance(title, str):
        raise FormatError(f"{where}: 'title' must be a string")
    aliases = table.get("aliases", {})
    if not isinstance(aliases, dict) or not all(isinstance(v, str) for v in aliases.values()):
        raise FormatError(f"{where}: 'aliases' must be a table of metric names, e.g. aliases = {{ ppl = \"perplexity\" }}")
    aliases = {k.strip().lower(): v for k, v in aliases.items()}

    tables = table.get("rule")
    if tables is None:
        raise FormatError(f"{where}: no rules (add [[format.rule]] tables with a template)")
    if isinstance(tables, dict):
        tables = [tables]
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise FormatError(f"{where}: 'rule' must be [[format.rule]] tables, each with a template")
    rules = []
    for i, rt in enumerate(tables, start=1):
        rwhere = _where(path, repr(name), i)
        _unknown_keys(rt, _RULE_KEYS, rwhere)
        template = rt.get("template")
        if template is None:
            raise FormatError(f"{rwhere}: missing 'template'")
        if not isinstance(template, str):
            raise FormatError(f"{rwhere}: 'template' must be a string")
        phase = rt.get("phase")
        if phase is not None and phase not in PHASES:
            raise FormatError(f"{rwhere}: phase {phase!r} must be one of {', '.join(map(repr, PHASES))}")
        rule_name = rt.get("name", f"{name}.{i}")
        if not isinstance(rule_name, str):
            raise FormatError(f"{rwhere}: 'name' must be a string")
        try:
            rules.append(build_rule(rule_name, template, phase, aliases))
        except FormatError as exc:
            raise FormatError(f"{rwhere}: {exc}") from None

    samples = table.get("samples")
    if samples is None:
        raise FormatError(f"{where}: missing 'samples' (real lines of the log, which the rules must read)")
    samples = _strings(samples, "samples", where)
    if not samples or not all(s.strip() for s in samples):
        raise FormatError(f"{where}: 'samples' must hold at least one line, and no empty ones")
    for j, sample in enumerate(samples, start=1):
        problem = _check_sample(rules, sample)
        if problem:
            raise FormatError(f"{where}: sample {j} {sample[:80]!r} {problem}")

    if "sniff" in table:
        sniff = _strings(table["sniff"], "sniff", where)
        if not sniff:
            raise FormatError(f"{where}: 'sniff' is empty (leave it out to sniff with the templates)")
        for j, pattern in enumerate(sniff, start=1):
            try:
                re.compile(pattern.encode(), re.M)
            except re.error as exc:
                raise FormatError(f"{where}: sniff {j} {pattern!r} is not a valid regex: {exc}") from None
    else:
        sniff = [r.pattern for r in rules]

    framework = table.get("framework", "")
    if not isinstance(framework, str):
        raise FormatError(f"{where}: 'framework' must be a string (a framework from `logsleuth explain`, e.g. pytorch)")
    replayable = table.get("replayable", False)
    if not isinstance(replayable, bool):
        raise FormatError(f"{where}: 'replayable' must be true or false")
    return Format(name=name, title=title, samples=tuple(samples), sniff=tuple(sniff), rules=tuple(rules),
                  aliases=dict(aliases), framework=framework, replayable=replayable)


def _check_sample(rules: list[Rule], sample: str) -> str | None:
    """Why ``sample`` is not read by ``rules`` (None if it is)."""
    if "\n" in sample.strip("\r\n"):
        return "must be a single line"
    out = Batch()
    for rule in rules:
        rule.apply(sample.encode("utf-8"), out)
    if not out.records:
        return "is not read by any rule (check the templates against it)"
    for record in out.records:
        if record[2] is not None:
            try:
                to_float(record[3])
            except ValueError:
                return f"gives {record[2]} a value that is not a number: {record[3]!r}"
    return None


def parse_format_file(path: str | os.PathLike[str]) -> list[Format]:
    """Read and validate a format file without registering anything."""
    path = os.fspath(path)
    data = _read(path)
    _unknown_keys(data, ("format",), path)
    tables = data.get("format")
    if tables is None:
        raise FormatError(f"{path}: no formats (the file needs [[format]] tables)")
    if isinstance(tables, dict):
        tables = [tables]
    if not isinstance(tables, list) or not tables:
        raise FormatError(f"{path}: 'format' must be [[format]] tables")
    formats = [_format(path, i, t) for i, t in enumerate(tables, start=1)]
    names = [f.name for f in formats]
    for name in names:
        if names.count(name) > 1:
            raise FormatError(f"{path}: format {name!r} is defined twice")
    from .parsers import builtin_formats

    taken = {f.name for f in builtin_formats()}
    for name in names:
        if name in taken:  # it would stand in for the built-in wherever the name is used
            raise FormatError(f"{path}: format {name!r} is a built-in format's name; give yours another "
                              f"(e.g. 'my_{name}')")
    return formats


def load_format_file(path: str | os.PathLike[str]) -> list[Format]:
    """Read, validate and register every format of a file; a file with an error registers none."""
    formats = parse_format_file(path)
    for fmt in formats:
        register(fmt)
    return formats
