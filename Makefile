# The README's commands. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: venv runtime demo test lint bench bench-quick bench-diagnose bench-stages bench-fuzz accuracy corpus model goldens \
	real-logs clean

# One venv, installed in layers: the runtime alone (`make demo`: no torch, no scikit-learn,
# no test tools), the dev extras (`make test` and the rest), the train extra (`make model`).
# Each stamp is redone when pyproject.toml or the C extension's source changes.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: $(BIN)/python pyproject.toml logsleuth/_native.c
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(BIN)/python pyproject.toml logsleuth/_native.c
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(VENV)/.train: $(BIN)/python pyproject.toml logsleuth/_native.c
	$(BIN)/pip install --quiet -e '.[train]'
	touch $@

$(VENV)/.lint: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[lint]'
	touch $@

runtime: $(VENV)/.runtime

venv: $(VENV)/.dev

demo: runtime
	$(BIN)/logsleuth diagnose sample_logs/caffe_sudden_nan.log || [ $$? -eq 1 ]
	$(BIN)/logsleuth diagnose sample_logs/hf_trainer_hidden_nan.log --oneline || [ $$? -eq 1 ]
	$(BIN)/logsleuth parse sample_logs/caffe_sudden_nan.log | head -8

test: venv
	$(BIN)/pytest

# ruff, mypy and the import contracts (tools/lint.py; settings in pyproject.toml)
lint: venv $(VENV)/.lint
	$(BIN)/python tools/lint.py

goldens: venv
	$(BIN)/python -m tests.make_goldens

bench: venv
	$(BIN)/python bench/throughput.py

bench-quick: venv
	$(BIN)/python bench/throughput.py --quick

bench-diagnose: venv
	$(BIN)/python bench/diagnose_time.py

bench-stages: venv
	$(BIN)/python bench/stages.py

bench-matrix: venv
	nice -n 10 $(BIN)/python bench/matrix.py $(MATRIX_ARGS)

# coverage-guided fuzzing (atheris) of read_log and diagnose for FUZZ_SECONDS (default 600)
bench-fuzz: venv
	$(BIN)/pip install --quiet -e '.[fuzz]'
	$(BIN)/python bench/fuzz.py --seconds $(or $(FUZZ_SECONDS),600)

# figures on logs the model has not seen (leave-one-framework-out), beside the dev ones
accuracy: venv $(VENV)/.train
	$(BIN)/python bench/accuracy.py

corpus: venv
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/python -m corpus.build --out corpus/data

# retrain the shipped model on both corpora as they are (rebuild them first with
# `make corpus` / `make corpus-frameworks` when their builders change), then measure the
# confidence calibration (leave-one-framework-out) shipped beside it
model: venv $(VENV)/.train
	$(BIN)/python -m logsleuth.train corpus/framework_runs corpus/data --all
	$(BIN)/python bench/accuracy.py --calibrate

# the in-repo copy of the real logs (tests/data/real_logs) from ../shared/real_logs
real-logs:
	$(PYTHON) -m tests.refresh_real_logs

clean:
	rm -rf $(VENV) bench/out .pytest_cache

# A corpus written by the real frameworks (corpus/frameworks/README.md). Own venvs, so .venv stays light;
# torch==2.13.0 first (the CPU wheel on local disk), then the frameworks, so none pulls another torch.
FWVENV = .venv-frameworks
FWHF4  = .venv-frameworks-hf4
FWTF   = .venv-frameworks-tf

$(FWVENV)/bin/python: corpus/frameworks/requirements.txt
	$(PYTHON) -m venv $(FWVENV)
	$(FWVENV)/bin/pip install --quiet torch==2.13.0
	$(FWVENV)/bin/pip install --quiet -r corpus/frameworks/requirements.txt
	touch $(FWVENV)/bin/python

$(FWHF4)/bin/python: corpus/frameworks/requirements-hf4.txt
	$(PYTHON) -m venv $(FWHF4)
	$(FWHF4)/bin/pip install --quiet torch==2.13.0
	$(FWHF4)/bin/pip install --quiet -r corpus/frameworks/requirements-hf4.txt
	touch $(FWHF4)/bin/python

# TensorFlow (families tf, keras_tf; keras2: tf-keras, --no-deps, as tf.keras with TF_USE_LEGACY_KERAS=1);
# torch too, for corpus/frameworks/common.py
$(FWTF)/bin/python: corpus/frameworks/requirements-tf.txt corpus/frameworks/requirements-keras2.txt
	$(PYTHON) -m venv $(FWTF)
	$(FWTF)/bin/pip install --quiet torch==2.13.0
	$(FWTF)/bin/pip install --quiet -r corpus/frameworks/requirements-tf.txt
	$(FWTF)/bin/pip install --quiet --no-deps -r corpus/frameworks/requirements-keras2.txt
	touch $(FWTF)/bin/python

# TRL, Accelerate and mmengine (families trl, accelerate, mmengine)
FWEXTRA = .venv-frameworks-extra
$(FWEXTRA)/bin/python: corpus/frameworks/requirements-extra.txt
	$(PYTHON) -m venv $(FWEXTRA)
	$(FWEXTRA)/bin/pip install --quiet torch==2.13.0
	$(FWEXTRA)/bin/pip install --quiet -r corpus/frameworks/requirements-extra.txt
	touch $(FWEXTRA)/bin/python

# Older releases: pytorch_lightning 1.9, transformers 4.36 (families lightning1, hf436)
FWOLD = .venv-frameworks-old
$(FWOLD)/bin/python: corpus/frameworks/requirements-old.txt
	$(PYTHON) -m venv $(FWOLD)
	$(FWOLD)/bin/pip install --quiet torch==2.13.0
	$(FWOLD)/bin/pip install --quiet -r corpus/frameworks/requirements-old.txt
	touch $(FWOLD)/bin/python

.PHONY: corpus-frameworks corpus-frameworks-check
corpus-frameworks: $(FWVENV)/bin/python $(FWHF4)/bin/python $(FWTF)/bin/python $(FWEXTRA)/bin/python \
		$(FWOLD)/bin/python
	nice -n 10 $(FWVENV)/bin/python -m corpus.frameworks.build --out corpus/framework_runs

corpus-frameworks-check: venv
	$(BIN)/python corpus/frameworks/check.py corpus/framework_runs
