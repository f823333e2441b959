# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WEB_STAMP := rtserver/static/.built

.PHONY: run test lint format web browser bench bench-fanout bench-cluster mutate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund

$(WEB_STAMP): web/node_modules/.package-lock.json $(shell find web/src web/demo -type f 2>/dev/null) web/build.mjs
	cd web && npm run build
	touch $(WEB_STAMP)

web: $(WEB_STAMP)

run: $(STAMP) $(WEB_STAMP)
	$(BIN)/rtserver serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m rtserver.protocol.schema --check

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The browser tests drive Debian's Chromium; install it when it is missing and we may.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

test: $(STAMP) $(WEB_STAMP) browser lint
	cd web && npm run check && npm test
	$(BIN)/pytest -q

BENCH_STAMP := $(VENV)/.bench-installed

# The peers (python-socketio) and the profiler are a `bench` extra, installed only for this.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# Every scenario, 3 interleaved repetitions; BENCH_ARGS="--quick" or "--scenario 500x40 --reps 1".
bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.bench $(BENCH_ARGS)

# The in-process publish cost and a small loopback fan-out, without peers.
bench-fanout: $(STAMP)
	$(BIN)/python -m benchmarks.fanout

# Cross-node fan-out through the Redis bus against one node, as ratios (needs Redis and
# PostgreSQL: REDIS=redis://... and RTSERVER_TEST_POSTGRES=postgresql://...).
bench-cluster: $(STAMP)
	$(BIN)/python -m benchmarks.cluster $(if $(REDIS),--redis $(REDIS))

# Mutation testing of the core modules against the unit and integration tests (see
# docs/testing.md). Slow (most of an hour on two cores), so never part of `make test`; results
# are kept in mutants/ and re-used by the next run: `rm -rf mutants` for a fresh one. A first
# pass gives each mutant its 60 likeliest tests; the survivors with no recorded reason then run
# against all of theirs; the last steps print the score table and write the survivors' page.
mutate: $(STAMP)
	RTSERVER_MUTANT_TESTS=60 $(BIN)/mutmut run --max-children 8
	$(BIN)/python -m tests.mutation_survivors --rerun
	$(BIN)/python -m tests.mutation_score

clean:
	rm -rf $(VENV) web/node_modules rtserver/static/* mutants
