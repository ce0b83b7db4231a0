# Pulseboard: `make run` starts the demo dashboard, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast test-shuffled check lint typecheck bench bench-quick bench-search vendor clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/pulseboard serve

test: $(STAMP)  # the whole suite, as CI runs it
	$(BIN)/pytest

test-fast: $(STAMP)  # the quick loop while developing: everything but the tests marked slow
	$(BIN)/pytest -m 'not slow'

test-shuffled: $(STAMP)  # the whole suite in a random order (the seed is printed to re-run it)
	$(BIN)/pytest --random-order

check: $(STAMP)
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports  # the layers and independence contracts in pyproject.toml [tool.importlinter]

bench/bin/loadgen: $(wildcard bench/loadgen/*.go) bench/loadgen/go.mod
	@command -v go >/dev/null || { echo "bench needs Go: apt-get install golang-go" >&2; exit 2; }
	cd bench/loadgen && GOPROXY=off GOTOOLCHAIN=local go build -buildvcs=false -o ../bin/loadgen .

bench: $(STAMP) bench/bin/loadgen  # a few minutes: S1-S6 against the naive baseline, storm, workers
	$(BIN)/python bench/run.py
	$(BIN)/python bench/storm.py
	$(BIN)/python bench/scaleout.py --workers --repeat 3

bench-quick: $(STAMP) bench/bin/loadgen  # under a minute: S2 at 200 subscribers, a short filtered step
	$(BIN)/python bench/run.py --quick

bench-search: $(STAMP)  # the log viewer's search over 1,000,000 lines in sqlite:// (~1 min)
	$(BIN)/python bench/log_search.py

vendor:  # re-vendor htmx and its SSE extension from npm: make vendor HTMX=2.0.x SSE=2.2.x
	scripts/vendor.sh $(HTMX) $(SSE)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
