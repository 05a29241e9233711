# Two commands on a fresh machine: `make run` and `make test`. Everything else is here too.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# torch 2.13.0 is the CPU build; any other pin pulls a multi-GB CUDA build.
TORCH := torch==2.13.0

.PHONY: install run test check lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev,diffusers]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/i2v serve --data-dir i2v-data

check: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: install check
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q

format: install
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

bench: install
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/gpu.py

clean:
	rm -rf $(VENV) i2v-data .mypy_cache .ruff_cache .pytest_cache
