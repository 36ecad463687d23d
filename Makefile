# Two commands do all the set-up on a fresh machine:
#   make demo   -- the main job (a cold-start recommender on real MovieLens data)
#   make test   -- lint, type checks and the test suite (fast kernels, then reference kernels)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/synthembed demo

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist loadgroup
	# The same suite on the plain-torch reference kernels (synthembed/_kernels/reference.py).
	SYNTHEMBED_KERNELS=reference $(BIN)/pytest -n 2 --dist loadgroup -q

clean:
	rm -rf $(VENV) build *.egg-info
