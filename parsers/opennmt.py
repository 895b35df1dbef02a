"""OpenNMT-py training reports: ``[2019-03-21 18:31:43,773 INFO] Step 2250/200000; acc:
31.18; ppl: 57.53; xent: 4.05; lr: 0.00028; 5092/261 tok/s;   6641 sec`` (newer releases
pad the total, ``Step 100/ 1000;``, and add ``sents``/``bsz``), and the validation lines
``Validation perplexity: 36.3`` / ``Validation accuracy: 40.1``.

The printed loss is ``xent`` (token cross-entropy); ``ppl`` is its exponential, which
OpenNMT clamps at e^100 (``26881171418161356094253400435962903554686976.00``), so an
absurd but finite ppl is what a blowup looks like there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..engine import Batch, Format, Rule, kv_payload, to_float

ALIASES = {"xent": "loss", "acc": "acc", "ppl": "ppl"}
#: OpenNMT computes ppl as exp(min(xent, 100)): at the clamp the loss has overflowed
_PPL_CLAMP = 2.688e43
_PPL_RX = re.compile(rb"; ppl: *([^;\s]+)")
_report = kv_payload("colon", aliases=ALIASES, skip=("sents", "bsz"))


def _step(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """A report's metrics; a ppl at the clamp is a non-finite event too (the sentinel is
    how OpenNMT prints an overflowed loss)."""
    found = list(matches)
    _report(iter(found), out)
    for m in found:
        ppl = _PPL_RX.search(m.group(0))
        try:
            clamped = ppl is not None and to_float(ppl.group(1)) >= _PPL_CLAMP
        except ValueError:
            clamped = False
        if clamped:
            out.event(m.start(), "nonfinite", int(m.group("step")),
                      message="perplexity at OpenNMT's e^100 clamp: the loss overflowed")
_VALID_NAMES = {b"perplexity": "eval_ppl", b"accuracy": "eval_acc", b"xent": "eval_loss", b"loss": "eval_loss"}


def _validation(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    for m in matches:
        out.add(m.start(), None, _VALID_NAMES[m.group("what")], m.group("value"), "eval")


FORMAT = Format(
    name="opennmt",
    title="OpenNMT-py training reports",
    samples=(
        "[2019-03-21 18:31:43,773 INFO] Step 2250/200000; acc:  31.18; ppl: 57.53; xent: 4.05; lr: 0.00028; "
        "5092/261 tok/s;   6641 sec",
        "[2023-05-02 10:00:00,000 INFO] Step 100/ 1000; acc: 10.5; ppl: 3000.2; xent: 8.0; lr: 0.00001; "
        "sents: 1200; bsz: 1024/1024/32; 2000/2100 tok/s;     30 sec",
        "[2019-03-21 19:00:00,000 INFO] Validation perplexity: 36.3",
    ),
    sniff=(r"\] Step \d+/\s*\d+; acc:", r"; xent: ", r"\] Validation perplexity: "),
    rules=(
        Rule("step", b"Step", r"Step\s+(?P<step>\d+)/\s*\d+;(?P<payload>[^\r\n]*)", _step),
        Rule("validation", b"Validation ", r"Validation (?P<what>perplexity|accuracy|xent|loss): (?P<value>{NUM})",
             _validation),
    ),
)
