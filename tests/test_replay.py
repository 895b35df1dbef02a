"""``logsleuth replay``: the five example jobs, the CLI, and adapters that are wrong.

The example jobs under ``examples/replay/`` run once per session into a temp dir
(checkpoint + log, a few KB each); every replay runs on the CPU in well under a second.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from logsleuth.replay.cli import INSTALL_HINT  # noqa: E402
from logsleuth.replay.cli import replay as replay_command  # noqa: E402
from logsleuth.replay.run import ReplayOptions, replay  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = REPO / "examples" / "replay"
sys.path.insert(0, str(EXAMPLES_DIR))

import make_checkpoints  # noqa: E402


@pytest.fixture(scope="session")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, make_checkpoints.Made]:
    out = tmp_path_factory.mktemp("replay_examples")
    return {name: make_checkpoints.make(name, out) for name in make_checkpoints.EXAMPLES}


@pytest.fixture(scope="session")
def results(made: dict[str, make_checkpoints.Made]) -> dict:
    return {name: replay(ReplayOptions(adapter=str(m.adapter), checkpoint=str(m.checkpoint), step=m.fail_step,
                                       device="cpu"))
            for name, m in made.items()}


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(replay_command, list(args))
    return result.exit_code, result.output


def strict_json(text: str) -> dict:
    def refuse(name: str) -> None:
        raise AssertionError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


# ---- the example jobs ------------------------------------------------------------------


@pytest.mark.parametrize("name", list(make_checkpoints.EXAMPLES))
def test_example_job_fails_where_its_docstring_says(made, name):
    module = __import__(name)
    assert made[name].fail_step == module.FAIL_STEP


@pytest.mark.parametrize("name", list(make_checkpoints.EXAMPLES))
def test_replay_reproduces_and_confirms_the_injected_cause(results, made, name):
    r = results[name]
    assert r.reproduced and r.failed
    assert r.target.failed_step == made[name].fail_step
    assert r.cause is not None and r.cause.confirmed
    assert r.cause.code == make_checkpoints.EXAMPLES[name]
    assert r.deterministic is True
    assert r.instrumentation_exact is True


def fixed(r, name):
    return r.counterfactual(name).fixed


def test_corrupt_sample(results):
    r = results["corrupt_sample"]
    assert r.location.stage == "inputs"
    assert (r.location.module, r.location.module_type) == ("fc1", "Linear")
    assert r.location.input_indices == (238,)
    assert r.samples.indices == (238,) and r.samples.confirmed
    assert fixed(r, "drop_samples") is True
    assert fixed(r, "lr_0") is False and fixed(r, "lr_x0.1") is False and fixed(r, "clip") is False
    assert r.counterfactual("fp32").applicable is False


def test_learning_rate_too_high(results):
    r = results["lr_too_high"]
    assert r.location.stage == "forward" and r.location.module_type == "Linear"
    assert r.samples.all_samples
    assert fixed(r, "lr_x0.1") is True and fixed(r, "lr_0") is True
    assert r.counterfactual("drop_samples").applicable is False


def test_unsafe_log_in_the_loss(results):
    r = results["unsafe_log"]
    assert r.location.stage == "loss" and r.location.module is None
    assert r.location.input_positions == ()
    assert r.samples.method == "per-sample loss" and r.samples.indices == (77,)
    assert fixed(r, "drop_samples") is True
    assert fixed(r, "lr_0") is False


def test_fp16_overflow(results):
    r = results["fp16_overflow"]
    assert r.target.autocast == "float16" and r.target.grad_scaler
    assert r.location.stage == "forward"
    assert (r.location.module, r.location.module_type) == ("fc1", "Linear")
    assert r.samples.indices == (172,)
    assert fixed(r, "fp32") is True
    assert fixed(r, "lr_0") is False


def test_exploding_rnn(results):
    r = results["exploding_rnn"]
    assert (r.location.module, r.location.module_type) == ("rnn", "RNN")
    assert fixed(r, "clip") is True
    assert fixed(r, "lr_x0.1") is False


# ---- CLI: reports, exit codes, the diagnose -> replay path ---------------------------


def test_cli_text_report_and_exit_code_1(made):
    m = made["corrupt_sample"]
    code, out = run_cli("--adapter", str(m.adapter), "--checkpoint", str(m.checkpoint), "--step", "13",
                        "--device", "cpu")
    assert code == 1, out
    assert out.startswith("REPRODUCED at step 13: C09 corrupt-data-sample (confirmed)")
    assert "dataset indices 238" in out
    assert "removes the failure  the batch without dataset indices 238" in out


def test_cli_json_is_strict_and_versioned(made, tmp_path):
    m = made["unsafe_log"]
    report = tmp_path / "replay.json"
    code, out = run_cli("--adapter", str(m.adapter), "--checkpoint", str(m.checkpoint), "--step", "46",
                        "--format", "json", "--report", str(report))
    assert code == 1
    doc = strict_json(out)
    assert doc == strict_json(report.read_text())
    assert doc["schema_version"] == 1 and doc["kind"] == "replay"
    assert doc["verdict"]["code"] == "C06" and doc["verdict"]["confirmed"] is True
    assert doc["samples"]["indices"] == [77]
    assert {c["name"]: c["fixed"] for c in doc["counterfactuals"]}["drop_samples"] is True
    assert any(isinstance(s["loss"], str) for s in doc["steps"])  # "nan", never a bare NaN
    code, out = run_cli("--adapter", str(m.adapter), "--checkpoint", str(m.checkpoint), "--step", "46",
                        "--report", str(report))
    assert code == 2 and "--force" in out


def test_from_diagnosis(made, tmp_path):
    from logsleuth.api import diagnose
    from logsleuth.report import to_json

    m = made["unsafe_log"]
    report = tmp_path / "diagnosis.json"
    report.write_text(to_json(diagnose([str(m.log)])))
    code, out = run_cli("--adapter", str(m.adapter), "--checkpoint", str(m.checkpoint),
                        "--from-diagnosis", str(report), "--format", "json")
    assert code == 1, out
    doc = strict_json(out)
    assert doc["target"]["requested_step"] == 46
    assert doc["verdict"]["code"] == "C06"
    assert doc["input"]["diagnosis"] == str(report) and doc["input"]["diagnosis_causes"]


def test_not_reproduced_is_exit_0_and_says_so(made):
    m = made["corrupt_sample"]
    code, out = run_cli("--adapter", f"{m.adapter}:clean_adapter", "--checkpoint", str(m.checkpoint),
                        "--step", "13")
    assert code == 0, out
    assert out.startswith("NOT REPRODUCED: the replay stays finite through step 13")
    assert "C14" in out and "not confirmed" in out


def test_failure_before_the_requested_step(made):
    m = made["corrupt_sample"]
    r = replay(ReplayOptions(adapter=str(m.adapter), checkpoint=str(m.checkpoint), step=20))
    assert r.target.failed_step == 13 and "asked for 20" in r.summary


def test_step_not_reached_yet_does_not_reproduce(made):
    m = made["corrupt_sample"]
    r = replay(ReplayOptions(adapter=str(m.adapter), checkpoint=str(m.checkpoint), step=12))
    assert not r.reproduced and [s.step for s in r.steps] == [10, 11, 12]


def test_without_torch_one_line_with_install_hint(monkeypatch, made):
    m = made["corrupt_sample"]
    monkeypatch.setitem(sys.modules, "torch", None)
    code, out = run_cli("--adapter", str(m.adapter), "--checkpoint", str(m.checkpoint), "--step", "13")
    assert code == 2
    assert out.strip() == f"logsleuth: error: {INSTALL_HINT}"


def test_contract_imports_without_torch():
    code = ("import sys; import logsleuth.replay, logsleuth.replay.cli; "
            "from logsleuth.replay import Adapter, Batch; "
            "assert 'torch' not in sys.modules and 'pandas' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# ---- errors: adapters, checkpoints, options ---------------------------------------------

GOOD = '''
import torch
from logsleuth.replay import Adapter, Batch

class Tiny(Adapter):
    def build_model(self):
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    def build_optimizer(self, model):
        return torch.optim.SGD(model.parameters(), lr=0.1)
    def batch(self, step):
        g = torch.Generator().manual_seed(step)
        x, y = torch.randn(8, 4, generator=g), torch.randn(8, 1, generator=g)
        return Batch(x, y, list(range(8 * step, 8 * step + 8)))
    def loss(self, output, batch):
        return ((output - batch.targets) ** 2).mean(dim=1)
'''


def write_adapter(tmp_path: Path, body: str, name: str = "adapter_under_test.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "tiny.pt"
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 2}, path)
    return path


def error_of(adapter: str | Path, checkpoint: str | Path, *extra: str) -> str:
    code, out = run_cli("--adapter", str(adapter), "--checkpoint", str(checkpoint), *(extra or ("--step", "3")))
    assert code == 2, out
    assert out.startswith("logsleuth: error: ") and len(out.strip().splitlines()) == 1, out
    return out


def test_tiny_adapter_runs_clean(tmp_path, tiny_checkpoint):
    code, out = run_cli("--adapter", str(write_adapter(tmp_path, GOOD + "\nadapter = Tiny()\n")),
                        "--checkpoint", str(tiny_checkpoint), "--step", "4")
    assert code == 0 and "NOT REPRODUCED" in out


@pytest.mark.parametrize("body, expected", [
    ("import not_a_module_anywhere\n", "cannot import it: ModuleNotFoundError"),
    ("raise RuntimeError('boom')\n", "importing it raised RuntimeError: boom"),
    (GOOD.replace("def batch(self, step):", "def batch(self):"),
     "batch() must accept (step), as in `def batch(self, step)`"),
    (GOOD.replace("def loss(self, output, batch):", "def not_loss(self, output, batch):"),
     "missing required method loss(output, batch)"),
    (GOOD + "\nclass Other(Tiny):\n    pass\n", "define `adapter = MyAdapter()`"),
    (GOOD + "\nclass T2(Tiny):\n    autocast_dtype = 'int8'\n\nadapter = T2()\n", "autocast_dtype must be"),
    (GOOD.replace("def batch(self, step):", "def batch(self, step):\n        if step > 2: raise IndexError('no step')"),
     "adapter batch(3) raised IndexError: no step"),
    (GOOD.replace("return torch.optim.SGD(model.parameters(), lr=0.1)", "return None"),
     "build_optimizer() returned NoneType"),
])
def test_bad_adapter_is_one_line_exit_2(tmp_path, tiny_checkpoint, body, expected):
    assert expected in error_of(write_adapter(tmp_path, body), tiny_checkpoint)


def test_adapter_object_and_file_errors(tmp_path, tiny_checkpoint):
    path = write_adapter(tmp_path, GOOD + "\nadapter = Tiny()\n")
    assert "has no attribute 'nope'" in error_of(f"{path}:nope", tiny_checkpoint)
    assert "no such file" in error_of(tmp_path / "missing.py", tiny_checkpoint)
    assert "cannot import it" in error_of("no_such_package_xyz.adapters:adapter", tiny_checkpoint)


def test_module_level_functions_are_an_adapter(tmp_path, tiny_checkpoint):
    body = GOOD.replace("class Tiny(Adapter):", "class _Tiny:") + textwrap.dedent('''
        _t = _Tiny()
        build_model, build_optimizer, batch, loss = _t.build_model, _t.build_optimizer, _t.batch, _t.loss
    ''')
    code, out = run_cli("--adapter", str(write_adapter(tmp_path, body)), "--checkpoint", str(tiny_checkpoint),
                        "--step", "3")
    assert code == 0, out


def test_checkpoint_that_does_not_match_the_model(made):
    out = error_of(made["lr_too_high"].adapter, made["corrupt_sample"].checkpoint, "--step", "12")
    assert "does not match the adapter's model" in out
    assert "shape mismatches" in out or "missing keys" in out


def test_checkpoint_errors(tmp_path, tiny_checkpoint):
    adapter = write_adapter(tmp_path, GOOD + "\nadapter = Tiny()\n")
    state = torch.load(tiny_checkpoint, weights_only=True)
    no_step = tmp_path / "no_step.pt"
    torch.save({"model": state["model"], "optimizer": state["optimizer"]}, no_step)
    assert "has no step" in error_of(adapter, no_step)
    bare = tmp_path / "bare.pt"
    torch.save(state["model"], bare)
    assert "bare model state_dict" in error_of(adapter, bare)
    extra = tmp_path / "extra.pt"
    torch.save({**state, "model": {**state["model"], "2.extra": torch.zeros(1)}}, extra)
    assert "unexpected keys: 2.extra" in error_of(adapter, extra)
    assert "comes before the checkpoint's step 2" in error_of(adapter, tiny_checkpoint, "--step", "1")
    assert "no such file" in error_of(adapter, tmp_path / "nope.pt")


class Pickled:
    """Not a tensor, dict or number: the safe loader refuses it."""


def test_unsafe_checkpoint_needs_explicit_trust(tmp_path, tiny_checkpoint):
    adapter = write_adapter(tmp_path, GOOD + "\nadapter = Tiny()\n")
    state = torch.load(tiny_checkpoint, weights_only=True)
    risky = tmp_path / "risky.pt"
    torch.save({**state, "config": Pickled()}, risky)
    assert "--trust-checkpoint" in error_of(adapter, risky)
    code, out = run_cli("--adapter", str(adapter), "--checkpoint", str(risky), "--step", "3", "--trust-checkpoint")
    assert code == 0, out


def test_data_parallel_prefix_is_stripped(tmp_path, tiny_checkpoint):
    adapter = write_adapter(tmp_path, GOOD + "\nadapter = Tiny()\n")
    state = torch.load(tiny_checkpoint, weights_only=True)
    ddp = tmp_path / "ddp.pt"
    torch.save({**state, "model": {f"module.{k}": v for k, v in state["model"].items()}}, ddp)
    code, out = run_cli("--adapter", str(adapter), "--checkpoint", str(ddp), "--step", "3")
    assert code == 0, out


def test_option_errors(tmp_path, tiny_checkpoint):
    adapter = write_adapter(tmp_path, GOOD + "\nadapter = Tiny()\n")
    assert "--step N, or --from-diagnosis" in error_of(adapter, tiny_checkpoint, "--device", "cpu")
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"schema_version": 1, "verdict": {}, "first_nonfinite": None}))
    assert "not both" in error_of(adapter, tiny_checkpoint, "--step", "3", "--from-diagnosis", str(report))
    assert "no step to replay" in error_of(adapter, tiny_checkpoint, "--from-diagnosis", str(report))
    if not torch.cuda.is_available():
        assert "no CUDA device" in error_of(adapter, tiny_checkpoint, "--step", "3", "--device", "cuda")


# ---- location of gradient-only failures, and the batch helpers -----------------------------

WHERE_SQRT = GOOD.replace(
    "return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))",
    "return torch.nn.Sequential(torch.nn.Linear(4, 3), WhereSqrt(), torch.nn.Linear(3, 1))",
) + '''
class WhereSqrt(torch.nn.Module):
    """The torch.where trap: a finite output, but 0 * nan = nan in the gradient of the unused branch."""
    def forward(self, x):
        return torch.where(x > 0, torch.sqrt(x), torch.zeros_like(x))

adapter = Tiny()
'''


def test_gradient_only_failure_names_the_parameter(tmp_path):
    adapter = write_adapter(tmp_path, WHERE_SQRT, "where_adapter.py")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Identity(), torch.nn.Linear(3, 1))
    ckpt = tmp_path / "sqrt.pt"
    torch.save({"model": model.state_dict(), "optimizer": torch.optim.SGD(model.parameters(), lr=0.1).state_dict(),
                "step": 0}, ckpt)
    r = replay(ReplayOptions(adapter=str(adapter), checkpoint=str(ckpt), step=0))
    assert r.reproduced and r.location.stage == "backward"
    assert r.location.parameter in ("0.bias", "0.weight")
    assert r.cause.code == "C06" and r.cause.confirmed


def test_batch_helpers_on_nested_batches():
    from logsleuth.replay import Batch
    from logsleuth.replay.batching import batch_size, nonfinite_positions, select

    x = torch.zeros(4, 3)
    x[2, 1] = float("inf")
    b = Batch(inputs={"x": x, "mask": torch.ones(4, dtype=torch.bool), "scale": torch.tensor(2.0)},
              targets=(torch.arange(4),), indices=[10, 11, 12, 13])
    assert batch_size(b) == 4
    assert nonfinite_positions(b) == [2]
    sub = select(b, [1, 2])
    assert sub.indices == [11, 12] and sub.inputs["x"].shape == (2, 3) and sub.inputs["scale"].item() == 2.0
    assert sub.targets[0].tolist() == [1, 2]


def test_checkpoint_with_nonfinite_weights(tmp_path, tiny_checkpoint):
    adapter = write_adapter(tmp_path, GOOD + "\nadapter = Tiny()\n")
    state = torch.load(tiny_checkpoint, weights_only=True)
    state["model"]["2.weight"][0, 1] = float("nan")
    broken = tmp_path / "broken.pt"
    torch.save(state, broken)
    r = replay(ReplayOptions(adapter=str(adapter), checkpoint=str(broken), step=3))
    assert r.reproduced and r.target.failed_step == 2
    assert r.location.stage == "checkpoint" and r.location.parameter == "2.weight"
    assert r.causes == () and "earlier checkpoint" in r.summary


def test_detached_loss_is_an_adapter_error(tmp_path, tiny_checkpoint):
    body = GOOD.replace("return ((output - batch.targets) ** 2).mean(dim=1)",
                        "return ((output - batch.targets) ** 2).mean(dim=1).detach()")
    assert "loss() must return the loss tensor" in error_of(write_adapter(tmp_path, body + "\nadapter = Tiny()\n"),
                                                           tiny_checkpoint)


def test_batch_cache_asks_the_adapter_again_when_full():
    from logsleuth.replay import Adapter, Batch, TrainingParts
    from logsleuth.replay.adapter import resolve
    from logsleuth.replay.engine import Engine

    class Counting(Adapter):
        calls = 0

        def build_model(self):
            return torch.nn.Linear(2, 1)

        def build_optimizer(self, model):
            return torch.optim.SGD(model.parameters(), lr=0.1)

        def batch(self, step):
            Counting.calls += 1
            return Batch(torch.ones(4, 2) * step, torch.zeros(4, 1))

        def loss(self, output, batch):
            return ((output - batch.targets) ** 2).mean(dim=1)

    user = Counting()
    model = user.build_model()
    for budget, expected_calls in ((1 << 20, 3), (0, 6)):
        Counting.calls = 0
        engine = Engine(resolve("counting", user), TrainingParts(model, user.build_optimizer(model)),
                        torch.device("cpu"), cache_bytes=budget)
        for step in (0, 1, 2, 0, 1, 2):
            assert engine.batch(step).inputs[0, 0].item() == step
        assert Counting.calls == expected_calls


SCALAR_LOG = GOOD.replace(
    "        return Batch(x, y, list(range(8 * step, 8 * step + 8)))",
    "        if step == 3:\n            x[6, 0] = 0.0\n        return Batch(x, y, list(range(8 * step, 8 * step + 8)))",
).replace(
    "        return ((output - batch.targets) ** 2).mean(dim=1)",
    "        return (torch.log(batch.inputs[:, :1].abs()) * output).mean()  # a scalar: no per-sample losses",
) + "\nadapter = Tiny()\n"


def test_bisection_finds_the_sample_behind_a_scalar_loss(tmp_path, tiny_checkpoint):
    r = replay(ReplayOptions(adapter=str(write_adapter(tmp_path, SCALAR_LOG)), checkpoint=str(tiny_checkpoint),
                             step=5))
    assert r.target.failed_step == 3 and r.location.stage == "loss"
    assert r.samples.method == "bisection" and r.samples.indices == (30,) and r.samples.confirmed
    assert 1 < r.samples.probes <= 8
    assert r.counterfactual("drop_samples").fixed is True
    assert r.cause.code == "C06" and r.cause.confirmed
