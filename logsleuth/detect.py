"""Choose the format from the head of the input: sniff patterns nominate, a trial read decides.

The sniff score of a format is the number of head lines its sniff patterns match (each
pattern capped, so one very frequent line cannot outvote several kinds of evidence);
ties go to registry order, where specific formats precede generic ones.

A sniff says what *wrote* the log, not what the metric lines look like: a custom
``step: 100 total_loss: nan`` print between TensorFlow's own chatter sniffs as
TensorFlow, whose rules then read nothing. So the best-sniffing formats (and the generic
fallback) each read the head, and a format that reads under a quarter of the loss
records another one reads gives way to it. The specific format keeps the log whenever it
reads comparably: it knows the step conventions and the header echoes.
"""

from __future__ import annotations

import numpy as np

from .engine import Format
from .errors import FormatError
from .registry import all_formats, get_format

_CAP = 200
#: how many of the best-sniffing formats read the head on trial
_TRIAL = 3
#: a format keeps the log while it reads at least this share of the best trial's records
_KEEP_SHARE = 0.25


def scores(head: bytes, formats: tuple[Format, ...] | None = None) -> list[tuple[int, Format]]:
    """(score, format) for every format, best first."""
    formats = formats or all_formats()
    scored = []
    for order, fmt in enumerate(formats):
        hits = sum(min(len(rx.findall(head)), _CAP) for rx in fmt.sniff_rx)
        scored.append((hits, -order, fmt))
    scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
    return [(s, f) for s, _, f in scored]


def records_read(fmt: Format, head: bytes) -> int:
    """Distinct loss records and the events that ``fmt`` reads in ``head``. Only losses
    count: a free-form reader turns every number on a line into a metric, a format reads
    the few that matter; a value read again (a progress bar redrawn with the same
    postfix, which a format that knows the bar reads once) counts once; events count
    because some formats show a failure only as one (a Megatron line without its loss)."""
    from .scan import scan_chunk  # the scanner imports the registry: import it late

    batch = scan_chunk(fmt, head, head)
    found = {(m, repr(v)) for m, v in zip(batch.metric, batch.value) if m is not None and "loss" in m}
    for part in batch.arrays:
        lossy = [i for i, name in enumerate(part.names) if "loss" in str(name)]
        rows = np.flatnonzero(np.isin(part.codes, lossy))
        found |= {(part.names[c], repr(v)) for c, v in zip(part.codes[rows].tolist(), part.value[rows].tolist())}
    return len(found) + len(batch.events)


def detect(head: bytes, forced: str | None = None) -> Format:
    """The format named by ``forced``, else the best-sniffing one that reads the head
    comparably to the others tried (the generic fallback if none sniff)."""
    if forced:
        return get_format(forced)
    ranked = [fmt for score, fmt in scores(head) if score > 0][:_TRIAL]
    generic = get_format("generic")
    if not ranked:
        return generic
    trials = ranked + ([generic] if generic not in ranked else [])
    read = [records_read(fmt, head) for fmt in trials]
    best = max(read)
    for fmt, n in zip(trials, read):
        if n >= _KEEP_SHARE * best:
            return fmt
    return ranked[0]  # unreachable: the best one keeps it


__all__ = ["detect", "scores", "records_read", "FormatError"]
