"""User-defined formats from TOML files (logsleuth.userformat)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import logsleuth
from logsleuth import registry
from logsleuth.engine import Batch, to_float
from logsleuth.errors import FormatError
from logsleuth.userformat import build_rule, compile_template, load_format_file, parse_format_file

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_TOML = ROOT / "sample_logs" / "custom_format.toml"
SAMPLE_LOG = ROOT / "sample_logs" / "custom_format.log"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "userformat"


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch):
    """Every test starts and ends with the registry of user formats it found."""
    monkeypatch.delenv("LOGSLEUTH_FORMATS", raising=False)
    saved = list(registry._extra)
    registry._extra[:] = []
    yield
    registry._extra[:] = saved


def write_toml(tmp_path: Path, text: str, name: str = "acme.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """
[[format]]
name = "acme"
title = "ACME trainer"
samples = ["[acme] it 120 | loss 0.52 | lr 1e-3 | gnorm 1.2"]
[[format.rule]]
template = "[acme] it {step} | loss {loss} | lr {lr} | gnorm {grad_norm}"
phase = "train"
[[format.rule]]
template = "[acme] eval at {step}: loss={eval_loss}"
"""


# ---- the template language ------------------------------------------------------------


def test_compile_template_anchor_regex_and_fields():
    anchor, regex, names = compile_template("[acme] it {step} | loss {loss} | lr {lr} | gnorm {gnorm}")
    assert anchor == b"[acme]"
    assert names == ["step", "loss", "lr", "gnorm"]
    assert regex.startswith(re.escape("[acme]"))
    m = re.compile(regex.encode()).search(b"12:00 [acme]  it 7 |\tloss 0.5 | lr 1e-3 | gnorm 2")
    assert m.groups() == (b"7", b"0.5", b"1e-3", b"2")


def test_whitespace_matches_runs_but_not_line_breaks():
    _, regex, _ = compile_template("loss  {loss}")
    rx = re.compile(regex.encode())
    assert rx.search(b"loss 1").group(1) == b"1"
    assert rx.search(b"loss \t  2").group(1) == b"2"
    assert rx.search(b"loss\n3") is None
    assert rx.search(b"loss3") is None


@pytest.mark.parametrize("spelling", ["nan", "-nan", "NaN", "NAN", "inf", "-inf", "Inf", "Infinity", "INF",
                                      "1.#QNAN", "1.#INF", "-1.#IND", "nan(ind)", "-nan(ind)"])
def test_metric_fields_read_every_nonfinite_spelling(spelling):
    rule = build_rule("t", "step {step} loss {loss} done")
    out = Batch()
    rule.apply(f"step 3 loss {spelling} done\n".encode(), out)
    ((pos, step, metric, value, phase, *_),) = out.records
    assert (step, metric, phase) == (3, "loss", "train")
    assert not math.isfinite(to_float(value))


def test_types_skips_and_escaped_braces():
    anchor, regex, names = compile_template("{{rank}} it={step:int} n={tokens:int} mode={mode:word} {*} loss={loss:num}")
    assert anchor == b"{rank}"
    assert names == ["step", "tokens", "loss"]
    rx = re.compile(regex.encode())
    m = rx.search(b"{rank} it=4 n=-12 mode=warmup (whatever, here) loss=0.25")
    assert m.groups() == (b"4", b"-12", b"0.25")
    assert rx.search(b"{rank} it=4 n=1.5 mode=warmup x loss=0.25") is None  # :int is an integer


def test_skip_between_spaces_may_skip_nothing():
    rx = re.compile(compile_template("it {step} {*} loss {loss}")[1].encode())
    assert rx.search(b"it 1 loss 2").groups() == (b"1", b"2")
    assert rx.search(b"it 1 (x y) loss 2").groups() == (b"1", b"2")


def test_number_at_end_of_template_must_end_there():
    rx = re.compile(compile_template("it {step} loss {loss}")[1].encode())
    assert rx.search(b"it 1 loss 0.5\n").group(2) == b"0.5"
    assert rx.search(b"it 1 loss 0.5abc\n") is None


def test_non_ascii_literals_anchor_on_utf8_bytes():
    rule = build_rule("t", "époque {epoch} perte {loss}")
    assert rule.anchor == "époque".encode()
    out = Batch()
    rule.apply("époque 2 perte 0.5\n".encode(), out)
    assert [(r[2], r[3], r[5]) for r in out.records] == [("loss", b"0.5", 2.0)]


def test_names_are_canonical_and_eval_phase_prefixes():
    rule = build_rule("t", "E{step} gnorm={gnorm} acc={acc} val_loss={val_loss}", phase="eval")
    out = Batch()
    rule.apply(b"E5 gnorm=1 acc=0.5 val_loss=0.7", out)
    assert [(r[2], r[4]) for r in out.records] == [("eval_grad_norm", "eval"), ("eval_acc", "eval"),
                                                   ("eval_loss", "eval")]


def test_position_only_template_is_a_marker():
    rule = build_rule("t", "=== epoch {epoch} step {step} ===")
    out = Batch()
    rule.apply(b"=== epoch 3 step 300 ===", out)
    assert out.records == [(0, 300, None, None, "train", 3.0, None, None)]


@pytest.mark.parametrize("template, message", [
    ("{step} loss {loss}", "must start with literal text"),
    ("   {loss}", "must start with literal text"),
    ("loss {loss", "column 6: '{' does not start a field"),
    ("loss {} x", "'{' does not start a field"),
    ("loss } {loss}", "unmatched '}'"),
    ("loss {loss:float}", "bad type 'float' in {loss:float}"),
    ("it {step:num}", "{step} takes ':int'"),
    ("it {epoch:word}", "{epoch} takes ':num' or ':int'"),
    ("it {step}{loss}", "need literal text or whitespace between them"),
    ("it {loss} x {loss}", "field {loss} appears twice"),
    ("just text {*}", "reads nothing"),
    ("", "empty"),
])
def test_bad_templates(template, message):
    with pytest.raises(FormatError, match=re.escape(message)):
        compile_template(template)


# ---- the sample format file -------------------------------------------------------------


def test_sample_log_read_with_the_user_format():
    (fmt,) = load_format_file(SAMPLE_TOML)
    assert fmt.name == "acme" and registry.get_format("acme") is fmt
    series = logsleuth.read_log(str(SAMPLE_LOG), format="acme")
    frame = series.frame
    assert series.format == "acme"
    assert series.unparsed == 0
    assert set(frame["metric"].astype(str)) == {"loss", "lr", "grad_norm", "step_ms", "loss_scale",
                                                "eval_loss", "eval_acc"}
    loss = frame[frame["metric"] == "loss"]
    assert list(loss["step"]) == list(range(10, 210, 10))
    assert loss["value"].iloc[0] == pytest.approx(2.3012)
    assert loss["value"].iloc[15] == pytest.approx(7.412)  # step 160
    assert loss["value"].iloc[16:].isna().all()  # nan, -nan, nan, nan from step 170
    first_nan = loss[loss["value"].isna()].iloc[0]
    assert (first_nan["step"], first_nan["line"]) == (170, 25)
    gnorm = frame[frame["metric"] == "grad_norm"].set_index("step")["value"]
    assert gnorm[160] == pytest.approx(1042.7) and gnorm[170] == math.inf and math.isnan(gnorm[180])
    # lines without a printed step inherit it; eval is its own phase
    scale = frame[frame["metric"] == "loss_scale"]
    assert list(zip(scale["step"], scale["value"])) == [(150, 32768.0), (160, 16384.0)]
    ev = frame[frame["metric"] == "eval_loss"]
    assert list(ev["step"]) == [100, 200] and set(ev["phase"].astype(str)) == {"eval"}
    assert ev["value"].iloc[0] == pytest.approx(1.9207) and math.isnan(ev["value"].iloc[1])
    # the epoch markers carry the epoch forward
    assert list(frame.set_index("line").loc[[4, 17], "epoch"].drop_duplicates()) == [0.0, 1.0]
    assert list(frame[frame["metric"] == "step_ms"]["value"])[:2] == [312.0, 305.0]


def test_auto_detection_picks_the_user_format_after_loading():
    load_format_file(SAMPLE_TOML)
    series = logsleuth.read_log(str(SAMPLE_LOG))
    assert series.format == "acme"
    assert (series.frame["metric"] == "loss").sum() == 20


def test_detection_scores_rank_the_user_format_first():
    from logsleuth.detect import scores

    (fmt,) = load_format_file(SAMPLE_TOML)
    ranked = scores(SAMPLE_LOG.read_bytes(), (*registry._extra, *registry.builtin_formats()))
    assert ranked[0][1] is fmt and ranked[0][0] > ranked[1][0]


def test_default_sniff_is_the_templates_and_aliases_apply():
    zeta, omega = load_format_file(FIXTURES / "two_formats.toml")
    assert [f.name for f in registry._extra] == ["zeta", "omega"]
    assert zeta.sniff == tuple(r.pattern for r in zeta.rules)
    out = Batch()
    for rule in zeta.rules:
        rule.apply(b"ZETA step=5 loss=0.25 ppl=1.28\n", out)
    assert [r[2] for r in out.records] == ["loss", "perplexity"]
    out = Batch()
    omega.rules[0].apply(b"<omega> epoch 1.5 valid-loss 0.9", out)
    assert [(r[2], r[4], r[5]) for r in out.records] == [("eval_loss", "eval", 1.5)]


def test_gzip_and_forced_format_round_trip(tmp_path):
    import gzip

    load_format_file(write_toml(tmp_path, GOOD))
    log = tmp_path / "run.log.gz"
    log.write_bytes(gzip.compress(b"[acme] it 1 | loss 0.5 | lr 1e-3 | gnorm 1.0\n"
                                  b"[acme] eval at 1: loss=0.75\n"
                                  b"[acme] it 2 | loss 1.#QNAN | lr 1e-3 | gnorm -inf\n"))
    frame = logsleuth.read_log(str(log), format="acme").frame
    rows = list(zip(frame["step"], frame["metric"].astype(str), frame["phase"].astype(str)))
    assert rows[:4] == [(1, "loss", "train"), (1, "lr", "train"), (1, "grad_norm", "train"), (1, "eval_loss", "eval")]
    last = frame[frame["step"] == 2].set_index("metric")["value"]
    assert math.isnan(last["loss"]) and last["grad_norm"] == -math.inf


# ---- errors ---------------------------------------------------------------------------


RULE = '[[format.rule]]\ntemplate = "[acme] it {step} | loss {loss}"\n'
SAMPLE = 'samples = ["[acme] it 1 | loss 0.5"]\n'


@pytest.mark.parametrize("text, message", [
    ("[[format]]\nname = 'acme'\n" + SAMPLE + RULE.replace('"', "'", 1), "not valid TOML"),
    ("", "no formats"),
    ("[whatever]\nx = 1\n", "unknown key 'whatever'"),
    ("[[format]]\n" + SAMPLE + RULE, "format #1: missing 'name'"),
    ("[[format]]\nname = 'ac me'\n" + SAMPLE + RULE, "format #1: name 'ac me' must be a word"),
    ("[[format]]\nname = 'acme'\n" + SAMPLE, "format 'acme': no rules"),
    ("[[format]]\nname = 'acme'\n" + RULE, "format 'acme': missing 'samples'"),
    ("[[format]]\nname = 'acme'\nsamples = []\n" + RULE, "format 'acme': 'samples' must hold at least one line"),
    ("[[format]]\nname = 'acme'\nsample = 'x'\n" + SAMPLE + RULE, "format 'acme': unknown key 'sample'"),
    ("[[format]]\nname = 'acme'\n" + SAMPLE + RULE + "[[format.rule]]\nphase = 'eval'\n",
     "format 'acme' rule 2: missing 'template'"),
    ("[[format]]\nname = 'acme'\n" + SAMPLE + RULE + "[[format.rule]]\ntemplate = '{step} loss {loss}'\n",
     "format 'acme' rule 2: template must start with literal text"),
    ("[[format]]\nname = 'acme'\n" + SAMPLE + "[[format.rule]]\ntemplate = 'loss {loss:float}'\n",
     "format 'acme' rule 1: column 6: bad type 'float'"),
    ("[[format]]\nname = 'acme'\n" + SAMPLE + "[[format.rule]]\ntemplate = 'it {step} {loss} {train_loss}'\n",
     "format 'acme' rule 1: fields name the same metric 'loss' twice"),
    ("[[format]]\nname = 'acme'\n" + SAMPLE + RULE.replace("\n", "\nphase = 'test'\n", 1),
     "format 'acme' rule 1: phase 'test' must be one of 'train', 'eval'"),
    ("[[format]]\nname = 'acme'\nsamples = ['[acme] iter 1 | loss 0.5']\n" + RULE,
     "format 'acme': sample 1 '[acme] iter 1 | loss 0.5' is not read by any rule"),
    ("[[format]]\nname = 'acme'\nsniff = ['[acme']\n" + SAMPLE + RULE,
     "format 'acme': sniff 1 '[acme' is not a valid regex"),
    ("[[format]]\nname = 'acme'\nsniff = []\n" + SAMPLE + RULE, "format 'acme': 'sniff' is empty"),
    ("[[format]]\nname = 'acme'\n" + SAMPLE + RULE + "[[format]]\nname = 'acme'\n" + SAMPLE + RULE,
     "format 'acme' is defined twice"),
])
def test_errors_name_the_file_format_and_rule(tmp_path, text, message):
    path = write_toml(tmp_path, text)
    with pytest.raises(FormatError) as info:
        load_format_file(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ")
    assert message in text
    assert "\n" not in text
    assert registry._extra == []  # a broken file registers nothing


@pytest.mark.parametrize("name, message", [
    ("broken_syntax.toml", "not valid TOML: "),
    ("unread_sample.toml", "format 'acme-lr': sample 2 '[acme] it 2 | lr 0.1' is not read by any rule"),
])
def test_error_fixtures(name, message):
    with pytest.raises(FormatError, match=re.escape(message)):
        load_format_file(FIXTURES / name)
    assert registry._extra == []


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FormatError, match=r"nope\.toml: format file not found"):
        load_format_file(tmp_path / "nope.toml")
    with pytest.raises(FormatError, match="is a directory"):
        load_format_file(tmp_path)


def test_second_format_broken_registers_neither(tmp_path):
    bad = GOOD + "[[format]]\nname = 'other'\n" + SAMPLE
    with pytest.raises(FormatError, match="format 'other': no rules"):
        load_format_file(write_toml(tmp_path, bad))
    assert registry._extra == []


def test_parse_format_file_does_not_register(tmp_path):
    (fmt,) = parse_format_file(write_toml(tmp_path, GOOD))
    assert fmt.name == "acme" and fmt.title == "ACME trainer"
    assert registry._extra == []


def test_loading_again_replaces_the_format(tmp_path):
    path = write_toml(tmp_path, GOOD)
    load_format_file(path)
    load_format_file(path)
    assert [f.name for f in registry._extra] == ["acme"]


# ---- the command line -------------------------------------------------------------------


def test_cli_parse_with_formats_file():
    from logsleuth.cli import main

    result = CliRunner().invoke(main, ["--formats-file", str(SAMPLE_TOML), "parse", str(SAMPLE_LOG)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "step,metric,value,phase,segment,rank,epoch,line"
    ours = {"loss", "lr", "grad_norm", "step_ms", "loss_scale", "eval_loss", "eval_acc"}
    assert sum(line.split(",")[1] in ours for line in lines[1:]) == 86
    assert sum(",loss," in line for line in lines) == 20
    assert "10,loss,2.3012,train,0,,0,4" in lines
    assert "170,loss,nan,train,0,,1,25" in lines
    assert "170,grad_norm,inf,train,0,,1,25" in lines
    assert "200,eval_loss,nan,eval,0,,1,29" in lines


def test_cli_forced_format_and_formats_listing():
    from logsleuth.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["--formats-file", str(SAMPLE_TOML), "parse", "--format", "acme",
                                  str(SAMPLE_LOG)])
    assert result.exit_code == 0, result.output
    assert "150,loss_scale,32768,train,0,,1,22" in result.stdout.splitlines()
    listing = runner.invoke(main, ["--formats-file", str(SAMPLE_TOML), "formats"])
    assert listing.exit_code == 0, listing.output
    assert listing.stdout.splitlines()[0].startswith("acme ")


def test_cli_broken_formats_file_is_one_line_and_exit_2(tmp_path):
    from logsleuth.cli import main

    bad = write_toml(tmp_path, GOOD.replace("[acme] eval at {step}", "{step} eval"))
    result = CliRunner().invoke(main, ["--formats-file", str(bad), "parse", str(SAMPLE_LOG)])
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("logsleuth: error: ")
    assert f"{bad}: format 'acme' rule 2: template must start with literal text" in line


def test_a_user_format_may_not_take_a_builtin_name(tmp_path):
    from logsleuth.cli import main

    clash = write_toml(tmp_path, GOOD.replace('name = "acme"', 'name = "caffe"'))
    assert 'name = "caffe"' in clash.read_text()
    result = CliRunner().invoke(main, ["--formats-file", str(clash), "parse", str(SAMPLE_LOG)])
    assert result.exit_code == 2
    assert "format 'caffe' is a built-in format's name" in result.stderr


def test_cli_formats_file_from_environment(monkeypatch):
    from logsleuth.cli import main

    result = CliRunner().invoke(main, ["parse", str(SAMPLE_LOG)], env={"LOGSLEUTH_FORMATS": str(SAMPLE_TOML)})
    assert result.exit_code == 0, result.output
    assert "170,loss,nan,train,0,,1,25" in result.stdout.splitlines()
