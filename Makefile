# One-command entry points.  `make demo` and `make test` create .venv on first use.
VENV    ?= .venv
PY      := $(VENV)/bin/python
MPIEXEC := $(VENV)/bin/mpiexec
NP      ?= 2
# Open MPI refuses to start as root unless told; harmless for other users.
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1

.PHONY: setup demo test bench clean-venv

$(VENV)/.installed: setup.py
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet "setuptools<70" wheel
	$(PY) -m pip install --quiet --no-build-isolation -e ".[test]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(MPIEXEC) -n $(NP) --oversubscribe $(PY) train_imagenet.py --demo

test: setup
	$(PY) -m pytest -q tests

bench: setup
	$(PY) bench/run_all.py

clean-venv:
	rm -rf $(VENV)
