"""Shared pytest helpers.

Multi-process tests run a script under ``tests/mpi/`` with ``mpiexec -n N``;
the script asserts on every rank and exits non-zero on failure, so the pytest
test only checks the exit status and shows the output when it fails.
"""
import os
import sys

import pytest

from chainer_ext.mpi_launch import run_mpi

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)
MPI_SCRIPTS = os.path.join(TESTS_DIR, 'mpi')


@pytest.fixture
def mpirun():
    """``mpirun(n, script, *args, timeout=300)`` runs ``tests/mpi/<script>``.

    Fails the test (with the job's output) when the job exits non-zero;
    returns the CompletedProcess otherwise.
    """
    def _run(n, script, *args, timeout=300, env=None, check=True, cwd=None):
        path = script if os.path.isabs(script) else os.path.join(MPI_SCRIPTS, script)
        extra = {'PYTHONPATH': REPO_ROOT + os.pathsep + os.environ.get('PYTHONPATH', '')}
        extra.update(env or {})
        proc = run_mpi(n, [sys.executable, path] + [str(a) for a in args],
                       timeout=timeout, env=extra, cwd=cwd or REPO_ROOT)
        if check and proc.returncode != 0:
            pytest.fail('mpiexec -n {} {} exited {}:\n{}'.format(
                n, script, proc.returncode, proc.stdout[-20000:]))
        return proc
    return _run
