# The README's commands. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: venv demo test bench bench-quick bench-diagnose bench-stages accuracy corpus model goldens clean

$(BIN)/logsleuth: pyproject.toml logsleuth/_native.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/logsleuth

venv: $(BIN)/logsleuth

demo: venv
	$(BIN)/logsleuth diagnose sample_logs/caffe_sudden_nan.log || [ $$? -eq 1 ]
	$(BIN)/logsleuth diagnose sample_logs/hf_trainer_hidden_nan.log --oneline || [ $$? -eq 1 ]
	$(BIN)/logsleuth parse sample_logs/caffe_sudden_nan.log | head -8

test: venv
	$(BIN)/pytest

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

accuracy: venv
	$(BIN)/python bench/accuracy.py $(if $(wildcard corpus/data/labels.csv),--corpus corpus/data)

corpus: venv
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/python -m corpus.build --out corpus/data

model: corpus
	$(BIN)/python -m logsleuth.train corpus/data

clean:
	rm -rf $(VENV) bench/out .pytest_cache
