# Everything a fresh clone needs, in two commands:
#   make reproduce   # set up, then reproduce the tutorial's experiments (bilstm reproduce)
#   make test        # set up, then run the test suite once per Keras backend
VENV     ?= .venv
PY       := $(VENV)/bin/python
BACKENDS ?= tensorflow jax torch
BACKEND  ?= jax
PYTEST_ARGS ?=
OUT      ?= results/tutorial

.PHONY: venv test test-one reproduce bench-quick clean

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e ".[all,test]"
	touch $@

venv: $(VENV)/.installed

# One backend per pytest process: Keras fixes its backend at import.
test: venv
	@failed=""; \
	for b in $(BACKENDS); do \
	  echo "=== KERAS_BACKEND=$$b ==="; \
	  KERAS_BACKEND=$$b $(PY) -m pytest $(PYTEST_ARGS) || failed="$$failed $$b"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED on:$$failed"; exit 1; fi; \
	echo "all backends passed: $(BACKENDS)"

test-one: venv
	KERAS_BACKEND=$(BACKEND) $(PY) -m pytest $(PYTEST_ARGS)

reproduce: venv
	KERAS_BACKEND=$(BACKEND) $(VENV)/bin/bilstm reproduce --backend $(BACKEND) --out $(OUT)

bench-quick: venv
	$(VENV)/bin/bilstm bench --quick

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
