# Set-up and everyday commands. `make demo` and `make test` work on a fresh machine: they create
# .venv, install the pinned stack (constraints.txt) and then run.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install onednn demo test test-all lint format bench check-tpu device-check docs clean

$(STAMP): setup.cfg constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,onednn]'
	touch $(STAMP)

# The optional oneDNN extension (cells.scan(..., backend='onednn'), cells/kernels/native): built
# against the venv's oneDNN (the onednn extra: Intel's CPU wheels, x86-64 Linux) or a system one;
# where there is none or no compiler, one line says why and the install goes on. `make onednn`
# rebuilds it and fails when it cannot.
ONEDNN_STAMP := $(VENV)/.built-onednn
NATIVE := cells/kernels/native

$(ONEDNN_STAMP): $(STAMP) $(NATIVE)/onednn_rnn.cc $(NATIVE)/build.py
	$(PY) -m cells.kernels.native.build --quiet
	touch $(ONEDNN_STAMP)

onednn: $(STAMP)
	$(PY) -m cells.kernels.native.build --quiet --require
	touch $(ONEDNN_STAMP)

install: $(STAMP) $(ONEDNN_STAMP)

demo: install
	$(PY) -m experiments.tools.demo

# --durations: every run prints its 20 slowest tests, to keep the default suite near 10 min
test: install
	$(PY) -m pytest -q -n 2 -m "not slow" --durations=20 $(PYTEST_ARGS)

test-all: install
	$(PY) -m pytest -q -n 2 $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	$(PY) -m experiments.studies.cpu_speed.bench

# Deviceless TPU compilation (experiments/studies/accelerators/check_tpu.py). libtpu gets its
# own venv: where it is
# installed, JAX probes for a TPU at every start-up. JAX_PLATFORMS=cpu: nothing runs on a TPU;
# TPU_SKIP_MDS_QUERY / TPU_WORKER_HOSTNAMES: no cloud metadata server or TPU pod to ask.
TPU_VENV := .venv-tpu
TPU_STAMP := $(TPU_VENV)/.installed
CHECK_TPU_OUT ?= workdirs/check_tpu

$(TPU_STAMP): setup.cfg constraints.txt
	test -x $(TPU_VENV)/bin/python || $(PYTHON) -m venv $(TPU_VENV)
	$(TPU_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TPU_VENV)/bin/python -m pip install --quiet -c constraints.txt -e '.[train,tpu]'
	touch $(TPU_STAMP)

check-tpu: $(TPU_STAMP)
	JAX_PLATFORMS=cpu TPU_SKIP_MDS_QUERY=1 TPU_WORKER_HOSTNAMES=localhost \
		$(TPU_VENV)/bin/python -m experiments.studies.accelerators.check_tpu --out=$(CHECK_TPU_OUT)

# The documentation site into site/ (mkdocs.yml). Its packages (the docs extra) get their own
# stamp, so `make test` does not install them. --strict: a broken link or API reference fails.
# NO_MKDOCS_2_WARNING: mkdocs-material's banner about MkDocs 2.0, not about this site.
DOCS_STAMP := $(VENV)/.installed-docs

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# On a machine with an NVIDIA GPU and its own jax[cuda]/flax/torch
# (experiments/studies/accelerators/device_check.py).
device-check:
	bash experiments/studies/accelerators/device_check.sh

clean:
	rm -rf $(VENV) $(TPU_VENV) build dist *.egg-info .pytest_cache .ruff_cache $(NATIVE)/_onednn_rnn.so
