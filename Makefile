# Two commands do all the set-up on a fresh machine:
#   make demo   -- the main job (a cold-start recommender on real MovieLens data)
#   make test   -- lint, type checks, the docs build and the test suite (then the kernel tests
#                  again on the reference kernels)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KERNEL_TESTS := tests/_kernels tests/layers tests/synthesis tests/formats tests/data \
	tests/test_architecture.py tests/test_determinism.py tests/test_export.py tests/test_fuzz.py \
	tests/test_io.py tests/test_memory.py tests/test_quantize.py tests/test_reliability_catalogue.py \
	tests/test_safe_loading.py tests/test_search.py tests/test_ann.py tests/test_vectors.py \
	tests/test_encoders.py tests/test_autoencoder_embedder.py tests/test_extract.py \
	tests/test_recsys_metrics.py tests/test_recsys_split.py tests/test_movielens.py tests/test_vocab.py

.PHONY: demo test install bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	# TorchRec without its declared CUDA `fbgemm-gpu` dependency (the `distributed` extra
	# brought the CPU build and torchrec's pure-Python needs).
	$(BIN)/pip install --quiet --no-deps -c constraints.txt torchrec
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/synthembed demo

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site
	$(BIN)/pytest -n 2 --dist loadgroup
	# Again on the plain-torch reference kernels (synthembed/_kernels/reference.py): every
	# test module whose code reaches the kernels. The command line, docs, examples and text
	# encoder tests spend minutes in subprocesses and never differ between the two sets.
	SYNTHEMBED_KERNELS=reference $(BIN)/pytest -n 2 --dist loadgroup -q $(KERNEL_TESTS)

clean:
	rm -rf $(VENV) build *.egg-info
