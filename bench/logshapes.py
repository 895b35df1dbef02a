"""Generators of synthetic training logs, one per built-in format, in the shapes users have.

Each format is a :class:`Spec`: how one logging record is printed (``record``), and where
the framework has them, a progress-bar update (``bar``) and an fp16 overflow message
(``overflow``). The line shapes are the ones the real logs in ``shared/real_logs`` show
(quoted in each spec's comment). :func:`generate` writes a log of about N bytes in one of
the :data:`SHAPES`:

* ``finite``: a healthy run, a record every few steps;
* ``tail5`` / ``tail50``: a failure followed by a non-finite tail over the last 5% / 50%
  of the file (the framework keeps training and printing ``nan``);
* ``nan_all``: non-finite from the first record on;
* ``dense``: a record every step, no progress bars;
* ``bars``: a progress-bar update every step between records (formats that have bars);
* ``ranks``: 8 ranks interleaved, each line with torchrun's ``[rankN]:`` prefix;
* ``long``: records of about 2 KB (many metrics per line);
* ``overflow``: fp16 overflow / skipped-step messages between most records (DeepSpeed,
  fairseq, apex or Megatron's own spellings).

Standard library only; about 1 s per 20 MB.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SHAPES = ("finite", "tail5", "tail50", "nan_all", "dense", "bars", "ranks", "long", "overflow")
_FLUSH = 8 << 20
_TQDM = " ▏▎▍▌▋▊▉"


def _tqdm(n: int, total: int) -> str:
    """``' 45%|████▌     | '`` for n of total."""
    frac = n / max(total, 1)
    full = int(frac * 10)
    bar = "█" * full + (_TQDM[int(frac * 80) % 8] + " " * (9 - full) if full < 10 else "")
    return "%3d%%|%s| " % (int(frac * 100), bar)


def _hms(s: float) -> str:
    m, s = divmod(int(s), 60)
    h, m = divmod(m, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


@dataclass(frozen=True)
class Ctx:
    """What a record prints: step, epoch and iteration in it, and the metric values."""

    step: int
    epoch: int
    it: int
    per_epoch: int
    loss: float
    lr: float
    gnorm: float
    t: float
    extra: int  # extra metrics (the ``long`` shape)


def _extras(c: Ctx, fmt: str, sep: str) -> str:
    return "".join(sep + fmt % (k, c.loss * (1 + 0.01 * k)) for k in range(c.extra))


# -- one function per format: the text of one record (may be several lines) ------------


def _caffe(c: Ctx) -> str:
    # I0502 17:48:26.913466 22378 solver.cpp:218] Iteration 100 (0.948815 iter/s, 105.395s/100 iters), loss = 1746.73
    p = "I0523 %02d:%02d:%02d.%06d  9167 " % (c.t // 3600 % 24, c.t // 60 % 60, c.t % 60, c.step * 37 % 1000000)
    s = (f"{p}solver.cpp:228] Iteration {c.step} (3.1 iter/s, 6.45s/20 iters), loss = {c.loss:.6g}\n"
         f"{p}solver.cpp:244]     Train net output #0: loss = {c.loss:.6g} (* 1 = {c.loss:.6g} loss)\n")
    s += "".join(f"{p}solver.cpp:244]     Train net output #{k + 1}: loss_{k} = {c.loss:.6g} (* 1 = {c.loss:.6g} loss)\n"
                 for k in range(c.extra // 4))
    return s + f"{p}sgd_solver.cpp:106] Iteration {c.step}, lr = {c.lr:.6g}\n"


def _tensorflow(c: Ctx) -> str:
    # INFO:tensorflow:loss = 1.8717, step = 31601 (182.200 sec)
    return (f"INFO:tensorflow:global_step/sec: 4.3{_extras(c, ', m%d = %.5g', '') if c.extra else ''}\n"
            f"INFO:tensorflow:loss = {c.loss:.5g}, step = {c.step} (23.1 sec)\n")


def _keras(c: Ctx) -> str:
    # Epoch 1/80 / 249/249 [==============================] - 24s 96ms/step - loss: 2.3118 - acc: 0.1406
    # verbose=2: 1875/1875 - 3s - loss: 0.2913 - accuracy: 0.9160
    head = f"Epoch {c.epoch + 1}/1000\n"
    return (f"{head}1875/1875 - 3s - loss: {c.loss:.4f} - accuracy: 0.9160"
            f"{_extras(c, ' - m%d: %.4f', '')} - val_loss: {c.loss * 1.1:.4f} - val_accuracy: 0.9012\n")


def _keras_bar(n: int, total: int, c: Ctx) -> str:
    # 39/100 [==========>...................] - ETA: 1:01:16 - loss: nan
    n, total = n % 1875 + 1, 1875
    done = 30 * n // total
    bar = "=" * max(done - 1, 0) + (">" if done < 30 else "=") + "." * (30 - done)
    return f"\r{n:4d}/{total} [{bar}] - ETA: {_hms(total - n)} - loss: {c.loss:.4f} - accuracy: 0.9012"


def _hf(c: Ctx) -> str:
    # {'loss': 0.2051, 'grad_norm': nan, 'learning_rate': 9.774074342405685e-06, 'epoch': 0.53}
    return (f"{{'loss': {round(c.loss, 4)!r}, 'grad_norm': {round(c.gnorm, 4)!r}, 'learning_rate': {c.lr!r}"
            f"{''.join(f', {chr(39)}m{k}{chr(39)}: {round(c.loss, 4)!r}' for k in range(c.extra))}"
            f", 'epoch': {round(c.step / c.per_epoch, 2)!r}}}\n")


def _hf_bar(n: int, total: int, c: Ctx) -> str:
    return f"\r{_tqdm(n, total)}{n}/{total} [{_hms(c.t)}<{_hms(total - n)}, 44.10it/s]"


def _lightning(c: Ctx) -> str:
    # Epoch 0:  97% 1651/1702 [13:00<00:24,  2.11it/s, loss=0.158, v_num=0, train_loss=0.149]
    return (f"Epoch {c.epoch}:  {100 * c.it // c.per_epoch}% {c.it}/{c.per_epoch} [{_hms(c.t)}<00:24,  2.11it/s, "
            f"loss={c.loss:.3g}{''.join(f', m{k}={c.loss:.3g}' for k in range(c.extra))}, v_num=0, "
            f"train_loss={c.loss:.3g}]\n")


def _lightning_bar(n: int, total: int, c: Ctx) -> str:
    # Epoch 2:  45%|████▌     | 450/1000 [00:10<00:12, 44.10it/s, v_num=3, train_loss_step=nan]
    return (f"\rEpoch {c.epoch}: {_tqdm(n, total)}{n}/{total} [{_hms(c.t)}<00:12, 44.10it/s, "
            f"v_num=3, train_loss_step={c.loss:.3g}]")


def _pytorch(c: Ctx) -> str:
    # Epoch: [23][280/715]    Time 0.290 (0.318)      Loss 1.1693 (1.1644)    Acc@1 72.656 (72.098)
    return (f"Epoch: [{c.epoch}][{c.it:4d}/{c.per_epoch}]\tTime  0.347 ( 0.912)\tData  0.000 ( 0.455)\t"
            f"Loss {c.loss:.4e} ({c.loss:.4e})\tAcc@1   0.00 (  0.11)\tAcc@5   0.39 (  0.50)"
            f"{''.join(f'{chr(9)}M{k} {c.loss:.3f} ({c.loss:.3f})' for k in range(c.extra))}\n")


def _detectron2(c: Ctx) -> str:
    # [08/14 10:26:13 d2.utils.events]:  eta: 0:43:51  iter: 6319  total_loss: 0.4072  loss_cls: 0.06762 ...
    return (f"[08/14 {_hms(c.t % 86400 + 36000)} d2.utils.events]:  eta: 0:43:51  iter: {c.step}  "
            f"total_loss: {c.loss:.4g}  loss_cls: {c.loss / 4:.4g}  loss_box_reg: {c.loss / 5:.4g}  "
            f"loss_rpn_cls: {c.loss / 9:.4g}{''.join(f'  loss_m{k}: {c.loss:.4g}' for k in range(c.extra))}  "
            f"time: 0.4464  data_time: 0.0375  lr: {c.lr:.4g}  max_mem: 1962M\n")


def _mmcv(c: Ctx) -> str:
    # 2020-10-13 22:51:17,824 - mmdet - INFO - Epoch [5][2550/4015]	lr: 2.000e-02, eta: 3:18:45, time: 0.558, ...
    return (f"2020-10-13 {_hms(c.t % 86400 + 36000)},824 - mmdet - INFO - Epoch [{c.epoch + 1}][{c.it}/{c.per_epoch}]\t"
            f"lr: {c.lr:.3e}, eta: 3:18:45, time: 0.558, data_time: 0.007, memory: 3862, "
            f"loss_rpn_cls: {c.loss / 9:.4f}, loss_rpn_bbox: {c.loss / 8:.4f}, loss_cls: {c.loss / 3:.4f}, "
            f"acc: 94.2305{''.join(f', loss_m{k}: {c.loss:.4f}' for k in range(c.extra))}, loss: {c.loss:.4f}, "
            f"grad_norm: {c.gnorm:.4f}\n")


def _fairseq(c: Ctx) -> str:
    # 2020-03-23 11:39:44 | INFO | train_inner | epoch 003:      5 / 356 loss=9.44, nll_loss=8.44, ppl=347.28, ...
    return (f"2020-03-23 {_hms(c.t % 86400 + 36000)} | INFO | train_inner | epoch {c.epoch + 1:03d}: "
            f"{c.it:6d} / {c.per_epoch} loss={c.loss:.3f}, nll_loss={c.loss * 0.9:.3f}, ppl={min(2 ** c.loss, 1e9):.2f}"
            f"{''.join(f', m{k}={c.loss:.3f}' for k in range(c.extra))}, wps=30690.8, ups=1.2, wpb=25000, bsz=800, "
            f"num_updates={c.step}, lr={c.lr:.6g}, gnorm={c.gnorm:.3f}, loss_scale=128, train_wall=1281\n")


def _fairseq_overflow(c: Ctx) -> str:
    # 2020-03-23 11:41:18 | INFO | fairseq.trainer | NOTE: overflow detected, setting loss scale to: 0.00048828125
    return f"2020-03-23 {_hms(c.t % 86400 + 36000)} | INFO | fairseq.trainer | NOTE: overflow detected, setting loss scale to: 64.0\n"


def _megatron(c: Ctx) -> str:
    # iteration 122/  250000 | consumed samples: 124928 | elapsed time per iteration (ms): 86545.2 | learning rate: ...
    # a nan step prints no ``lm loss`` (and counts a nan iteration)
    loss = f" lm loss: {c.loss:.6E} |" if math.isfinite(c.loss) else ""
    nans = 0 if math.isfinite(c.loss) else 1
    return (f" iteration {c.step:8d}/  250000 | consumed samples: {c.step * 1024:12d} | elapsed time per iteration "
            f"(ms): 5926.4 | learning rate: {c.lr:.3E} | global batch size:  1024 |{loss}"
            f"{''.join(f' m{k}: {c.loss:.6E} |' for k in range(c.extra))} loss scale: 1.0 | grad norm: {c.gnorm:.3f} "
            f"| number of skipped iterations:   0 | number of nan iterations: {nans:3d} |\n")


def _megatron_overflow(c: Ctx) -> str:
    return (f" iteration {c.step:8d}/  250000 | consumed samples: {c.step * 1024:12d} | elapsed time per iteration "
            f"(ms): 5926.4 | learning rate: {c.lr:.3E} | global batch size:  1024 | loss scale: 2048.0 | "
            f"number of skipped iterations:   1 | number of nan iterations:   0 |\n")


def _ds_prefix(c: Ctx) -> str:
    return f"[2024-09-11 {_hms(c.t % 86400 + 36000)},030] [INFO] "


def _deepspeed(c: Ctx) -> str:
    # [2023-01-01 10:00:00,000] [INFO] [logging.py:96:log_dist] [Rank 0] step=10, skipped=2, lr=[0.0001], mom=[(0.9, 0.999)]
    # steps: 16 loss: 0.7332 iter time (s): 3.181 samples/sec: 0.314
    return (f"{_ds_prefix(c)}[logging.py:96:log_dist] [Rank 0] step={c.step}, skipped=0, lr=[{c.lr:.6g}], "
            f"mom=[(0.9, 0.999)]\n"
            f"steps: {c.step} loss: {c.loss:.4f}{''.join(f' m{k}: {c.loss:.4f}' for k in range(c.extra))} "
            f"iter time (s): 3.181 samples/sec: 0.314\n")


def _deepspeed_bar(n: int, total: int, c: Ctx) -> str:
    # [losses/total_loss: 1.64 | losses/policy_loss: 0.12]:  16%|██        | 1024/6400 [1:14:23<1:13:02,  1.23it/s]
    return (f"\r[losses/total_loss: {c.loss:.2f} | losses/policy_loss: {c.loss / 9:.2f}]: {_tqdm(n, total)}"
            f"{n}/{total} [{_hms(c.t)}<{_hms(total - n)},  1.23it/s]")


def _deepspeed_overflow(c: Ctx) -> str:
    # [2024-07-17 19:44:06,945] [INFO] [loss_scaler.py:183:update_scale] [deepspeed] OVERFLOW! Rank 0 Skipping step. ...
    return (f"{_ds_prefix(c)}[loss_scaler.py:183:update_scale] [deepspeed] OVERFLOW! Rank 0 Skipping step. "
            f"Attempted loss scale: 65536, reducing to 32768\n")


def _apex_overflow(c: Ctx) -> str:
    # Gradient overflow.  Skipping step, loss scaler 0 reducing loss scale to 0.00390625
    return "Gradient overflow.  Skipping step, loss scaler 0 reducing loss scale to 32768.0\n"


def _yolo(c: Ctx) -> str:
    #      49/1799      6.47G    0.03901   0.003032   0.003846         14        416:  34%|███▍      | 178/517 [00:37<01:13,  4.64it/s]
    return (f"{c.epoch:7d}/1799      6.47G {c.loss:10.4g} {c.loss / 10:10.4g} {c.loss / 9:10.4g}         14        416: "
            f"{_tqdm(c.it, c.per_epoch)}{c.it}/{c.per_epoch} [{_hms(c.t)}<01:13,  4.64it/s]"
            f"{' ' * (12 * c.extra)}\n")


def _yolo_bar(n: int, total: int, c: Ctx) -> str:
    return "\r" + _yolo(c)[:-1]


def _darknet(c: Ctx) -> str:
    # 182: -nan, -nan avg loss, 0.000000 rate, 2.011170 seconds, 11648 images, 17.923213 hours left
    lo = "-nan" if math.isnan(c.loss) else f"{c.loss:.6f}"
    return f" {c.step}: {lo}, {lo} avg loss, {c.lr:.6f} rate, 2.011170 seconds, {c.step * 64} images, 17.923213 hours left\n"


def _turicreate(c: Ctx) -> str:
    # 2018-04-26 00:50:56  Training   4/500  Loss    nan
    return f"2018-04-26 {_hms(c.t % 86400 + 3600)}  Training {c.step:5d}/500000  Loss {c.loss:8.4g}\n"


def _maskrcnn(c: Ctx) -> str:
    # 2019-04-16 10:35:26,752 maskrcnn_benchmark.trainer INFO: eta: 17:39:53  iter: 140  loss: nan (nan)  ...
    return (f"2019-04-16 {_hms(c.t % 86400 + 36000)},752 maskrcnn_benchmark.trainer INFO: eta: 17:39:53  "
            f"iter: {c.step}  loss: {c.loss:.4f} ({c.loss:.4f})  loss_cls: {c.loss / 3:.4f} ({c.loss / 3:.4f})  "
            f"loss_reg: {c.loss / 4:.4f} ({c.loss / 4:.4f}){''.join(f'  loss_m{k}: {c.loss:.4f} ({c.loss:.4f})' for k in range(c.extra))}"
            f"  time: 0.6618 (0.7077)  lr: {c.lr:.6f}  max mem: 7051\n")


def _generic(c: Ctx) -> str:
    # 2023-01-01 12:00:00,123 - INFO - step=300 loss=0.412 grad_norm=1.9
    return (f"2023-01-01 {_hms(c.t % 86400 + 36000)},123 - INFO - step={c.step} loss={c.loss:.4f} "
            f"grad_norm={c.gnorm:.3f}{''.join(f' m{k}={c.loss:.4f}' for k in range(c.extra))}\n")


Bar = Callable[[int, int, Ctx], str]


@dataclass(frozen=True)
class Spec:
    record: Callable[[Ctx], str]
    #: what a one-regex loop a user writes first would search for
    loop_rx: str
    #: steps between records (the ``dense`` shape prints every step)
    every: int = 10
    bar: Bar | None = None
    overflow: Callable[[Ctx], str] | None = None
    #: records per epoch (Keras prints one record per epoch)
    per_epoch: int = 5000


SPECS: dict[str, Spec] = {
    "caffe": Spec(_caffe, r"Iteration (\d+).*loss = (\S+)", every=20),
    "tensorflow": Spec(_tensorflow, r"loss = (\S+), step = (\d+)", every=100),
    "keras": Spec(_keras, r"- loss: (\S+)", every=1, bar=_keras_bar, per_epoch=1),
    "hf_trainer": Spec(_hf, r"'loss': (\S+)", bar=_hf_bar),
    "lightning": Spec(_lightning, r"loss=(\S+)", every=1, bar=_lightning_bar),
    "pytorch": Spec(_pytorch, r"Loss (\S+)", overflow=_apex_overflow),
    "detectron2": Spec(_detectron2, r"total_loss: (\S+)", every=20),
    "maskrcnn_benchmark": Spec(_maskrcnn, r"iter: (\d+)  loss: (\S+)", every=20),
    "mmcv": Spec(_mmcv, r"loss: (\S+)", every=50),
    "yolo": Spec(_yolo, r"G\s+(\S+)", every=1, bar=_yolo_bar, per_epoch=500),
    "fairseq": Spec(_fairseq, r"loss=(\S+)", every=100, overflow=_fairseq_overflow),
    "megatron": Spec(_megatron, r"lm loss: (\S+)", every=1, overflow=_megatron_overflow),
    "deepspeed": Spec(_deepspeed, r"loss: (\S+)", bar=_deepspeed_bar, overflow=_deepspeed_overflow),
    "darknet": Spec(_darknet, r"(\d+): (\S+), \S+ avg", every=1),
    "turicreate": Spec(_turicreate, r"Training\s+(\d+)/\d+\s+Loss\s+(\S+)", every=1),
    "generic": Spec(_generic, r"loss=(\S+)"),
}


def shapes_of(fmt: str) -> list[str]:
    """The shapes that exist for ``fmt`` (bars and overflow only where the framework has them)."""
    spec = SPECS[fmt]
    return [s for s in SHAPES if not (s == "bars" and spec.bar is None) and not (s == "overflow" and spec.overflow is None)]


class _Writer:
    def __init__(self, path: Path) -> None:
        self.f = open(path, "w", encoding="utf-8", newline="")
        self.parts: list[str] = []
        self.pending = 0
        self.size = 0

    def add(self, text: str) -> None:
        self.parts.append(text)
        n = len(text.encode()) if not text.isascii() else len(text)
        self.pending += n
        self.size += n
        if self.pending >= _FLUSH:
            self.f.write("".join(self.parts))
            self.parts, self.pending = [], 0

    def close(self) -> None:
        self.f.write("".join(self.parts))
        self.f.close()


def generate(fmt: str, shape: str, path: Path, target: int, seed: int = 0) -> None:
    """Write a ``fmt`` log of about ``target`` bytes in ``shape`` to ``path``."""
    spec = SPECS[fmt]
    rng = random.Random(seed)
    out = _Writer(path)
    every = 1 if shape == "dense" else spec.every
    extra = 40 if shape == "long" else 0
    bad_from = {"tail5": 0.95, "tail50": 0.5, "nan_all": 0.0}.get(shape, 2.0) * target
    ranks = 8 if shape == "ranks" else 1
    per_epoch = spec.per_epoch * (1 if spec.per_epoch == 1 else every)  # in steps
    total_guess = max(1, int(target / 150 * every))  # bar total: rough count of steps in the log
    step, t = 0, 0.0
    while out.size < target:
        step += every
        t += every * 0.3
        epoch, it = divmod(step, per_epoch) if per_epoch > 1 else (step - 1, 1)
        progress = out.size / target
        smooth = 0.2 + 2.2 * math.exp(-4 * progress)
        loss = max(0.001, smooth * (1 + 0.1 * rng.gauss(0, 1)))
        if out.size >= bad_from:
            loss = math.nan
        c = Ctx(step, epoch, it, per_epoch if per_epoch > 1 else every, loss, 1e-4 * (1 - 0.5 * progress),
                abs(1.2 + 0.3 * rng.gauss(0, 1)) if loss == loss else math.nan, t, extra)
        if shape == "bars" and spec.bar is not None:
            updates = every if every > 1 else 5
            for k in range(updates):
                out.add(spec.bar(min(total_guess, (step - every) * updates // every + k + 1), total_guess, c))
            out.add("\n")
        if shape == "overflow" and spec.overflow is not None and rng.random() < 0.6:
            out.add(spec.overflow(c))
        text = spec.record(c)
        if ranks > 1:
            for r in range(ranks):
                out.add("".join(f"[rank{r}]:{line}\n" for line in text.splitlines()))
        else:
            out.add(text)
    out.close()
