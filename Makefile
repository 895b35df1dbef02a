# The README's commands. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: venv demo test bench bench-quick goldens clean

$(BIN)/logsleuth: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/logsleuth

venv: $(BIN)/logsleuth

demo: venv
	$(BIN)/logsleuth parse sample_logs/caffe_sudden_nan.log | head -20
	@echo "..."
	$(BIN)/logsleuth formats --no-samples

test: venv
	$(BIN)/pytest

goldens: venv
	$(BIN)/python -m tests.make_goldens

bench: venv
	$(BIN)/python bench/throughput.py

bench-quick: venv
	$(BIN)/python bench/throughput.py --quick

clean:
	rm -rf $(VENV) bench/out .pytest_cache
