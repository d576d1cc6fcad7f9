"""chainer_ext.gpu_check: its checks on CPU arrays, and what it says without a GPU."""
import os
import subprocess
import sys
import types

import numpy
import pytest

from chainer_ext import cuda_env, gpu_check
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


def _fake_cupy(count=None, error=None, nccl=False):
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
    return types.SimpleNamespace(__version__='14.2.0', cuda=cuda)


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


def test_missing_nccl_and_cudnn_are_named_with_their_fallback(monkeypatch):
    cupy = _fake_cupy(count=2)
    monkeypatch.setitem(sys.modules, 'cupy', cupy)
    monkeypatch.setitem(sys.modules, 'cupy.cuda', cupy.cuda)
    info = cuda_env.probe(cupy)
    assert info['gpus'] == 2 and info['names'] == ['NVIDIA H200'] * 2
    assert info['nccl'] is None and 'nvidia-nccl-cu' in info['nccl_missing']
    assert info['cudnn'] is None and 'im2col' in info['cudnn_missing']
    cupy = _fake_cupy(count=1, nccl=True)
    monkeypatch.setitem(sys.modules, 'cupy', cupy)
    monkeypatch.setitem(sys.modules, 'cupy.cuda', cupy.cuda)
    assert cuda_env.probe(cupy)['nccl'] == 22800


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float16])
def test_update_rule_check_runs_on_cpu_arrays(dtype):
    res = gpu_check.check_update_rule(dtype, device='@numpy', steps=3)
    assert res['max_relative_error'] and all(
        v == 0 for v in res['max_relative_error'].values())


def test_update_rule_check_catches_a_wrong_kernel(monkeypatch):
    """The check must fail when the device path computes something else."""
    from chainer_ext.optimizers import rmsprop_warmup
    real = rmsprop_warmup.update_coefficients
    optimizers = []

    def skewed(hyperparam, dtype):
        coef = list(real(hyperparam, dtype))
        if not optimizers:
            optimizers.append(hyperparam.parent)  # the reference (CPU) side updates first
        if hyperparam.parent is not optimizers[0]:
            coef[0] = coef[0] * (1 + 1e-3)  # eta off by 0.1 % on the checked side
        return tuple(coef)

    monkeypatch.setattr(rmsprop_warmup, 'update_coefficients', skewed)
    with pytest.raises(AssertionError):
        gpu_check.check_update_rule(numpy.float32, device='@numpy', steps=3)


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float16])
def test_lars_check_runs_on_cpu_arrays(dtype):
    res = gpu_check.check_lars_rule(dtype, device='@numpy', steps=3)
    assert res['max_relative_error'] and all(
        v == 0 for v in res['max_relative_error'].values())


def test_lars_check_catches_a_wrong_kernel(monkeypatch):
    """The check must fail when the device path computes something else."""
    from chainer_ext.optimizers import lars
    real = lars.local_rate
    calls = []

    def skewed(w_norm, g_norm, eta, weight_decay):
        calls.append(1)
        # the reference (CPU) side updates its 4 arrays first in every step
        return real(w_norm, g_norm, eta, weight_decay) * (
            1 if (len(calls) - 1) % 8 < 4 else 1 + 1e-3)

    monkeypatch.setattr(lars, 'local_rate', skewed)
    with pytest.raises(AssertionError):
        gpu_check.check_lars_rule(numpy.float32, device='@numpy', steps=3)


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
