"""Check and measure the paper's GPU path on one machine (Section 3, Appendix A.1).

    python -m chainer_ext.gpu_check [--out DIR]

The CuPy kernels of ``RMSpropWarmup`` and ``LARS`` against the same updates in float64 on
the CPU (float32 and float16 parameters), the snapshot broadcast, ChainerMN's ``pure_nccl`` float16
all-reduce (one rank, then every GPU of the machine under ``mpiexec``),
ResNet-50 training images/s with and without cuDNN (and torchvision's, as the
peer, where PyTorch is installed), and a 20-iteration
``train_imagenet.py --synthetic`` run.  Writes ``DIR/gpu_check.json``; exit 1
when a check fails.  Without a usable GPU it prints one line and exits 0.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

import numpy

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
from chainer_ext.machine.cuda_env import NoGPU, probe

RTOL = 1e-4
ATOL = 1e-6


def _host(array):
    import chainer
    return numpy.asarray(chainer.backend.CpuDevice().send(array))


class CheckFailed(AssertionError):
    """A check found a wrong result (raised explicitly: ``python -O`` keeps it)."""


def _require(condition, message):
    if not condition:
        raise CheckFailed(message)


def _sync(device):
    """Wait until ``device`` has run all the work queued on it, on every stream (NCCL's
    all-reduce and CuPy's kernels run asynchronously), so that a clock read next times
    the work and not its launch.  CPU devices compute before returning: nothing to wait for."""
    import chainer
    if isinstance(device, chainer.backend.GpuDevice):
        device.device.synchronize()  # the cupy.cuda.Device: cudaDeviceSynchronize


def rank_device(comm):
    """This rank's GPU, ``@cupy:<intra-node rank>``: one rank per GPU, as ``train_imagenet.py``
    chooses it."""
    return '@cupy:{}'.format(comm.intra_rank)


def _link(dtype, device, seed=0):
    import chainer
    rng = numpy.random.RandomState(seed)
    link = chainer.Link()
    with link.init_scope():
        for i, shape in enumerate([(64, 3, 3, 3), (1000,), (7,), (256, 64)]):
            setattr(link, 'p{}'.format(i), chainer.Parameter(
                rng.normal(0, 0.1, shape).astype(dtype)))
    return link.to_device(device)


def _against_float64(set_up, state_keys, schedule, dtype, device, steps, seed):
    """One optimizer's updates of ``dtype`` parameters on ``device`` against the same
    updates in float64 on the CPU.  ``set_up(link)`` returns the optimizer set up on
    ``link``; ``schedule(optimizer, step)`` sets its hyperparameters before every step.
    float16 parameters go through their float32 master copies, of which they must be the
    float16 rounding.  Reports the largest error as a fraction of the tolerance
    (``ATOL + RTOL * |x|``)."""
    links = {'reference': _link(dtype, '@numpy'), 'device': _link(dtype, device)}
    for p in links['reference'].params():  # the same starting values, in float64
        p.array = p.array.astype(numpy.float64)
    opts = {k: set_up(link) for k, link in links.items()}
    rng = numpy.random.RandomState(seed)
    for step in range(steps):
        grads = {n: rng.normal(0, 1, p.shape).astype(dtype)
                 for n, p in links['reference'].namedparams()}
        for k, link in links.items():
            schedule(opts[k], step)
            for n, p in link.namedparams():
                p.grad = p.device.send(grads[n].astype(p.dtype))
            opts[k].update()
    worst = {}
    for (n, r), (_, d) in zip(sorted(links['reference'].namedparams()),
                              sorted(links['device'].namedparams())):
        pairs = [(key, r.update_rule.state[key], d.update_rule.state[key])
                 for key in state_keys]
        if dtype == numpy.float16:
            master = _host(d.update_rule._fp32_param.array)
            pairs.append(('fp32 master', r.array, master))
            rounded = master.astype(numpy.float16)
            differ = int((_host(d.array) != rounded).sum())
            _require(differ == 0, '{}: {} float16 parameters are not the float16 rounding of '
                     'their float32 master copies'.format(n, differ))
        else:
            pairs.append(('param', r.array, d.array))
        for what, ref, dev in pairs:
            dev = _host(dev).astype(numpy.float64)
            numpy.testing.assert_allclose(dev, ref, rtol=RTOL, atol=ATOL,
                                          err_msg='{} {}'.format(n, what))
            used = numpy.abs(dev - ref) / (ATOL + RTOL * numpy.abs(ref))
            worst[what] = max(worst.get(what, 0.0), float(used.max()))
    return {'steps': steps, 'max_error_over_tolerance': worst, 'rtol': RTOL, 'atol': ATOL,
            'reference': 'float64 on the CPU'}


def check_update_rule(dtype, device='@cupy:0', steps=10, seed=1):
    """``RMSpropWarmup`` on ``device`` against float64 on the CPU, with alpha_SGD and lr
    changing every step (:func:`_against_float64`)."""
    from chainer_ext.optimizers import RMSpropWarmup

    def schedule(opt, step):
        opt.alpha_sgd = step / (steps - 1)
        opt.lr = 0.5 * (1 + step)
    def set_up(link):
        opt = RMSpropWarmup(lr=0.5)
        opt.setup(link)
        return opt
    return _against_float64(set_up, ('ms', 'delta'), schedule, dtype, device, steps, seed)


def check_lars_rule(dtype, device='@cupy:0', steps=10, seed=1):
    """``LARS`` on ``device`` against float64 on the CPU, gamma changing every step, weight
    decay on every array and one all-zero array (local rate 1) (:func:`_against_float64`)."""
    from chainer_ext.optimizers import LARS

    def set_up(link):
        link.p2.array[...] = 0
        opt = LARS(lr=1.0)
        opt.setup(link)
        for p in link.params():  # LARS decays only conv/linear W by itself
            p.update_rule.hyperparam.weight_decay = 1e-4
        return opt

    def schedule(opt, step):
        opt.lr = 10.0 * (1 - step / steps) ** 2
    return _against_float64(set_up, ('v',), schedule, dtype, device, steps, seed)


def check_snapshot_broadcast(comm, out, device=None):
    """Write a snapshot of a model and its optimizer state on ``device`` (default: this
    rank's GPU), load it into a fresh one, broadcast from rank 0, and compare everything
    with the original."""
    import chainer
    import chainer.links as L
    from chainer import training
    from chainer_ext.extensions import multi_node_snapshot as snapshots
    from chainer_ext.optimizers import RMSpropWarmup

    def make():
        model = L.Classifier(L.Linear(8, 4)).to_device(device)
        opt = RMSpropWarmup(lr=0.1)
        opt.setup(model)
        x = numpy.random.RandomState(0).normal(size=(16, 8)).astype(numpy.float32)
        t = (numpy.arange(16) % 4).astype(numpy.int32)
        it = chainer.iterators.SerialIterator(list(zip(x, t)), 16)
        updater = training.StandardUpdater(it, opt, device=model.device)
        return training.Trainer(updater, (1, 'iteration'), out=out), model, opt

    device = device or rank_device(comm)
    trainer, model, _ = make()
    trainer.run()
    snapshots.MultiNodeSnapshot(comm, out).write(trainer, 'gpu-check')
    path = os.path.join(out, 'snapshots', 'gpu-check')
    trainer2, model2, _ = make()
    snapshots.load_snapshot(path, trainer2, comm)
    snapshots.broadcast_shared(trainer2, comm)
    originals = comm.bcast_obj(  # what rank 0 wrote, for every rank to compare with
        {n: (_host(p.array), {k: _host(v) for k, v in p.update_rule.state.items()})
         for n, p in model.namedparams()} if comm.rank == 0 else None)
    compared = 0
    for n, q in sorted(model2.namedparams()):
        _require(q.device == model.device, '{} moved from {} to {}'.format(
            n, model.device, q.device))
        array, state = originals[n]
        numpy.testing.assert_array_equal(_host(q.array), array, err_msg=n)
        for key, value in state.items():
            numpy.testing.assert_array_equal(_host(q.update_rule.state[key]), value,
                                             err_msg=n + ' ' + key)
        compared += 1
    return {'parameters_compared': compared, 'ranks': comm.size}


def check_allreduce(comm, device=None, arch='resnet50', reps=10):
    """The float16 gradient mean of ``comm`` against float64 on the host, and its time
    on the network's gradients (ResNet-50: 25.6 M values), on ``device`` (default: this
    rank's GPU)."""
    from models import archs
    device = device or rank_device(comm)
    model = archs[arch](n_class=1000)
    model(numpy.zeros((2, 3, 32, 32), numpy.float32))
    model.to_device(device)
    rng = numpy.random.RandomState(100 + comm.rank)
    grads = {}
    for name, p in sorted(model.namedparams()):
        g = rng.normal(0, 1e-2, p.shape).astype(numpy.float32)
        grads[name] = g
        p.grad = p.device.send(g.copy())  # the all-reduce writes in place
    comm.multi_node_mean_grad(model)
    mine = numpy.concatenate([grads[n].ravel() for n in sorted(grads)])
    halves = mine.astype(numpy.float16).astype(numpy.float64)
    total = numpy.zeros_like(halves)
    magnitude = numpy.zeros_like(halves)
    for r in range(comm.size):  # rank by rank, to keep host memory at two copies
        theirs = comm.mpi_comm.bcast(halves if comm.rank == r else None, root=r)
        total += theirs
        magnitude += numpy.abs(theirs)
    got = numpy.concatenate([_host(p.grad).ravel()
                             for _, p in sorted(model.namedparams())]).astype(numpy.float64)
    exact = total / comm.size
    # each of at most `size` float16 roundings of a partial sum, then the division
    bound = (comm.size + 1) * 2.0 ** -11 * magnitude / comm.size + 2.0 ** -24
    err = numpy.abs(got - exact)
    _require(numpy.all(err <= bound), 'all-reduce error above the float16 bound at {} values'
             .format(int((err > bound).sum())))
    times = []
    for _ in range(reps):
        _sync(model.device)
        comm.mpi_comm.Barrier()
        t0 = time.perf_counter()
        comm.multi_node_mean_grad(model)
        _sync(model.device)
        times.append(time.perf_counter() - t0)
    return {'ranks': comm.size, 'values': int(mine.size), 'bytes_on_wire': int(mine.size) * 2,
            'max_error_over_bound': float((err / bound).max()),
            'median_ms': 1e3 * float(numpy.median(times))}


def bench_resnet50(use_cudnn, device='@cupy:0', arch='resnet50', batchsize=32, insize=224,
                   warmup=3, iterations=10):
    """Forward + backward + RMSpropWarmup update with weight decay, images/s."""
    import chainer
    import chainer.functions as F
    from chainer_ext.optimizers import RMSpropWarmup
    from chainer_ext.optimizer_hooks import add_weight_decay
    from models import archs
    model = archs[arch](n_class=1000)
    rng = numpy.random.RandomState(0)
    x = rng.normal(size=(batchsize, 3, insize, insize)).astype(numpy.float32)
    t = rng.randint(0, 1000, batchsize).astype(numpy.int32)
    with chainer.using_config('use_cudnn', use_cudnn):
        model(x[:2])
        model.to_device(device)
        opt = RMSpropWarmup(lr=0.1)
        opt.setup(model)
        add_weight_decay(model)
        xg, tg = model.device.send(x), model.device.send(t)
        for i in range(warmup + iterations):
            if i == warmup:
                _sync(model.device)
                t0 = time.perf_counter()
            loss = F.softmax_cross_entropy(model(xg), tg)
            model.cleargrads()
            loss.backward()
            opt.update()
        _sync(model.device)
        elapsed = time.perf_counter() - t0
    return {'arch': arch, 'use_cudnn': use_cudnn, 'batchsize': batchsize, 'insize': insize,
            'iterations': iterations, 'images_per_s': batchsize * iterations / elapsed}


def bench_torch_resnet50(amp, device='cuda', batchsize=32, insize=224, warmup=3,
                         iterations=10):
    """The peer: torchvision's ResNet-50 trained with SGD on the same batch, images/s
    (float32, or autocast float16 mixed precision with a gradient scaler)."""
    import torch
    import torchvision
    torch.manual_seed(0)
    model = torchvision.models.resnet50().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    scaler = torch.amp.GradScaler(device, enabled=amp)
    x = torch.randn(batchsize, 3, insize, insize, device=device)
    t = torch.randint(0, 1000, (batchsize,), device=device)
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
    for i in range(warmup + iterations):
        if i == warmup:
            sync()
            t0 = time.perf_counter()
        with torch.autocast(device, dtype=torch.float16, enabled=amp):
            loss = torch.nn.functional.cross_entropy(model(x), t)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    sync()
    elapsed = time.perf_counter() - t0
    return {'torch': torch.__version__, 'torchvision': torchvision.__version__,
            'mixed_precision': amp, 'batchsize': batchsize, 'insize': insize,
            'iterations': iterations, 'images_per_s': batchsize * iterations / elapsed}


def run_train_synthetic(out, iterations=20, timeout=600):
    """``train_imagenet.py --synthetic`` on this GPU for a few iterations."""
    cmd = [sys.executable, '-m', 'train_imagenet', '--synthetic', '--device', 'gpu',
           '--max-iterations', str(iterations), '--synthetic-size', str(32 * iterations * 2),
           '--no-validation', '--no-plots', '--log-interval', str(iterations // 2),
           '--loaderjob', '0', '--out', out]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError('{} exited {}:\n{}'.format(' '.join(cmd), proc.returncode,
                                                      proc.stdout[-4000:]))
    with open(os.path.join(out, 'log')) as f:
        log = json.load(f)
    with open(os.path.join(out, 'config.json')) as f:
        config = json.load(f)
    return {'command': ' '.join(cmd[1:]), 'seconds': time.perf_counter() - t0,
            'last_log': log[-1] if log else None, 'cudnn_used': config.get('cudnn_used'),
            'cudnn': config.get('versions', {}).get('cudnn'),
            'cudnn_library': config.get('versions', {}).get('cudnn_library')}


def _step(report, name, fn, *args):
    t0 = time.perf_counter()
    try:
        result = dict(status='ok', **fn(*args))
    except Exception as e:
        result = dict(status='failed', error='{}: {}'.format(type(e).__name__, e),
                      traceback=traceback.format_exc())
    result['seconds'] = round(time.perf_counter() - t0, 3)
    report['checks'][name] = result
    shown = {k: v for k, v in result.items() if k not in ('traceback', 'status')}
    print('gpu_check: {:<28} {:<6} {}'.format(name, result['status'], json.dumps(shown)),
          flush=True)


def _multi_gpu_allreduce(gpus, out):
    """The all-reduce check on every GPU, one rank each, when mpiexec is at hand."""
    from chainer_ext.job.mpiexec import mpiexec_command, mpi_env
    path = os.path.join(out, 'allreduce_{}gpus.json'.format(gpus))
    cmd = mpiexec_command(gpus, [sys.executable, '-m', 'chainer_ext.gpu_check',
                                 '--allreduce-only', path])
    proc = subprocess.run(cmd, env=mpi_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError('exited {}:\n{}'.format(proc.returncode, proc.stdout[-4000:]))
    with open(path) as f:
        return json.load(f)


def _allreduce_only(path):
    """Worker of :func:`_multi_gpu_allreduce`: one rank per GPU of this node."""
    import chainer
    from chainer_ext.communicators import create_communicator
    comm = create_communicator('pure_nccl', allreduce_grad_dtype='float16')
    device = rank_device(comm)
    chainer.get_device(device).use()
    result = check_allreduce(comm, device)
    if comm.rank == 0:
        with open(path, 'w') as f:
            json.dump(result, f)
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m chainer_ext.gpu_check', description=__doc__
                                .split('\n\n')[0])
    p.add_argument('--out', default=os.path.join('result', 'gpu_check'),
                   help='folder for gpu_check.json and the training run')
    p.add_argument('--skip-train', action='store_true',
                   help='skip the train_imagenet.py --synthetic run')
    p.add_argument('--allreduce-only', metavar='JSON', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.allreduce_only:
        return _allreduce_only(args.allreduce_only)
    try:
        machine = probe()
    except NoGPU as e:
        print('gpu_check: {}; {}'.format(
            e, 'nothing was checked' if not e.fatal else 'fix this first'), flush=True)
        return 1 if e.fatal else 0
    import chainer
    os.makedirs(args.out, exist_ok=True)
    library = machine.get('cudnn_library') or {}
    print('gpu_check: {} x {}, CuPy {}, driver {}, runtime {}, NCCL {}, cuDNN {}{}'.format(
        machine['gpus'], machine['names'][0], machine['cupy'], machine['driver'],
        machine['runtime'], machine['nccl'], machine['cudnn'],
        ' ({}: {})'.format(library['source'], library['path']) if library.get('path') else ''),
        flush=True)
    for key in ('nccl_missing', 'cudnn_missing'):
        if key in machine:
            print('gpu_check: ' + machine[key], flush=True)
    report = {'machine': machine, 'checks': {}}
    chainer.backends.cuda.get_device_from_id(0).use()
    _step(report, 'update_rule_float32', check_update_rule, numpy.float32)
    _step(report, 'update_rule_float16', check_update_rule, numpy.float16)
    _step(report, 'lars_rule_float32', check_lars_rule, numpy.float32)
    _step(report, 'lars_rule_float16', check_lars_rule, numpy.float16)
    comm = None
    if machine['nccl'] is not None:
        from chainer_ext.communicators import create_communicator
        comm = create_communicator('pure_nccl', allreduce_grad_dtype='float16')
        _step(report, 'snapshot_broadcast', check_snapshot_broadcast, comm,
              tempfile.mkdtemp(prefix='snapshots-', dir=args.out))
        _step(report, 'allreduce_fp16_1rank', check_allreduce, comm)
        if machine['gpus'] > 1:
            _step(report, 'allreduce_fp16_{}ranks'.format(machine['gpus']),
                  _multi_gpu_allreduce, machine['gpus'], args.out)
    for use_cudnn in (('always', 'never') if machine['cudnn'] else ('never',)):
        _step(report, 'resnet50_cudnn_' + use_cudnn, bench_resnet50, use_cudnn)
    try:
        import torch
        import torchvision  # noqa: F401  (present or not is all it asks)
        peer = torch.cuda.is_available()
    except ImportError:
        peer = False
    if peer:
        for amp in (False, True):
            _step(report, 'peer_torch_resnet50_' + ('amp' if amp else 'fp32'),
                  bench_torch_resnet50, amp)
    else:
        print('gpu_check: PyTorch/torchvision with CUDA not installed: no peer figures',
              flush=True)
    if not args.skip_train:
        _step(report, 'train_imagenet_synthetic', run_train_synthetic,
              os.path.join(args.out, 'train'))
    path = os.path.join(args.out, 'gpu_check.json')
    with open(path, 'w') as f:
        json.dump(report, f, indent=1, sort_keys=True)
    failed = [k for k, v in report['checks'].items() if v['status'] != 'ok']
    print('gpu_check: {} of {} checks passed; wrote {}'.format(
        len(report['checks']) - len(failed), len(report['checks']), path), flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
