"""Bad flags fail at start with one clear line, before any rank does work."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, 'train_imagenet.py')


def _run(tmp_path, *args):
    proc = subprocess.run([sys.executable, SCRIPT] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    return proc


@pytest.fixture
def lists(tmp_path):
    train = tmp_path / 'train.txt'
    val = tmp_path / 'val.txt'
    train.write_text('a.jpg 0\n')
    val.write_text('a.jpg 0\n')
    return str(train), str(val)


@pytest.mark.parametrize('extra, message', [
    (['--batchsize', '0'], '--batchsize must be a positive integer, got 0'),
    (['--batchsize', '-3'], '--batchsize must be a positive integer, got -3'),
    (['--insize', '16'], '--insize 16 is too small for resnet50'),
    (['--epoch', '0'], '--epoch must be a positive integer, got 0'),
    (['--epoch', 'ten'], '--epoch must be a positive integer, got ten'),
    (['--loaderjob', '-1'], '--loaderjob must be an integer >= 0, got -1'),
    (['--weight-decay', '-0.1'], '--weight-decay must be a finite number >= 0, got -0.1'),
    (['--lars-eta', '0'], '--lars-eta must be a finite number > 0, got 0'),
    (['--optimizer', 'adam'], "--optimizer invalid choice: 'adam'"),
    (['--max-nonfinite', '0'], '--max-nonfinite must be a positive integer, got 0'),
    (['--min-area', '1.5'], '--min-area must be in (0, 1], got 1.5'),
    (['--resume', 'nowhere/epoch-3'], '--resume nowhere/epoch-3: no such snapshot folder'),
    (['--stop-signals', 'FOO'], '--stop-signals FOO is not a signal name; e.g. TERM,USR1'),
    (['--stop-signals', 'TERM,KILL'], '--stop-signals KILL cannot be caught; e.g. TERM,USR1'),
    # no GPU on this machine: GPU-only communicators are refused up front
    (['--communicator', 'pure_nccl'], '--communicator pure_nccl needs GPUs'),
    (['--communicator', 'non_cuda_aware', '--allreduce-dtype', 'float32'],
     '--communicator non_cuda_aware needs GPUs'),
    # ChainerMN 7.8.1 has no hierarchical, two_dimensional or single_node
    (['--communicator', 'hierarchical'], "--communicator invalid choice: 'hierarchical'"),
    (['--communicator', 'flat', '--allreduce-dtype', 'float32'],
     "--communicator flat with --allreduce-dtype float32: ChainerMN's flat communicator "
     'needs GPUs'),
    (['--device', 'gpu'], '--device gpu: CuPy is not installed'),
])
def test_bad_flag_one_line(tmp_path, lists, extra, message):
    proc = _run(tmp_path, '--train', lists[0], '--val', lists[1], '--out',
                tmp_path / 'out', *extra)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith('train_imagenet.py: error: ' + message)



def _older_kernel_pinned():
    """An environment pinning OpenBLAS to ``Prescott``, older than this CPU's own kernel,
    as some hosts set it for old OpenBLAS builds; skips where no newer kernel is known."""
    sys.path.insert(0, REPO)
    from chainer_ext.machine import blas as blas_setup
    own = blas_setup.cpu_kernel(blas_setup.cpu_flags())
    if own is None or not blas_setup.older('Prescott', own):
        pytest.skip('this CPU has no kernel newer than Prescott to warn about')
    return dict(os.environ, OPENBLAS_CORETYPE='Prescott')


def test_an_inherited_blas_pin_keeps_a_refusal_to_one_line(tmp_path, lists):
    """The warning about an older pinned BLAS kernel waits until the flags are accepted."""
    proc = subprocess.run([sys.executable, SCRIPT, '--train', lists[0], '--val', lists[1],
                           '--batchsize', '0', '--out', str(tmp_path / 'out')],
                          capture_output=True, text=True, timeout=120, cwd=str(tmp_path),
                          env=_older_kernel_pinned())
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        'train_imagenet.py: error: --batchsize must be a positive integer, got 0']


def test_an_inherited_blas_pin_is_still_warned_about_once_the_run_starts(tmp_path):
    proc = subprocess.run([sys.executable, SCRIPT, '--synthetic', '--synthetic-size', '8',
                           '--batchsize', '4', '--arch', 'resnet18', '--insize', '32',
                           '--max-iterations', '1', '--no-validation', '--no-plots',
                           '--loaderjob', '0', '--out', str(tmp_path / 'out')],
                          capture_output=True, text=True, timeout=300, cwd=str(tmp_path),
                          env=_older_kernel_pinned())
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count('warning: OPENBLAS_CORETYPE=Prescott is set, an older kernel') \
        == 1, proc.stderr


_FAKE_RUNTIME = '''
import os
class CUDARuntimeError(RuntimeError):
    pass
def getDeviceCount():
    if os.environ.get('FAKE_CUDA_ERROR'):
        raise CUDARuntimeError(os.environ['FAKE_CUDA_ERROR'])
    return 1
driverGetVersion = runtimeGetVersion = lambda: 13000
getDeviceProperties = lambda i: {'name': b'Fake GPU'}
'''


@pytest.fixture
def fake_cupy(tmp_path):
    """A CuPy whose runtime answers as told and that has no NCCL, first on PYTHONPATH."""
    pkg = tmp_path / 'fake' / 'cupy'
    (pkg / 'cuda').mkdir(parents=True)
    (pkg / '__init__.py').write_text("__version__ = '14.2.0'\nfrom cupy import cuda\n")
    (pkg / 'cuda' / '__init__.py').write_text('from cupy.cuda import runtime\n')
    (pkg / 'cuda' / 'runtime.py').write_text(_FAKE_RUNTIME)
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(pkg.parent), REPO]))


@pytest.mark.parametrize('n', [1, 2])
def test_cupy_that_does_not_match_the_driver(mpirun, tmp_path, fake_cupy, n):
    env = dict(fake_cupy, FAKE_CUDA_ERROR='cudaErrorInsufficientDriver: CUDA driver '
               'version is insufficient for CUDA runtime version')
    proc = mpirun(n, SCRIPT, '--synthetic', '--out', tmp_path / 'out', env=env, check=False)
    assert proc.returncode != 0
    lines = [x for x in proc.stdout.splitlines() if 'train_imagenet.py: error:' in x]
    assert len(lines) == 1, proc.stdout  # rank 0 only
    assert 'InsufficientDriver' in lines[0] and 'cupy-cuda13x' in lines[0]
    assert '--device cpu' in lines[0] and not (tmp_path / 'out' / 'config.json').exists()


def test_pure_nccl_without_nccl(tmp_path, lists, fake_cupy):
    proc = subprocess.run([sys.executable, SCRIPT, '--synthetic', '--device', 'gpu', '--out',
                           str(tmp_path / 'out')], env=fake_cupy, capture_output=True,
                          text=True, timeout=120, cwd=str(tmp_path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        'train_imagenet.py: error: --communicator pure_nccl: NCCL is not available')
    assert 'nvidia-nccl-cu' in lines[0]


def test_float32_allreduce_is_chainermns_own_naive(tmp_path, lists):
    from chainer_ext.job import checks as startup_checks
    from chainer_ext.job import train_flags
    args = train_flags.parse_args(
        ['--train', lists[0], '--val', lists[1], '--allreduce-dtype', 'float32'])
    assert args.communicator == 'naive' and not args.gpu
    assert startup_checks.flag_problems(args, min_insize=32) == []


def test_missing_and_empty_lists(tmp_path):
    empty = tmp_path / 'empty.txt'
    empty.write_text('')
    proc = _run(tmp_path, '--train', tmp_path / 'missing.txt', '--val', empty,
                '--out', tmp_path / 'out')
    assert proc.returncode == 2
    err = proc.stderr
    assert 'missing.txt: no such file' in err and 'empty.txt: file is empty' in err
    assert len(err.strip().splitlines()) == 2


def test_list_flags_required(tmp_path):
    proc = _run(tmp_path, '--out', tmp_path / 'out')
    assert proc.returncode == 2
    assert '--train is required (or use --demo / --synthetic)' in proc.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason='root can write anywhere')
def test_unwritable_out(tmp_path, lists):
    locked = tmp_path / 'locked'
    locked.mkdir(mode=0o500)
    proc = _run(tmp_path, '--train', lists[0], '--val', lists[1], '--out', locked / 'sub')
    assert proc.returncode == 2 and 'output folder not writable' in proc.stderr


def test_out_is_a_file(tmp_path, lists):
    f = tmp_path / 'file'
    f.write_text('x')
    proc = _run(tmp_path, '--train', lists[0], '--val', lists[1], '--out', f)
    assert proc.returncode == 2 and 'output folder not writable' in proc.stderr


def test_only_rank_zero_prints(tmp_path, lists):
    env = dict(os.environ, OMPI_COMM_WORLD_RANK='5')
    proc = subprocess.run([sys.executable, SCRIPT, '--batchsize', '0', '--train', lists[0],
                           '--val', lists[1]], capture_output=True, text=True,
                          timeout=120, cwd=str(tmp_path), env=env)
    assert proc.returncode == 2 and proc.stderr == ''


def test_importing_the_trainer_does_not_start_mpi():
    """MPI must start after the loaders' forkserver: importing it earlier crashes or
    hangs the forked loaders (Open MPI forbids fork after MPI_Init)."""
    code = ('import sys, train_imagenet, chainer_ext.communicators; '
            'print("mpi4py.MPI" in sys.modules)')
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == 'False', out.stderr


def test_a_problem_of_another_rank_alone_is_still_said(monkeypatch, capsys):
    from chainer_ext.job import input_error
    monkeypatch.setenv('OMPI_COMM_WORLD_RANK', '5')
    status = input_error.report_before_mpi(input_error.InputError(['--device gpu: no GPU'], 2),
                                      'train_imagenet.py', grace=0)
    assert status == 2
    assert capsys.readouterr().err == 'train_imagenet.py: error: rank 5: --device gpu: no GPU\n'
