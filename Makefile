# Two commands work on a fresh machine: `make demo` (the main job) and `make test` (every test).
# Each creates .venv and installs the project with what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: demo test test-fast record bench dists clean

# Tests never reach the internet: cassettes replay, and only loopback is allowed.
PYTEST_OFFLINE := --record-mode=none --block-network --allowed-hosts=127.0.0.1,localhost

# Silent (@) and to stderr (1>&2): `make demo ARGS="--json" | python -m json.tool` sees only
# the demo's JSON on stdout, on a fresh machine too.
$(VENV)/bin/python:
	@$(PYTHON) -m venv $(VENV) 1>&2
	@$(BIN)/python -m pip install --quiet --upgrade pip 1>&2

# The demo needs only the `demo` extra; the tests need the whole dev toolchain.
$(DEMO_STAMP): pyproject.toml | $(VENV)/bin/python
	@$(BIN)/python -m pip install --quiet -e ".[demo]" 1>&2
	@touch $(DEMO_STAMP)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP) $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	@$(BIN)/mixlayer-demo $(ARGS)

# Wheels for the packaging test's fresh venvs, fetched at install time so the test is offline.
WHEELHOUSE := $(VENV)/wheelhouse
$(WHEELHOUSE)/.done: pyproject.toml | $(STAMP)
	$(BIN)/python -m pip download --quiet -d $(WHEELHOUSE) ".[langchain,llama-index]" "pytest>=8,<10"
	rm -f $(WHEELHOUSE)/mixlayer_embeddings-*
	touch $(WHEELHOUSE)/.done

test: $(STAMP) $(WHEELHOUSE)/.done
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_OFFLINE) --durations=15 $(ARGS)

# The inner loop for contributors: the unit and HTTP tests, without packaging, Ray, the
# corpus-scale tests (marked slow in tests/conftest.py), and with a tenth of each property's
# examples. `make test` stays CI's, and runs everything.
test-fast: $(STAMP)
	MIXLAYER_FAST_TESTS=1 $(BIN)/python -m pytest $(PYTEST_OFFLINE) -m "not slow" -q $(ARGS)

# Re-record the cassettes: against the real service when MIXLAYER_API_KEY is set (the
# recordings then say https://models.mixlayer.ai), else against a local emulator. Keys and
# key-bearing headers are scrubbed before anything is written (tests/conftest.py).
RECORDED := tests/test_cassettes.py tests/test_langchain_standard.py tests/test_llama_index.py
record: $(STAMP)
	rm -rf cassettes/test_cassettes cassettes/test_langchain_standard cassettes/test_llama_index
	$(BIN)/python -m pytest $(RECORDED) -k "cassette or Cassettes" --record-mode=once

# Every distribution this repository builds, into dist/: mixlayer-embeddings (wheel, sdist) and
# the registries' names, langchain-mixlayer and llama-index-embeddings-mixlayer (metadata only:
# each depends on mixlayer-embeddings with its extra).
dists: $(STAMP)
	$(BIN)/python -m hatchling build -d dist
	for package in packages/*/; do \
		(cd $$package && $(CURDIR)/$(BIN)/python -m hatchling build -d $(CURDIR)/dist) || exit 1; \
	done

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	$(BIN)/python benchmarks/bench_ingest.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache dist
