"""One private Slurm cluster (slurm_cluster.py) shared by the cluster tests, the job
script they submit, and the uninterrupted run they compare with.

The tests skip, with one line, where no cluster can run (not root, no network
namespaces, Slurm not installed: ``apt-get install slurm-wlm munge``), and when
``AKIBA_CLUSTER_TESTS=0`` (CI runs them in its first stack only).
``AKIBA_CLUSTER_KEEP=1`` keeps the cluster's folder (its slurm.conf and logs).
"""
import json
import os
import shlex
import subprocess
import sys
import threading
import time

import numpy
import pytest

from conftest import REPO_ROOT, write_tiny_imagenet
from chainer_ext.job.mpiexec import mpi_env, mpiexec_command

from cluster.slurm_cluster import SlurmCluster, unavailable_reason

NODES = 2
#: Epochs of every run compared with the uninterrupted one: long enough that a
#: time-limit signal lands mid-run (6 iterations per epoch, see job_env).
EPOCH = 16
RENDER = os.path.join(REPO_ROOT, 'jobs', 'render.py')


def skip_without_cluster():
    """Skip, saying why in one line, where no cluster test can run."""
    if os.environ.get('AKIBA_CLUSTER_TESTS', '1') == '0':
        pytest.skip('cluster tests off (AKIBA_CLUSTER_TESTS=0)')
    reason = unavailable_reason()
    if reason:
        pytest.skip('no Slurm cluster: ' + reason)


@pytest.fixture(scope='package')
def cluster():
    """Up while tests/cluster/ runs; torn down before the rest of the suite."""
    skip_without_cluster()
    with SlurmCluster(nodes=NODES, keep=os.environ.get('AKIBA_CLUSTER_KEEP') == '1') as c:
        yield c


def render(tmp_path, nodes, name='job.sh'):
    """The CPU Slurm script, rendered by jobs/render.py for ``nodes`` 2-core nodes and
    4 images per rank (the tiny data set has 24 per rank)."""
    path = str(tmp_path / name)
    subprocess.run([sys.executable, RENDER, 'slurm-cpu', '--nodes', str(nodes),
                    '--cpus-per-node', '2', '--batchsize', '4', '-o', path], check=True)
    return path


@pytest.fixture(scope='session')
def data(tmp_path_factory):
    return write_tiny_imagenet(str(tmp_path_factory.mktemp('cluster-data') / 'data'))


def job_env(data, out, **extra):
    """What a user sets to run the script on the tiny data set (environment only)."""
    env = {'REPO': REPO_ROOT, 'VENV': sys.prefix, 'DATA': data[2],
           'TRAIN_LIST': data[0], 'VAL_LIST': data[1], 'OUT': str(out),
           'ARCH': 'resnet18', 'INSIZE': '32', 'EPOCH': str(EPOCH),
           # Open MPI refuses to start as root unless told
           'OMPI_ALLOW_RUN_AS_ROOT': '1', 'OMPI_ALLOW_RUN_AS_ROOT_CONFIRM': '1'}
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture(scope='session')
def script(tmp_path_factory):
    return render(tmp_path_factory.mktemp('cluster-job'), NODES)


@pytest.fixture(scope='session')
def reference(tmp_path_factory, data, script):
    """The uninterrupted ``mpiexec -n 2`` run on this machine, with the flags the
    script launches (read from its dry run): what every Slurm run must end on."""
    out = tmp_path_factory.mktemp('cluster-reference') / 'out'
    env = dict(os.environ, DRY_RUN='1', **job_env(data, out))
    dry = subprocess.run(['bash', script], env=env, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    argv = shlex.split(dry.stdout.strip().splitlines()[-1])
    train = argv[next(i for i, a in enumerate(argv) if a.endswith('/bin/python')):]
    proc = subprocess.run(mpiexec_command(NODES, train), env=mpi_env({
        'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'OPENBLAS_NUM_THREADS': '1'}),
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=900)
    assert proc.returncode == 0, proc.stdout[-5000:]
    return str(out)


def weights(out):
    with numpy.load(os.path.join(str(out), 'model.npz')) as f:
        return {k: f[k] for k in f.files}


def max_weight_difference(out, reference):
    a, b = weights(out), weights(reference)
    assert a.keys() == b.keys()
    return max(float(numpy.max(numpy.abs(a[k] - b[k]))) for k in a)


def log_epochs(out):
    with open(os.path.join(str(out), 'log')) as f:
        return [entry['epoch'] for entry in json.load(f)]


class Watch(object):
    """Follows a job's output file, stamping each line with the time it appeared."""

    def __init__(self, path, poll=0.1):
        self.path = str(path)
        self.lines = []  # (time, line)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, args=(poll,), daemon=True)
        self._thread.start()

    def _follow(self, poll):
        pos, rest = 0, ''
        while not self._stop.is_set():
            try:
                with open(self.path, errors='replace') as f:
                    f.seek(pos)
                    chunk = f.read()
                    pos = f.tell()
            except FileNotFoundError:
                chunk = ''
            if chunk:
                now = time.time()
                rest += chunk
                *done, rest = rest.split('\n')
                self.lines.extend((now, line) for line in done)
            self._stop.wait(poll)

    def first(self, text, after=0.0):
        """Time the first line containing ``text`` appeared (after ``after``), or None."""
        return next((t for t, line in list(self.lines) if text in line and t >= after), None)

    def wait_for(self, text, timeout, after=0.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            t = self.first(text, after)
            if t is not None:
                return t
            time.sleep(0.1)
        raise AssertionError('"{}" not in {} after {} s:\n{}'.format(
            text, self.path, timeout, self.text()[-5000:]))

    def text(self):
        try:
            with open(self.path, errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def stop(self):
        self._stop.set()
        self._thread.join()
