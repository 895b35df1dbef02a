"""detectron2: ``[08/14 10:26:13 d2.utils.events]:  eta: 0:43:51  iter: 6319  total_loss:
0.4072  loss_cls: 0.06762 ...  lr: 0.0003  max_mem: 1962M`` and the failure report
``FloatingPointError: Loss became infinite or NaN at iteration=27!`` with its
``loss_dict = {'loss_cls': tensor(nan, ...)}`` (both cross-format, :mod:`parsers.common`).
``total_loss`` is the canonical ``loss``. ``Starting training from iteration N`` is a
restart: a re-queued job that fails before its first print is still a new attempt.
"""

from __future__ import annotations

from ..engine import Format, Rule, event, kv_payload

ITER_RULE = Rule("iter", b"iter: ", r"iter: (?P<step>\d+)\s+(?P<payload>[^\r\n]*)",
                 kv_payload("colon", skip=("eta", "time", "data_time", "max_mem", "max mem")))

FORMAT = Format(
    name="detectron2",
    replayable=True,
    title="detectron2 (d2.utils.events, FloatingPointError reports)",
    samples=(
        "[08/14 10:26:13 d2.utils.events]:  eta: 0:43:51  iter: 6319  total_loss: 0.4072  loss_cls: 0.06762  "
        "loss_box_reg: 0.05153  lr: 0.0003  max_mem: 1962M",
        "FloatingPointError: Loss became infinite or NaN at iteration=27!",
        "loss_dict = {'loss_cls': tensor(nan, device='cuda:0', grad_fn=<NllLossBackward>), 'loss_box_reg': "
        "tensor(0.2576, device='cuda:0', grad_fn=<SmoothL1LossBackward>)}",
    ),
    sniff=(r"d2\.utils\.events", r"d2\.engine", r"detectron2", r"Loss became infinite or NaN at iteration=",
           r"loss_dict = \{"),
    rules=(ITER_RULE,
           Rule("start", b"Starting training from iteration",
                r"Starting training from iteration (?P<step>\d+)", event("restart", cause="start"))),
)
