# `make test` and `make demo` create their own environment in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MNIST_DIR := $(abspath ../shared/data/mnist)

export KERAS_BACKEND := tensorflow
export TF_CPP_MIN_LOG_LEVEL := 2
ifneq ($(wildcard $(MNIST_DIR)/train-images-idx3-ubyte.gz),)
export ZOO_MNIST_DIR ?= $(MNIST_DIR)
endif

BACKEND_TESTS := tests/backends tests/layers tests/callbacks tests/test_losses.py \
	tests/test_losses_mhp.py tests/test_metrics.py

.PHONY: test test-backends test-all lint format demo bench clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[all,backends,dev]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q
	$(MAKE) --no-print-directory test-backends

# The backend-neutral tests (marked `backend`) again on JAX and on PyTorch, one process each.
test-backends: $(STAMP)
	KERAS_BACKEND=jax $(BIN)/python -m pytest -q -m "backend and not slow" $(BACKEND_TESTS)
	KERAS_BACKEND=torch $(BIN)/python -m pytest -q -m "backend and not slow" $(BACKEND_TESTS)

lint: $(STAMP)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

format: $(STAMP)
	$(BIN)/python -m ruff check --fix .
	$(BIN)/python -m ruff format .

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ""

demo: $(STAMP)
	$(BIN)/python examples/ibs_vs_lrd.py --quick

bench: $(STAMP)
	for script in benchmarks/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) *.egg-info
