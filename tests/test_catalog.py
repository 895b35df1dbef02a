"""The signature and cause catalog (logsleuth.catalog): loading, validation, fixes, docs."""

from __future__ import annotations

import dataclasses
import re
from importlib import resources
from pathlib import Path
from types import MappingProxyType

import pytest

from logsleuth.catalog import (
    CAUSE_SECTIONS,
    FRAMEWORKS,
    SIGNATURE_SECTIONS,
    Catalog,
    CatalogError,
    framework_for,
    load_catalog,
    problems,
    read_catalog,
    validate,
)
from logsleuth.errors import LogsleuthError
from logsleuth.parsers import builtin_formats

#: the signatures the rest of logsleuth names by code (written out here, not imported,
#: so that editing the validator's list cannot silently weaken this test)
REQUIRED = {
    "H001": "healthy",
    "X101": "exploding-loss",
    "N201": "sudden-nan",
    "N202": "nan-at-fixed-iteration",
    "N203": "nonfinite-hidden-by-logger",
    "L301": "early-lr-blowup",
    "S401": "stalled",
    "F501": "benign-fp16-overflow",
    "F502": "loss-scale-collapse",
    "R601": "recovered-loss-spike",
    "I000": "inconclusive",
}
BENIGN = {"H001", "F501", "R601"}
CAUSE_SLUGS = {
    "learning-rate-too-high", "gradient-explosion", "loss-weight-too-high", "unnormalised-input",
    "bad-initialisation", "unsafe-loss-arithmetic", "zero-count-division", "unstable-softmax",
    "corrupt-data-sample", "fp16-overflow", "caffe-pooling-stride-gt-kernel",
    "learning-rate-too-low-or-dead-network", "no-warmup", "framework-or-environment-bug",
    "benign-loss-scale-calibration", "logger-hides-nonfinite",
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


# --- loading -------------------------------------------------------------------------


def test_loads_from_package_resources_and_is_cached(catalog):
    package = resources.files("logsleuth.catalog")
    assert package.joinpath("signatures.toml").is_file()
    assert package.joinpath("causes.toml").is_file()
    assert load_catalog() is catalog


def test_shipped_catalog_validates(catalog):
    assert problems(catalog) == []
    validate(catalog)


def test_catalog_is_read_only(catalog):
    with pytest.raises(TypeError):
        catalog.signatures["X999"] = catalog.signatures["X101"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        catalog.signatures["X101"].benign = True  # type: ignore[misc]


# --- signatures ----------------------------------------------------------------------


@pytest.mark.parametrize("code, slug", sorted(REQUIRED.items()))
def test_required_signature_present(catalog, code, slug):
    sig = catalog.signature(code)
    assert (sig.code, sig.slug) == (code, slug)
    assert sig.benign is (code in BENIGN)
    for section in (sig.title, sig.summary, sig.what, sig.why, sig.example, sig.confirm):
        assert section.strip()
    assert "\n" not in sig.summary.strip()


def test_priors_refer_to_causes_and_sum_to_one(catalog):
    for sig in catalog.signatures.values():
        for code, prob in sig.priors:
            assert code in catalog.causes, (sig.code, code)
            assert 0 < prob <= 1
        if sig.code not in {"H001", "I000"}:
            assert sum(p for _, p in sig.priors) == pytest.approx(1.0, abs=1e-3), sig.code


def test_priors_rank_the_practitioners_first_suspects(catalog):
    """DOMAIN.md: NaN in the first ~100 iterations almost always means the learning rate;
    a nan at a fixed iteration means a corrupt sample; benign overflow is calibration."""
    top = {code: catalog.signature(code).ranked_priors()[0][0] for code in ("L301", "N202", "F501", "N203")}
    assert catalog.cause(top["L301"]).slug == "learning-rate-too-high"
    assert catalog.cause(top["N202"]).slug == "corrupt-data-sample"
    assert catalog.cause(top["F501"]).slug == "benign-loss-scale-calibration"
    assert catalog.cause(top["N203"]).slug == "logger-hides-nonfinite"


def test_title_is_filled_from_evidence(catalog):
    sig = catalog.signature("X101")
    assert sig.format_title(step=700, metric="loss") == "Exploding loss: loss grew until it overflowed at step 700"
    # a field the log cannot give takes its clause out: never a placeholder
    assert sig.format_title(metric="loss") == "Exploding loss: loss grew until it overflowed"
    assert sig.format_title(step=None, metric=None) == "Exploding loss: the loss grew until it overflowed"
    assert sig.format_title(step=float("nan"), metric="loss") == "Exploding loss: loss grew until it overflowed"
    assert sig.format_title(step=700.0, metric="loss").endswith("at step 700")
    for s in catalog.signatures.values():
        for evidence in ({"step": 1, "metric": "loss", "value": 2.5, "count": 3}, {}):
            filled = s.format_title(**evidence)
            assert "{" not in filled and "?" not in filled and "None" not in filled and "nan" not in filled, filled


# --- causes and fixes ----------------------------------------------------------------


def test_required_causes_present(catalog):
    assert CAUSE_SLUGS <= {c.slug for c in catalog.causes.values()}
    for cause in catalog.causes.values():
        assert re.fullmatch(r"C\d{2}", cause.code)
        assert cause.fix("generic")
        assert {key for key, _ in cause.fixes} <= set(FRAMEWORKS)


def test_every_parser_format_maps_to_a_framework_key():
    special = {"maskrcnn_benchmark": "detectron2", "turicreate": "generic"}
    for fmt in builtin_formats():
        assert framework_for(fmt.name) == special.get(fmt.name, fmt.name), fmt.name
    assert framework_for("Megatron-DeepSpeed") == "megatron"
    assert framework_for("some_user_format") == "generic"


@pytest.mark.parametrize("slug, fmt, needle", [
    ("learning-rate-too-high", "caffe", "`base_lr`"),
    ("gradient-explosion", "caffe", "`clip_gradients: 10`"),
    ("loss-weight-too-high", "caffe", "`loss_weight"),
    ("gradient-explosion", "pytorch", "`torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)`"),
    ("gradient-explosion", "keras", "Adam(learning_rate=1e-4, clipnorm=1.0)"),
    ("gradient-explosion", "tensorflow", "tf.clip_by_global_norm"),
    ("gradient-explosion", "hf_trainer", "TrainingArguments(max_grad_norm=1.0"),
    ("fp16-overflow", "hf_trainer", "`TrainingArguments(bf16=True)` instead of `fp16=True`"),
    ("gradient-explosion", "deepspeed", '"gradient_clipping": 1.0'),
    ("fp16-overflow", "deepspeed", '"initial_scale_power": 16'),
    ("fp16-overflow", "deepspeed", '"bf16": {"enabled": true}'),
    ("gradient-explosion", "fairseq", "--clip-norm 0.1"),
    ("fp16-overflow", "fairseq", "--fp16-scale-tolerance 0.25"),
    ("gradient-explosion", "megatron", "--clip-grad 1.0"),
    ("no-warmup", "megatron", "--lr-warmup-iters"),
    ("gradient-explosion", "mmcv", "clip_grad=dict(max_norm=35, norm_type=2)"),
    ("gradient-explosion", "mmcv", "optimizer_config = dict(grad_clip=dict(max_norm=35, norm_type=2))"),
    ("gradient-explosion", "detectron2", "SOLVER.CLIP_GRADIENTS.ENABLED True"),
    ("learning-rate-too-high", "maskrcnn_benchmark", "SOLVER.BASE_LR"),
    ("no-warmup", "detectron2", "SOLVER.WARMUP_ITERS"),
    ("learning-rate-too-high", "yolo", "lr0"),
    ("fp16-overflow", "yolo", "amp=False"),
    ("learning-rate-too-high", "darknet", "learning_rate="),
    ("no-warmup", "darknet", "burn_in="),
    ("gradient-explosion", "lightning", "gradient_clip_val=1.0"),
    ("fp16-overflow", "lightning", 'precision="bf16-mixed"'),
    ("logger-hides-nonfinite", "hf_trainer", "logging_nan_inf_filter=False"),
])
def test_framework_fix_comes_first_in_its_own_terms(catalog, slug, fmt, needle):
    cause = catalog.cause(slug)
    fixes = catalog.fixes_for(cause.code, fmt)
    assert needle in fixes[0]
    assert fixes[-1] == cause.fix("generic")
    assert len(fixes) == 2


def test_deepspeed_is_not_told_to_clip_by_hand(catalog):
    first = catalog.fixes_for(catalog.cause("gradient-explosion").code, "deepspeed")[0]
    assert "clip_grad_norm_" not in first


def test_fixes_fall_back_to_pytorch_then_generic(catalog):
    cause = catalog.cause("zero-count-division")
    assert cause.fix("lightning") is None
    assert catalog.fixes_for(cause.code, "lightning") == [cause.fix("pytorch"), cause.fix("generic")]


@pytest.mark.parametrize("fmt", ["turicreate", "generic", "no-such-format"])
def test_formats_without_a_framework_get_the_generic_fix(catalog, fmt):
    cause = catalog.cause("C01")
    assert catalog.fixes_for("C01", fmt) == [cause.fix("generic")]


def test_caffe_only_cause_gives_generic_to_others(catalog):
    pooling = catalog.cause("caffe-pooling-stride-gt-kernel")
    assert "stride" in catalog.fixes_for(pooling.code, "caffe")[0]
    assert catalog.fixes_for(pooling.code, "pytorch") == [pooling.fix("generic")]


# --- documentation -------------------------------------------------------------------


def _headings_in_order(doc: str, headings: tuple[str, ...]) -> None:
    positions = [doc.find(f"\n{h}\n{'-' * len(h)}\n") for h in headings]
    assert all(p >= 0 for p in positions), dict(zip(headings, positions))
    assert positions == sorted(positions)


@pytest.mark.parametrize("code", sorted(REQUIRED))
def test_signature_doc_has_fixed_sections(catalog, code):
    doc = catalog.render_doc(code)
    assert doc.startswith(f"{code} {REQUIRED[code]}\n")
    assert SIGNATURE_SECTIONS == ("What it looks like", "Why", "Example", "How to confirm", "Likely causes")
    _headings_in_order(doc, SIGNATURE_SECTIONS)
    for cause_code, prob in catalog.signature(code).priors:
        assert re.search(rf"^  {cause_code} +{prob:.0%} ", doc, re.MULTILINE), cause_code


def test_signature_doc_ranks_causes(catalog):
    doc = catalog.render_doc("L301")
    listed = re.findall(r"^  (C\d\d) ", doc.split("Likely causes")[1], re.MULTILINE)
    assert listed == [code for code, _ in catalog.signature("L301").ranked_priors()]


def test_cause_doc_has_fixes_by_framework(catalog):
    doc = catalog.render_doc("C02")
    _headings_in_order(doc, CAUSE_SECTIONS[:3])
    for key, _ in catalog.cause("C02").fixes:
        assert f"\n{key}:\n    " in doc
    assert "`torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)`" in doc  # code never split


def test_lookup_by_slug_and_case(catalog):
    assert catalog.render_doc("sudden-nan") == catalog.render_doc("n201")
    assert catalog.cause("c09") is catalog.cause("corrupt-data-sample")


def test_unknown_or_wrong_kind_of_code_is_a_user_error(catalog):
    with pytest.raises(LogsleuthError, match="unknown signature or cause 'Z999'"):
        catalog.render_doc("Z999")
    with pytest.raises(LogsleuthError, match="is a cause"):
        catalog.signature("C01")
    with pytest.raises(LogsleuthError, match="is a signature"):
        catalog.fixes_for("X101", "caffe")


# --- the validator catches broken catalogs -------------------------------------------

SHIPPED = resources.files("logsleuth.catalog")


def _broken_copy(tmp_path: Path, filename: str, old: str, new: str) -> Path:
    """The shipped catalog in tmp_path, with the first `old` in `filename` replaced by `new`."""
    for name in ("signatures.toml", "causes.toml"):
        text = SHIPPED.joinpath(name).read_text(encoding="utf-8")
        if name == filename:
            assert old in text, old
            text = text.replace(old, new, 1)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_an_unmodified_copy_reads_fine(tmp_path):
    copy = read_catalog(_broken_copy(tmp_path, "causes.toml", "", ""))
    assert set(copy.signatures) == set(load_catalog().signatures)


@pytest.mark.parametrize("filename, old, new, message", [
    ("signatures.toml", '[[signature]]\ncode = "H001"', '[[signature]]\ncode = "S401"', "duplicate code S401"),
    ("causes.toml", 'code = "C03"', 'code = "C02"', "duplicate code C02"),
    ("signatures.toml", 'code = "S401"', 'code = "s401"', "signature s401: malformed code"),
    ("causes.toml", 'code = "C11"', 'code = "C011"', "cause C011: malformed code"),
    ("signatures.toml", "C12 = 0.55", "C99 = 0.55", "priors name unknown cause C99"),
    ("signatures.toml", "C15 = 0.90", "C15 = 0.80", "F501: priors sum to 0.9"),
    ("signatures.toml", "C15 = 0.90", "C15 = 0.0", "prior of C15 must be in"),
    ("causes.toml", "\nlightning = ", "\nlightnin = ", "unknown framework key 'lightnin'"),
    ("causes.toml", 'generic = "Make every pooling', 'caffe_too = "Make every pooling', "C11: no 'generic' fix"),
    ("signatures.toml", 'code = "R601"', 'code = "R602"', "required signature R601 recovered-loss-spike is missing"),
    ("signatures.toml", 'slug = "stalled"', 'slug = "Stalled!"', "malformed slug"),
    ("signatures.toml", "benign = true\nwhat", "benign = false\nwhat", "H001: benign must be True"),
    ("signatures.toml", "{metric} grew", "{loss} grew", r"title uses \{loss\}"),
    ("signatures.toml", "summary = ", "sumary = ", r"missing keys \['summary'\], unknown keys \['sumary'\]"),
    ("signatures.toml", "benign = true\nwhat", 'benign = "yes"\nwhat', "'benign' must be a bool"),
    ("signatures.toml", "C15 = 0.90", 'C15 = "0.9"', "prior of C15 must be a number"),
    ("causes.toml", 'slug = "no-warmup"', 'slug = "fp16-overflow"', "slug 'fp16-overflow' used by both"),
    ("signatures.toml", "C11 = 0.04", "C12 = 0.04", "C11 is named in no signature"),
    ("causes.toml", "[[cause]]\ncode", "[[cause]\ncode", "not valid TOML"),
])
def test_validator_rejects_broken_catalog(tmp_path, filename, old, new, message):
    directory = _broken_copy(tmp_path, filename, old, new)
    with pytest.raises(CatalogError, match=message) as caught:
        read_catalog(directory)
    assert isinstance(caught.value, LogsleuthError)


def test_missing_catalog_file_is_reported(tmp_path):
    with pytest.raises(CatalogError, match="signatures.toml: cannot read"):
        read_catalog(tmp_path)


def test_validate_on_modified_data(catalog):
    """validate() checks a Catalog built in code too, and lists every problem at once."""
    sigs = dict(catalog.signatures)
    sigs["X101"] = dataclasses.replace(sigs["X101"], priors=(("C01", 0.5), ("C77", 0.5)))
    del sigs["N203"]
    causes = dict(catalog.causes)
    causes["C05"] = dataclasses.replace(causes["C05"], fixes=(("pytorch", "init it"), ("jax", "x")))
    broken = Catalog(signatures=MappingProxyType(sigs), causes=MappingProxyType(causes))
    found = problems(broken)
    assert any("unknown cause C77" in p for p in found)
    assert any("required signature N203" in p for p in found)
    assert any("C05: unknown framework key 'jax'" in p for p in found)
    assert any("C05: no 'generic' fix" in p for p in found)
    with pytest.raises(LogsleuthError, match=r"invalid catalog \(\d+ problems\)"):
        validate(broken)
