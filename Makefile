# Everything a fresh clone needs, in two commands:
#   make reproduce   # set up its backend alone (.[jax] by default), then reproduce the tutorial (bilstm reproduce)
#   make test        # add the rest to the same .venv, then run every test: the oracle alone, each backend, the wheel
# The test loop between them: make smoke (under 2 minutes), make test-part PART=verify, make test-full.
VENV     ?= .venv
PY       := $(VENV)/bin/python
BACKENDS ?= tensorflow jax torch
BACKEND  ?= jax
PYTEST_ARGS ?=
# make test-part PART=verify: one folder of parity_tests/ (oracle, parity, training, verify, export, convert, ...)
PART     ?=
# How many test processes run at once (make test, make test-keras): the passes are mostly one busy thread each.
JOBS     ?= 2
# Bytecode: every Python process of a run (the passes, their workers and fresh interpreters) imports Keras,
# TensorFlow and JAX; with PYTHONDONTWRITEBYTECODE set (some CI images and sandboxes set it) and pip's
# --no-compile below, each of them compiled those modules from source again: 12 s an import of keras,
# tensorflow and jax against 5 s from bytecode (measured on the 2-core machine). The bytecode goes to one
# folder inside the environment, compiled on first import, so the source tree stays clean.
export PYTHONDONTWRITEBYTECODE :=
export PYTHONPYCACHEPREFIX ?= $(abspath $(VENV))/pycache
# The Keras passes: every folder of parity_tests but the oracle's (make test-oracle runs it once, framework-free).
# Tests no backend can change (marker backend_independent) run in the first backend's pass only.
KERAS_MARKS ?= not slow
OUT      ?= results/tutorial
# The oracle's own tests (the folder parity_tests/oracle) run here with NumPy, pytest and hypothesis alone.
VENV_ORACLE ?= .venv-oracle
ORACLE_TESTS := parity_tests/oracle
# Each backend's pass runs as two processes, the parity claims and the rest, so that two run at a time
# without one long pass left alone at the end (make test-part runs one folder).
PARITY_PARTS := parity_tests/parity parity_tests/training
OTHER_PARTS  := parity_tests/verify parity_tests/export parity_tests/convert parity_tests/experiments \
  parity_tests/bench parity_tests/project
INDEPENDENT_PASS := $(firstword $(BACKENDS))
# JAX compiles each program once a run and reuses it across test cases and processes (an empty cache each run).
JAX_CACHE := $(CURDIR)/.pytest-jax-cache
PASS_ENV = JAX_COMPILATION_CACHE_DIR=$(JAX_CACHE) JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 \
  JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0
# Longest first, so that the two slots finish together: every backend's rest (the long processes: JAX's, then
# torch's, then TensorFlow's), then the parity claims, then the short parts (make test lists them last).
PASS_ORDER := $(filter $(BACKENDS),jax torch tensorflow) $(filter-out jax torch tensorflow,$(BACKENDS))
PASSES := $(foreach b,$(PASS_ORDER),pass-$(b)-other) $(foreach b,$(PASS_ORDER),pass-$(b)-parity)

.PHONY: venv test test-keras test-one test-part test-oracle test-wheel test-full smoke reproduce bench-quick \
  docs-export-matrix docs-export-precision clean

# One environment, set up to the size of the job: make reproduce installs its backend's extra alone
# ($(VENV)/.installed-jax: pip install -e ".[jax]"); make venv, make test and the rest install the full set
# ($(VENV)/.installed) into the same environment. The full set covers every backend's extra: its stamps too.
$(PY):
	python3 -m venv $(VENV)

$(VENV)/.installed-%: pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install -q --no-compile -c constraints.txt -e ".[$*]"
	touch $@

$(VENV)/.installed: pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install -q --no-compile -c constraints.txt -e ".[all,export,test]"
	touch $@ $(foreach b,tensorflow jax torch,$(VENV)/.installed-$(b))

venv: $(VENV)/.installed

$(VENV_ORACLE)/.installed: constraints.txt
	python3 -m venv $(VENV_ORACLE)
	$(VENV_ORACLE)/bin/python -m pip install -q -c constraints.txt numpy pytest hypothesis
	touch $@

# Every part runs even when another fails (make -k); the status is non-zero if any failed. JOBS processes at a
# time; each part's output is printed whole when it ends (--output-sync), so the log reads part by part.
# The oracle's environment is made by test-oracle's own rule, in a slot beside the passes: its downloads
# overlap their work instead of delaying their start.
test: venv
	@rm -rf $(JAX_CACHE); start=$$(date +%s); \
	if $(MAKE) --no-print-directory -k -j$(JOBS) --output-sync=target $(PASSES) test-oracle test-wheel; then \
	  echo "all passed: oracle, keras on $(BACKENDS), wheel ($$(( $$(date +%s) - start )) s)"; \
	else echo "FAILED: see the parts above ($$(( $$(date +%s) - start )) s)"; exit 1; fi

# One backend per pytest process: Keras fixes its backend at import.
test-keras: venv
	@if [ -z "$(strip $(BACKENDS))" ]; then echo "BACKENDS is empty: no backend to test"; exit 2; fi; \
	rm -rf $(JAX_CACHE); \
	if $(MAKE) --no-print-directory -k -j$(JOBS) --output-sync=target $(PASSES); then \
	  echo "all backends passed: $(BACKENDS)"; else echo "FAILED on a backend: see the passes above"; exit 1; fi

pass-%-parity: venv
	@echo "=== KERAS_BACKEND=$*: $(PARITY_PARTS) ==="
	@BILSTM_SKIP_BACKEND_INDEPENDENT=$(if $(filter $*,$(INDEPENDENT_PASS)),0,1) KERAS_BACKEND=$* $(PASS_ENV) \
	  $(PY) -m pytest -p no:cacheprovider -m "$(KERAS_MARKS)" $(PARITY_PARTS) $(PYTEST_ARGS)

pass-%-other: venv
	@echo "=== KERAS_BACKEND=$*: $(OTHER_PARTS) ==="
	@BILSTM_SKIP_BACKEND_INDEPENDENT=$(if $(filter $*,$(INDEPENDENT_PASS)),0,1) KERAS_BACKEND=$* $(PASS_ENV) \
	  $(PY) -m pytest -p no:cacheprovider -m "$(KERAS_MARKS)" $(OTHER_PARTS) $(PYTEST_ARGS)

# One folder of the suite on one backend: make test-part PART=verify BACKEND=torch (PART=oracle: framework-free).
test-part: venv
	@if [ -z "$(PART)" ] || [ ! -d parity_tests/$(PART) ]; then \
	  echo "PART must name a folder of parity_tests: $$(cd parity_tests && ls -d */ | grep -v fixtures | tr -d / | tr '\n' ' ')"; exit 2; fi
	KERAS_BACKEND=$(BACKEND) $(PASS_ENV) $(PY) -m pytest -p no:cacheprovider -m "$(KERAS_MARKS)" parity_tests/$(PART) $(PYTEST_ARGS)

test-one: venv
	KERAS_BACKEND=$(BACKEND) $(PASS_ENV) $(PY) -m pytest -p no:cacheprovider -m "$(KERAS_MARKS)" \
	  $(PARITY_PARTS) $(OTHER_PARTS) $(PYTEST_ARGS)

# Under 2 minutes on one backend: the oracle's tests, one parity case per cell and merge mode (marker smoke),
# and bilstm parity --quick.
smoke: venv
	@start=$$(date +%s); \
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow" $(ORACLE_TESTS) && \
	KERAS_BACKEND=$(BACKEND) $(PY) -m pytest -q -p no:cacheprovider -m smoke parity_tests/parity && \
	$(VENV)/bin/bilstm parity --quick --backend $(BACKEND) && \
	echo "smoke passed on $(BACKEND) in $$(( $$(date +%s) - start )) s"

# Everything, the long opt-in variants (marker slow) included: the whole option products, 1,000-update
# trajectories, the tutorial's own fit loop, every portability direction.
test-full:
	$(MAKE) --no-print-directory test KERAS_MARKS="slow or not slow"

test-oracle: $(VENV_ORACLE)/.installed
	@echo "=== the oracle alone: NumPy, pytest, hypothesis ==="
	@$(VENV_ORACLE)/bin/python -m pytest -p no:cacheprovider -m "not slow" $(ORACLE_TESTS)

# The wheel as a user installs it: built, installed with the jax extra into a fresh environment outside
# the source tree, and run from there. Built from a copy of the tracked files: no build/ in the source tree
# (setuptools would pack stale files left there, and the passes running beside it read the tree).
# --no-compile: pip would byte-compile every module of jax, scipy, keras... (most never imported here);
# Python compiles what the commands import, as they import it. pip only warns on a module that does not
# compile, so this loses no check.
test-wheel:
	@echo "=== the wheel, installed outside the source tree ==="
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	mkdir "$$tmp/src"; git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$$tmp/src"; \
	python3 -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip wheel -q --no-deps "$$tmp/src" -w "$$tmp/dist"; \
	wheel=$$(ls "$$tmp"/dist/bilstm_lab-*.whl); \
	"$$tmp/venv/bin/python" -m pip install -q --no-compile -c "$(CURDIR)/constraints.txt" "$$wheel[jax]"; \
	cd "$$tmp"; unset PYTHONPATH; \
	venv/bin/python -c "import keras_impl, sys; assert keras_impl.__file__.startswith(sys.prefix), keras_impl.__file__"; \
	if venv/bin/python -c "import parity_tests" 2>/dev/null; then echo "the wheel holds parity_tests"; exit 1; fi; \
	venv/bin/bilstm --help > /dev/null; \
	venv/bin/bilstm parity --quick --backend jax; \
	echo "wheel test passed"

# --resume: a second make reproduce re-checks the finished runs and reuses them (the command refuses an existing
# result set otherwise).
reproduce: $(VENV)/.installed-$(BACKEND)
	KERAS_BACKEND=$(BACKEND) $(VENV)/bin/bilstm reproduce --backend $(BACKEND) --out $(OUT) --resume

# Developers: render docs/export.md's matrix and README.md's routes table (between their markers) from a
# results folder of bilstm export --matrix. A user's --matrix run writes only its --out.
docs-export-matrix: OUT = results/export-matrix
docs-export-matrix: venv
	$(PY) -m keras_impl.export.matrix render --from $(OUT)

docs-export-precision: OUT = results/export-precision
docs-export-precision: venv
	$(PY) -m keras_impl.export.precision_matrix render --from $(OUT)

bench-quick: venv
	$(VENV)/bin/bilstm bench --quick

clean:
	rm -rf $(VENV) $(VENV_ORACLE) build *.egg-info .pytest_cache .hypothesis $(JAX_CACHE)
