# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv if it is absent and installs torch first: an exact CPU build
# (already on these machines' disk) so pip never pulls a multi-GB CUDA wheel.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test bench venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/diffras fit --out out/fit
	$(BIN)/diffras render out/fit/fit.ply --out out/render

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/raster.py

clean:
	rm -rf $(VENV) out .pytest_cache
