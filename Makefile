# Everything a fresh clone needs, in two commands:
#   make reproduce   # set up, then reproduce the tutorial's experiments (bilstm reproduce)
#   make test        # set up, then run every test: the oracle alone, each Keras backend, the installed wheel
VENV     ?= .venv
PY       := $(VENV)/bin/python
BACKENDS ?= tensorflow jax torch
BACKEND  ?= jax
PYTEST_ARGS ?=
# The Keras passes leave out the oracle's own tests (make test-oracle runs them once, framework-free),
# except those marked `imports`; a `-m` in PYTEST_ARGS comes later and wins.
KERAS_MARKS ?= not slow and (not oracle or imports)
OUT      ?= results/tutorial
# The oracle's own tests (marker `oracle`) run here with NumPy, pytest and hypothesis alone: no framework.
VENV_ORACLE ?= .venv-oracle
# The files that hold them (pytest imports every file it is given before it deselects by marker);
# parity_tests/test_oracle_imports.py checks that this list matches the markers.
ORACLE_TESTS := parity_tests/test_oracle_self.py parity_tests/test_gradcheck.py parity_tests/test_problem.py \
  parity_tests/test_validation.py parity_tests/test_loss_adam.py parity_tests/test_oracle_imports.py \
  parity_tests/test_verify_oracle.py parity_tests/test_cells_oracle.py parity_tests/test_lstm_fused.py

.PHONY: venv test test-keras test-one test-oracle test-wheel reproduce bench-quick clean

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --no-compile -c constraints.txt -e ".[all,export,test]"
	touch $@

venv: $(VENV)/.installed

$(VENV_ORACLE)/.installed: constraints.txt
	python3 -m venv $(VENV_ORACLE)
	$(VENV_ORACLE)/bin/python -m pip install -q -c constraints.txt numpy pytest hypothesis
	touch $@

# Every part runs even when an earlier one fails; the status is non-zero if any failed.
test: venv
	@failed=""; \
	$(MAKE) --no-print-directory test-oracle || failed="$$failed oracle"; \
	$(MAKE) --no-print-directory test-keras || failed="$$failed keras"; \
	$(MAKE) --no-print-directory test-wheel || failed="$$failed wheel"; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi; \
	echo "all passed: oracle, keras on $(BACKENDS), wheel"

# One backend per pytest process: Keras fixes its backend at import. Tests marked backend_independent
# run in the first backend's pass only (parity_tests/conftest.py).
test-keras: venv
	@if [ -z "$(strip $(BACKENDS))" ]; then echo "BACKENDS is empty: no backend to test"; exit 2; fi; \
	failed=""; skip_independent=0; \
	for b in $(BACKENDS); do \
	  echo "=== KERAS_BACKEND=$$b ==="; \
	  BILSTM_SKIP_BACKEND_INDEPENDENT=$$skip_independent KERAS_BACKEND=$$b $(PY) -m pytest -m "$(KERAS_MARKS)" $(PYTEST_ARGS) \
	    || failed="$$failed $$b"; \
	  skip_independent=1; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED on:$$failed"; exit 1; fi; \
	echo "all backends passed: $(BACKENDS)"

test-one: venv
	KERAS_BACKEND=$(BACKEND) $(PY) -m pytest -m "$(KERAS_MARKS)" $(PYTEST_ARGS)

test-oracle: $(VENV_ORACLE)/.installed
	@echo "=== the oracle alone: NumPy, pytest, hypothesis ==="
	$(VENV_ORACLE)/bin/python -m pytest -m "oracle and not slow" $(ORACLE_TESTS)

# The wheel as a user installs it: built, installed with the jax extra into a fresh environment outside
# the source tree, and run from there. (build/ goes first: setuptools would pack stale files left in it.)
# --no-compile: pip would byte-compile every module of jax, scipy, keras... (most never imported here);
# Python compiles what the commands import, as they import it. pip only warns on a module that does not
# compile, so this loses no check.
test-wheel:
	@echo "=== the wheel, installed outside the source tree ==="
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	rm -rf build; \
	python3 -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip wheel -q --no-deps . -w "$$tmp/dist"; \
	wheel=$$(ls "$$tmp"/dist/bilstm_lab-*.whl); \
	"$$tmp/venv/bin/python" -m pip install -q --no-compile -c "$(CURDIR)/constraints.txt" "$$wheel[jax]"; \
	cd "$$tmp"; unset PYTHONPATH; \
	venv/bin/python -c "import keras_impl, sys; assert keras_impl.__file__.startswith(sys.prefix), keras_impl.__file__"; \
	if venv/bin/python -c "import parity_tests" 2>/dev/null; then echo "the wheel holds parity_tests"; exit 1; fi; \
	venv/bin/bilstm --help > /dev/null; \
	venv/bin/bilstm parity --quick --backend jax; \
	echo "wheel test passed"

reproduce: venv
	KERAS_BACKEND=$(BACKEND) $(VENV)/bin/bilstm reproduce --backend $(BACKEND) --out $(OUT)

bench-quick: venv
	$(VENV)/bin/bilstm bench --quick

clean:
	rm -rf $(VENV) $(VENV_ORACLE) build *.egg-info .pytest_cache .hypothesis
