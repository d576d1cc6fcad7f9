# One-command entry points.  `make demo` and `make test` create a venv on first use.
#
#   make test                        Python 3 of the PATH, its stack (below)
#   make test PYTHON=python3.12      another interpreter, in its own .venv-python3.12
#   make test STACK=current          force a stack from stacks/ (legacy: NumPy 1, current: NumPy 2)
#   make lint                        ruff with ruff.toml (100 columns, pycodestyle + pyflakes)
#   make test-cluster                the job scripts under a private Slurm cluster (root; installs
#                                    slurm-wlm and munge with apt when they are missing)
#   make fashion-mnist               Debian's dataset-fashion-mnist with apt when it is missing (root)
PYTHON  ?= python3
STACK   ?= $(shell $(PYTHON) -c 'import sys; print("legacy" if sys.version_info < (3, 12) else "current")')
VENV    ?= $(if $(filter python3,$(PYTHON)),.venv,.venv-$(notdir $(PYTHON)))
PY      := $(VENV)/bin/python
MPIEXEC := $(VENV)/bin/mpiexec
NP      ?= 2
# Open MPI refuses to start as root unless told; harmless for other users.
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1

.PHONY: setup demo test lint test-cluster slurm fashion-mnist bench gpu-bundle clean-venv

$(VENV)/.installed: setup.py stacks/$(STACK).txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "setuptools<70" wheel
	$(PY) -m pip install --quiet --no-build-isolation -c stacks/$(STACK).txt -e ".[test]"
	echo $(STACK) > $@

setup: $(VENV)/.installed

demo: setup
	$(PY) -m chainer_ext.launch $(MPIEXEC) -n $(NP) --oversubscribe $(PY) train_imagenet.py --demo

test: setup
	$(PY) -m pytest -q tests

lint: setup
	$(VENV)/bin/ruff check --no-cache .

# Debian's Slurm and munge, for tests/cluster/ (they start no daemon: the tests run their own).
slurm:
	@if ! PATH="$$PATH:/usr/sbin:/sbin" command -v slurmctld >/dev/null 2>&1 || \
	    ! PATH="$$PATH:/usr/sbin:/sbin" command -v munged >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge; \
	fi

# Zalando's Fashion-MNIST as Debian packages it, for tests/test_fashion_mnist.py and the sweep's
# --data fashion-mnist.
fashion-mnist:
	@if [ ! -d /usr/share/datasets/fashion-mnist ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	fi

test-cluster: setup slurm
	$(PY) -m pytest -q tests/cluster

bench: setup
	$(PY) bench/run_all.py

# Everything an offline GPU machine with Python, NumPy and CuPy lacks, in dist/gpu-bundle.
gpu-bundle: setup
	$(PY) -m chainer_ext.gpu_bundle --out dist/gpu-bundle

clean-venv:
	rm -rf $(VENV)
