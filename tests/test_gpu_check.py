"""chainer_ext.gpu_check: its checks on CPU arrays, and what it says without a GPU."""
import os
import subprocess
import sys
import textwrap
import types

import numpy
import pytest

from chainer_ext.machine import cuda_env, gpu_check
from chainer_ext.communicators import create_communicator

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _has_gpu():
    try:
        cuda_env.probe()
        return True
    except cuda_env.NoGPU:
        return False


@pytest.mark.skipif(_has_gpu(), reason='a GPU is visible: gpu_check would run')
def test_without_a_gpu_one_line_and_exit_0(tmp_path):
    proc = subprocess.run([sys.executable, '-m', 'chainer_ext.gpu_check', '--out',
                           str(tmp_path / 'gc')], cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout
    assert lines[0].startswith('gpu_check: ') and 'nothing was checked' in lines[0]
    assert not (tmp_path / 'gc').exists()


class _RuntimeError(Exception):
    pass


def _fake_cupy(count=None, error=None, nccl=False, cudnn=False, version='14.2.0'):
    """A CuPy stand-in: a module that is not importable by name, so everything probe
    reports must come from this object."""
    runtime = types.SimpleNamespace(CUDARuntimeError=_RuntimeError)

    def get_device_count():
        if error:
            raise _RuntimeError(error)
        return count

    runtime.getDeviceCount = get_device_count
    runtime.driverGetVersion = lambda: 13000
    runtime.runtimeGetVersion = lambda: 13000
    runtime.getDeviceProperties = lambda i: {'name': b'NVIDIA H200'}
    cuda = types.SimpleNamespace(runtime=runtime)
    if nccl:
        cuda.nccl = types.SimpleNamespace(get_version=lambda: 22800)
    if cudnn:
        cuda.cudnn = types.SimpleNamespace(getVersion=lambda: 8907)
    cupy = types.ModuleType('fake_cupy_for_tests')
    cupy.__version__, cupy.cuda = version, cuda
    return cupy


def test_driver_mismatch_is_fatal_and_names_the_fix(monkeypatch, capsys):
    cupy = _fake_cupy(error='cudaErrorInsufficientDriver: CUDA driver version is '
                            'insufficient for CUDA runtime version')
    with pytest.raises(cuda_env.NoGPU) as info:
        cuda_env.probe(cupy)
    assert info.value.fatal
    assert 'cupy-cuda12x' in str(info.value) and 'cupy-cuda13x' in str(info.value)
    real_probe = gpu_check.probe
    monkeypatch.setattr(gpu_check, 'probe', lambda: real_probe(cupy))
    assert gpu_check.main(['--out', 'unused']) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and 'InsufficientDriver' in out[0] and 'fix this first' in out[0]


def test_no_device_is_not_fatal():
    with pytest.raises(cuda_env.NoGPU) as info:
        cuda_env.probe(_fake_cupy(error='cudaErrorNoDevice: no CUDA-capable device is '
                                         'detected'))
    assert not info.value.fatal
    with pytest.raises(cuda_env.NoGPU):
        cuda_env.probe(_fake_cupy(count=0))


def test_missing_nccl_and_cudnn_are_named_with_their_fix():
    info = cuda_env.probe(_fake_cupy(count=2))
    assert info['gpus'] == 2 and info['names'] == ['NVIDIA H200'] * 2
    assert info['nccl'] is None and 'nvidia-nccl-cu' in info['nccl_missing']
    assert info['cudnn'] is None and 'im2col' in info['cudnn_missing']
    assert 'CuPy 14 and later have no cuDNN' in info['cudnn_missing']
    info = cuda_env.probe(_fake_cupy(count=1, version='13.6.0'))
    assert 'nvidia-cudnn-cu12==8.9.7.29' in info['cudnn_missing']


def test_nccl_and_cudnn_versions_come_from_the_cupy_probed(monkeypatch):
    info = cuda_env.probe(_fake_cupy(count=1, nccl=True, cudnn=True, version='13.6.0'))
    assert info['nccl'] == 22800 and 'nccl_missing' not in info
    assert info['cudnn'] == '8.9.7' and 'cudnn_missing' not in info
    monkeypatch.setenv('CHAINER_CUDNN', '0')
    info = cuda_env.probe(_fake_cupy(count=1, nccl=True, cudnn=True, version='13.6.0'))
    assert info['cudnn'] is None and 'CHAINER_CUDNN=0' in info['cudnn_missing']


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float16])
def test_update_rule_check_measures_against_float64(dtype):
    """On CPU arrays the checked side computes in float32 and the reference in float64:
    the check must see their rounding differences, all within its tolerance."""
    res = gpu_check.check_update_rule(dtype, device='@numpy', steps=3)
    errors = res['max_error_over_tolerance']
    assert set(errors) == {'ms', 'delta', 'param' if dtype == numpy.float32 else 'fp32 master'}
    assert all(0 < e <= 1 for e in errors.values()), errors


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float16])
def test_update_rule_check_catches_a_wrong_kernel(monkeypatch, dtype):
    """The check must fail when the checked side computes something else."""
    from chainer_ext.optimizers import rmsprop_warmup
    real = rmsprop_warmup.update_coefficients

    def skewed(hyperparam, dtype):
        coef = list(real(hyperparam, dtype))
        if numpy.dtype(dtype) != numpy.float64:  # the checked side, not the reference
            coef[0] = coef[0] * (1 + 1e-3)       # eta off by 0.1 %
        return tuple(coef)

    monkeypatch.setattr(rmsprop_warmup, 'update_coefficients', skewed)
    with pytest.raises(AssertionError):
        gpu_check.check_update_rule(dtype, device='@numpy', steps=3)


# Runs under python -O, where assert statements are removed: the all-reduce returns
# gradients 1 % off, which the check must still refuse.
_SKEWED_ALLREDUCE = textwrap.dedent("""
    import sys
    sys.path.insert(0, {repo!r})
    import chainer_ext
    from chainer_ext.machine import gpu_check
    from chainer_ext.communicators import create_communicator
    assert False, 'assert statements run: this must be python -O'
""") + textwrap.dedent("""
    comm = create_communicator('naive', allreduce_grad_dtype='float16')
    real = comm.multi_node_mean_grad

    def skewed(model, *args, **kwargs):
        real(model, *args, **kwargs)
        for p in model.params():
            p.grad *= 1.01

    comm.multi_node_mean_grad = skewed
    try:
        gpu_check.check_allreduce(comm, device='@numpy', arch='resnet18', reps=1)
        print('NOT CAUGHT')
    except gpu_check.CheckFailed as e:
        print('CAUGHT', e)
""")


def test_checks_do_not_depend_on_assert_statements():
    proc = subprocess.run([sys.executable, '-O', '-c', _SKEWED_ALLREDUCE.format(repo=REPO)],
                          cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout
    assert 'CAUGHT all-reduce error above the float16 bound' in proc.stdout, proc.stdout


class _RecordingCupyDevice(object):
    """Stands in for ``cupy.cuda.Device``: records ``synchronize`` calls."""

    def __init__(self, log):
        self.id, self.log = 0, log

    def synchronize(self):
        self.log.append('cudaDeviceSynchronize')


def test_sync_waits_for_a_chainer_gpu_device():
    """Chainer 7.8.1's GpuDevice has no synchronize(): _sync must reach CuPy's device."""
    import chainer
    log = []
    device = object.__new__(chainer.backend.GpuDevice)  # without CuPy: no __init__
    device.device = _RecordingCupyDevice(log)
    gpu_check._sync(device)
    assert log == ['cudaDeviceSynchronize']
    gpu_check._sync(chainer.get_device('@numpy'))  # CPUs: nothing to wait for
    assert log == ['cudaDeviceSynchronize']


class _Timeline(object):
    """Records work queued on a device, synchronizations and clock reads; a clock read
    while work is queued and not waited for is a timing of launches."""

    def __init__(self):
        self.events, self.pending = [], False

    def work(self):
        self.events.append('work')
        self.pending = True

    def sync(self, device):
        self.events.append('sync')
        self.pending = False

    def clock(self):
        assert not self.pending, 'clock read with unsynchronized work: {}'.format(
            self.events[-6:])
        self.events.append('clock')
        return float(len(self.events))


def _record_timeline(monkeypatch):
    line = _Timeline()
    monkeypatch.setattr(gpu_check, '_sync', line.sync)
    monkeypatch.setattr(gpu_check, 'time', types.SimpleNamespace(perf_counter=line.clock))
    return line


def test_allreduce_timing_is_bracketed_by_synchronizations(monkeypatch):
    line = _record_timeline(monkeypatch)
    comm = create_communicator('naive', allreduce_grad_dtype='float16')
    real = comm.multi_node_mean_grad

    def mean_grad(model, *args, **kwargs):
        real(model, *args, **kwargs)
        line.work()

    comm.multi_node_mean_grad = mean_grad
    gpu_check.check_allreduce(comm, device='@numpy', arch='resnet18', reps=3)
    assert line.events.count('clock') == 6 and line.events.count('work') == 4


def test_training_timing_is_bracketed_by_synchronizations(monkeypatch):
    from chainer_ext.optimizers import RMSpropWarmup
    line = _record_timeline(monkeypatch)
    real = RMSpropWarmup.update

    def update(self, *args, **kwargs):
        real(self, *args, **kwargs)
        line.work()

    monkeypatch.setattr(RMSpropWarmup, 'update', update)
    res = gpu_check.bench_resnet50('never', device='@numpy', arch='resnet18', batchsize=2,
                                   insize=32, warmup=2, iterations=2)
    assert line.events.count('clock') == 2 and line.events.count('work') == 4
    assert res['images_per_s'] > 0


class _Comm(object):
    def __init__(self, rank, intra_rank):
        self.rank, self.intra_rank = rank, intra_rank


@pytest.mark.parametrize('rank, intra_rank', [(0, 0), (1, 1), (2, 0), (3, 1)])
def test_each_rank_checks_the_allreduce_on_its_own_gpu(monkeypatch, tmp_path, rank,
                                                       intra_rank):
    """Under mpiexec (2 nodes x 2 GPUs here) rank r works on GPU intra_rank: the device
    made current and the one the model is built on."""
    import chainer
    from chainer_ext import communicators
    used, checked = [], []
    monkeypatch.setattr(communicators, 'create_communicator',
                        lambda *a, **k: _Comm(rank, intra_rank))
    monkeypatch.setattr(chainer, 'get_device', lambda spec: types.SimpleNamespace(
        use=lambda: used.append(spec)))
    monkeypatch.setattr(gpu_check, 'check_allreduce',
                        lambda comm, device=None: checked.append(device) or {'ok': 1})
    path = tmp_path / 'allreduce.json'
    assert gpu_check._allreduce_only(str(path)) == 0
    assert used == checked == ['@cupy:{}'.format(intra_rank)]
    assert path.exists() == (rank == 0)
    assert gpu_check.rank_device(_Comm(rank, intra_rank)) == '@cupy:{}'.format(intra_rank)


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float16])
def test_lars_check_measures_against_float64(dtype):
    """As for RMSpropWarmup: the float32 side's rounding differences are seen, and within
    the tolerance (the all-zero array included)."""
    res = gpu_check.check_lars_rule(dtype, device='@numpy', steps=3)
    errors = res['max_error_over_tolerance']
    assert set(errors) == {'v', 'param' if dtype == numpy.float32 else 'fp32 master'}
    assert all(0 < e <= 1 for e in errors.values()), errors


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float16])
def test_lars_check_catches_a_wrong_kernel(monkeypatch, dtype):
    """The check must fail when the checked side's local rate is 0.1 % off."""
    from chainer_ext.optimizers import lars
    real = lars.local_rate
    calls = []

    def skewed(w_norm, g_norm, eta, weight_decay):
        calls.append(1)
        # every step updates the reference's 4 arrays first, then the checked side's 4
        checked = (len(calls) - 1) % 8 >= 4
        return real(w_norm, g_norm, eta, weight_decay) * (1 + 1e-3 if checked else 1)

    monkeypatch.setattr(lars, 'local_rate', skewed)
    with pytest.raises(AssertionError):
        gpu_check.check_lars_rule(dtype, device='@numpy', steps=3)


def test_single_rank_checks_on_cpu(tmp_path):
    comm = create_communicator('naive', allreduce_grad_dtype='float16')
    snap = gpu_check.check_snapshot_broadcast(comm, str(tmp_path), device='@numpy')
    assert snap == {'parameters_compared': 2, 'ranks': 1}
    res = gpu_check.bench_resnet50('never', device='@numpy', arch='resnet18', batchsize=2,
                                   insize=32, warmup=1, iterations=1)
    assert res['images_per_s'] > 0 and res['arch'] == 'resnet18'


@pytest.mark.parametrize('n', [2, 3])
def test_allreduce_and_snapshot_checks_under_mpi(mpirun, n):
    proc = mpirun(n, 'gpu_check_cpu.py', timeout=300)
    assert proc.stdout.count(' ok ') == n


def test_torch_peer_on_cpu_where_pytorch_is_installed():
    pytest.importorskip('torchvision')
    res = gpu_check.bench_torch_resnet50(False, device='cpu', batchsize=2, insize=32,
                                         warmup=1, iterations=1)
    assert res['images_per_s'] > 0 and res['mixed_precision'] is False
