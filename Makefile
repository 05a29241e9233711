# Two commands on a fresh machine: `make run` and `make test`. Everything else is here too.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# torch 2.13.0 is the CPU build; any other pin pulls a multi-GB CUDA build.
TORCH := torch==2.13.0

.PHONY: install system run test test-fast chaos check lint format bench clean screenshots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev,diffusers,s3,safety]'
	touch $(STAMP)

install: $(STAMP)

# What the tests need from Debian: PostgreSQL (a throwaway cluster per run) and Chromium
# (the playground page's browser tests drive it headless).
system:
	@missing=""; \
	if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then \
		missing="$$missing postgresql"; \
	fi; \
	if [ ! -x /usr/bin/chromium ]; then missing="$$missing chromium"; fi; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing for the tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

run: install
	$(BIN)/i2v generate "$$($(BIN)/python -c 'from i2v.cli.samples import sample_photo; print(sample_photo())')" \
		--prompt "slow push in on the scene" --resolution 1080p --frames 121 --seed 1 \
		--out i2v-data/sample.mp4
	$(BIN)/i2v serve --data-dir i2v-data

# Style and layers: ruff, its formatter (checking only) and the import-linter contracts.
lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

# Everything `lint` checks, plus types (mypy --strict, configured in pyproject.toml).
check: lint
	$(BIN)/mypy

# Every tier: tests/unit, tests/integration (real SQLite/PostgreSQL/S3) and tests/e2e.
# Coverage of the in-process code (e2e servers run in subprocesses and are not measured);
# the floor sits a few points under what the suite reaches, so a change that drops tests fails.
COVERAGE := --cov=i2v --cov-report=term:skip-covered --cov-fail-under=85

test: install system check
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q $(COVERAGE)

# docs/screenshots/: the playground at each step, taken by its browser test.
screenshots: install system
	I2V_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q tests/e2e/test_playground.py -k whole_flow

# The chaos suite, longer than in `make test` (200): 1,000 predictions through worker kills,
# a stopped worker and restarts of PostgreSQL and S3. It prints its figures as a row of the
# table in docs/reliability.md. `make chaos CHAOS_JOBS=N` for another size.
CHAOS_JOBS ?= 1000
chaos: install system
	CHAOS_JOBS=$(CHAOS_JOBS) $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/e2e/test_chaos.py

# The developer loop: the in-process unit tier only.
test-fast: install
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q tests/unit

format: install
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

bench: install
	$(BIN)/python bench/cli.py
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/queue_depth.py
	$(BIN)/python bench/gpu.py

clean:
	rm -rf $(VENV) i2v-data .mypy_cache .ruff_cache .pytest_cache
