"""Helpers of bench_iteration.py, one per sub-command.

``baseline``  (run under ``mpiexec -n N``)
    ChainerMN's own ImageNet example (``examples/chainermn/imagenet/
    train_imagenet.py`` of the Chainer repository, v7) wired on the CPU with
    this project's synthetic data: ``chainermn.create_communicator('naive')``
    (float32 all-reduce), ``chainermn.create_multi_node_optimizer(
    MomentumSGD(lr=0.01, momentum=0.9), comm)``, ``StandardUpdater``, the
    multi-node checkpointer, and on rank 0 ``DumpGraph``, ``LogReport``,
    ``observe_lr``, ``PrintReport`` and ``ProgressBar`` -- with two changes a
    throughput run needs: the LogReport/observe_lr/PrintReport trigger is every
    iteration (the example's ``--test`` mode logs every 10) and the run stops
    after ``--max-iterations``.  The model is ``L.Classifier`` of the same
    ``models.ResNet50`` class that ``train_imagenet.py`` trains, with Chainer's
    batch normalization as is (moving averages).  The data are the same
    :class:`chainer_ext.datasets.synthetic.SyntheticImageDataset` (one seeded N(0, 1)
    generator per example, as with ``train_imagenet.py --synthetic``) split
    with ``chainermn.scatter_dataset(shuffle=True)`` and read through a
    ``SerialIterator`` in-process (``train_imagenet.py --loaderjob 0``).  The
    example's evaluator runs once per epoch; both sides of the benchmark run
    without validation (``train_imagenet.py --no-validation``), so it is left
    out.  Rank 0's ``OUT/log`` has ``elapsed_time`` after every iteration.

``rss-wrap OUTPREFIX -- CMD...``  (one per rank, under ``mpiexec``)
    Runs ``CMD`` as a child and, when it ends, writes ``OUTPREFIX.rank<R>.json``
    with the child's peak resident set size (``ru_maxrss`` of ``os.wait4``:
    the kernel's high-water mark of the child and of any descendants it waited
    for), then exits with the child's status.  This measures
    ``train_imagenet.py`` from outside without touching it, and the baseline
    the same way; the wrapper itself only waits.

``state-check --arch resnet50``  (one process)
    Goal 5's proof that RMSpropWarmup keeps exactly two parameter-sized arrays
    per parameter: prints ``STATE {json}`` (see :func:`state_check`).
"""
import argparse
import gc
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
from chainer_ext.job import mpiexec as mpi_launch


# ---------------------------------------------------------------------------
# baseline: ChainerMN's ImageNet example on synthetic data
# ---------------------------------------------------------------------------

def baseline(argv):
    p = argparse.ArgumentParser(prog='_iteration_worker.py baseline')
    p.add_argument('--arch', default='resnet50')
    p.add_argument('--batchsize', type=int, default=32)
    p.add_argument('--insize', type=int, default=224)
    p.add_argument('--max-iterations', type=int, default=5)
    p.add_argument('--synthetic-size', type=int, default=1281167)
    p.add_argument('--n-class', type=int, default=1000)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--communicator', default='naive')
    p.add_argument('--out', required=True)
    args = p.parse_args(argv)

    import chainer
    import chainer.links as L
    from chainer import training
    from chainer.training import extensions
    import chainermn

    from chainer_ext.datasets.synthetic import SyntheticImageDataset
    from models import archs

    comm = chainermn.create_communicator(args.communicator)   # float32 all-reduce
    device = -1                                                # CPU

    model = L.Classifier(archs[args.arch](n_class=args.n_class))

    if comm.rank == 0:
        train = SyntheticImageDataset(args.synthetic_size, args.insize, args.n_class,
                                      seed=args.seed)
    else:
        train = None
    train = chainermn.scatter_dataset(train, comm, shuffle=True)
    train_iter = chainer.iterators.SerialIterator(train, args.batchsize)

    optimizer = chainermn.create_multi_node_optimizer(
        chainer.optimizers.MomentumSGD(lr=0.01, momentum=0.9), comm)
    optimizer.setup(model)

    updater = training.StandardUpdater(train_iter, optimizer, device=device)
    trainer = training.Trainer(updater, (args.max_iterations, 'iteration'), args.out)

    log_interval = (1, 'iteration')
    checkpointer = chainermn.create_multi_node_checkpointer(
        name='imagenet-example', comm=comm, path=os.path.join(args.out, 'checkpoints'))
    checkpointer.maybe_load(trainer, optimizer)
    trainer.extend(checkpointer, trigger=(1, 'epoch'))
    if comm.rank == 0:
        trainer.extend(extensions.DumpGraph('main/loss'))
        trainer.extend(extensions.LogReport(trigger=log_interval))
        trainer.extend(extensions.observe_lr(), trigger=log_interval)
        trainer.extend(extensions.PrintReport([
            'epoch', 'iteration', 'main/loss', 'validation/main/loss',
            'main/accuracy', 'validation/main/accuracy', 'lr', 'elapsed_time'
        ]), trigger=log_interval)
        trainer.extend(extensions.ProgressBar(update_interval=10))

    trainer.run()
    return 0


# ---------------------------------------------------------------------------
# rss-wrap: peak RSS of one rank, measured from its parent
# ---------------------------------------------------------------------------

def _die_with_parent():
    # Linux: the child gets SIGKILL if this wrapper dies (timeout, MPI abort).
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def rss_wrap(argv):
    if len(argv) < 3 or argv[1] != '--':
        sys.stderr.write('usage: _iteration_worker.py rss-wrap OUTPREFIX -- CMD...\n')
        return 2
    prefix, cmd = argv[0], argv[2:]
    child = subprocess.Popen(cmd, preexec_fn=_die_with_parent)

    def forward(signum, frame):
        try:
            child.send_signal(signum)
        except OSError:
            pass
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    t0 = time.monotonic()
    while True:
        try:
            _, status, usage = os.wait4(child.pid, 0)
            break
        except InterruptedError:
            continue
    child.returncode = os.waitstatus_to_exitcode(status)
    rank = mpi_launch.rank_from_env()
    with open('{}.rank{}.json'.format(prefix, rank), 'w') as f:
        json.dump({'rank': rank, 'maxrss_kb': usage.ru_maxrss,
                   'returncode': child.returncode,
                   'wall_s': time.monotonic() - t0,
                   'user_s': usage.ru_utime, 'sys_s': usage.ru_stime}, f)
    rc = child.returncode
    return rc if rc >= 0 else 128 - rc


# ---------------------------------------------------------------------------
# state-check: RMSpropWarmup keeps exactly two parameter-sized arrays
# ---------------------------------------------------------------------------

def _vm_kb(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    return None


def _malloc_trim():
    try:
        import ctypes
        ctypes.CDLL(None).malloc_trim(0)
    except Exception:
        pass


def _arrays_in(obj, numpy):
    """Names of the ndarray attributes of ``obj`` (shallow, incl. lists/dicts)."""
    found = []
    state = getattr(obj, 'state', None)
    for name, value in vars(obj).items():
        if value is state and state is not None:
            continue  # the update rule's state (checked key by key)
        if isinstance(value, numpy.ndarray):
            found.append(name)
        elif isinstance(value, (list, tuple)):
            found += ['{}[{}]'.format(name, i) for i, v in enumerate(value)
                      if isinstance(v, numpy.ndarray)]
        elif isinstance(value, dict):
            found += ['{}[{!r}]'.format(name, k) for k, v in value.items()
                      if isinstance(v, numpy.ndarray)]
    return found


def state_check(arch='resnet50', n_class=1000, seed=0):
    """Set up RMSpropWarmup on ``arch``, do one update, inspect its state.

    As ``train_imagenet.py`` does it (``L.Classifier``, weight decay hooks on
    conv/linear ``W``), with ``alpha_sgd = 0.5`` so that both terms of the
    hybrid update run.  Gradients are set directly (N(0, 0.01)), no forward
    pass, so the memory figures are those of the optimizer alone.  numba's
    kernel is compiled (or loaded from its cache) on a tiny model first.

    Checks, for every parameter: the update rule's state has exactly the keys
    ``{'delta', 'ms'}``, each a NumPy array of the parameter's shape and dtype
    that shares memory with nothing else checked; ``_fp32_param`` is None
    (float32 parameters: no master copy); no other ndarray hangs off the rule,
    its hooks or the optimizer.  Measures the bytes of the state against twice
    the parameter bytes, the Python-traced allocation (``tracemalloc``: NumPy
    reports its buffers to it) left live by the first update and its peak, and
    the process's resident-set growth (``VmRSS``) over the first update.
    """
    import tracemalloc

    import numpy
    import chainer
    import chainer.links as L

    from chainer_ext.optimizers import RMSpropWarmup
    from chainer_ext.optimizer_hooks import add_weight_decay
    from models import archs

    def setup(model):
        opt = RMSpropWarmup(lr=0.1, alpha_sgd=0.5)
        opt.setup(model)
        add_weight_decay(model, 1e-4)
        return opt

    # Warm-up of every code path (numba compile/cache load, hooks) on a toy model.
    toy = chainer.Sequential(L.Convolution2D(3, 4, 3, nobias=True),
                             L.BatchNormalization(4))
    toy_opt = setup(toy)
    for prm in toy.params():
        prm.grad = numpy.ones_like(prm.array)
    toy_opt.update()
    del toy, toy_opt

    model = L.Classifier(archs[arch](n_class=n_class))
    opt = setup(model)
    rng = numpy.random.default_rng(seed)
    params = list(model.namedparams())
    for _, prm in params:   # in place: no temporaries left in the malloc heap
        grad = numpy.empty(prm.shape, dtype=numpy.float32)
        rng.standard_normal(out=grad, dtype=numpy.float32)
        grad *= 0.01
        prm.grad = grad
    param_bytes = sum(prm.array.nbytes for _, prm in params)
    gc.collect()
    _malloc_trim()   # hand freed heap pages back, so that VmRSS grows by what is new
    rss0 = _vm_kb('VmRSS')
    tracemalloc.start()
    t0 = time.perf_counter()
    opt.update()
    update_s = time.perf_counter() - t0
    traced_live, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = _vm_kb('VmRSS')

    problems = []
    state_bytes = 0
    seen = []
    for name, prm in params:
        rule = prm.update_rule
        keys = sorted(rule.state.keys()) if rule.state is not None else None
        if keys != ['delta', 'ms']:
            problems.append('{}: state keys {}'.format(name, keys))
            continue
        for key in keys:
            arr = rule.state[key]
            if not isinstance(arr, numpy.ndarray):
                problems.append('{}/{}: {} not a numpy array'.format(name, key, type(arr)))
                continue
            if arr.shape != prm.shape or arr.dtype != prm.dtype:
                problems.append('{}/{}: {} {} vs parameter {} {}'.format(
                    name, key, arr.shape, arr.dtype, prm.shape, prm.dtype))
            if not arr.flags.owndata:
                problems.append('{}/{}: a view, not its own buffer'.format(name, key))
            for other in (prm.array, prm.grad):
                if numpy.may_share_memory(arr, other):
                    problems.append('{}/{}: shares memory with the parameter'.format(
                        name, key))
            state_bytes += arr.nbytes
            seen.append(arr)
        if prm.dtype == numpy.float32 and getattr(rule, '_fp32_param', None) is not None:
            problems.append('{}: has an _fp32_param copy'.format(name))
        hidden = _arrays_in(rule, numpy)
        for hook in list(getattr(rule, '_pre_update_hooks', {}).values()) + list(
                getattr(rule, '_post_update_hooks', {}).values()):
            hidden += ['hook {}.{}'.format(type(hook).__name__, h)
                       for h in _arrays_in(hook, numpy)]
        if hidden:
            problems.append('{}: other arrays on the rule: {}'.format(name, hidden))
    hidden = _arrays_in(opt, numpy)
    if hidden:
        problems.append('optimizer holds arrays: {}'.format(hidden))
    # No two state arrays alias each other (sorted by address, neighbours only).
    spans = sorted((a.__array_interface__['data'][0], a.nbytes) for a in seen)
    for (a0, n0), (a1, _) in zip(spans, spans[1:]):
        if a0 + n0 > a1:
            problems.append('two state arrays overlap')
            break

    out = {
        'arch': arch, 'n_params': int(sum(prm.size for _, prm in params)),
        'n_arrays': len(params), 'dtypes': sorted({str(prm.dtype) for _, prm in params}),
        'param_bytes': int(param_bytes), 'state_bytes': int(state_bytes),
        'state_over_param_bytes': state_bytes / float(param_bytes),
        'traced_live_bytes_after_first_update': int(traced_live),
        'traced_peak_bytes_during_first_update': int(traced_peak),
        'traced_live_over_param_bytes': traced_live / float(param_bytes),
        'rss_before_kb': rss0, 'rss_after_kb': rss1,
        'rss_delta_bytes': 1024 * (rss1 - rss0),
        'rss_delta_over_param_bytes': 1024.0 * (rss1 - rss0) / param_bytes,
        'first_update_s': update_s,
        'problems': problems[:50], 'n_problems': len(problems),
        'ok': not problems and state_bytes == 2 * param_bytes,
    }
    return out


def state_check_main(argv):
    p = argparse.ArgumentParser(prog='_iteration_worker.py state-check')
    p.add_argument('--arch', default='resnet50')
    p.add_argument('--n-class', type=int, default=1000)
    args = p.parse_args(argv)
    print('STATE ' + json.dumps(state_check(args.arch, args.n_class)), flush=True)
    return 0


COMMANDS = {'baseline': baseline, 'rss-wrap': rss_wrap, 'state-check': state_check_main}


def main(argv=None):
    from chainer_ext.machine import blas as blas_setup
    blas_setup.ensure_kernel()  # the CPU's own BLAS kernel, as train_imagenet.py uses
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        sys.stderr.write('usage: _iteration_worker.py {{{}}} ...\n'.format(
            ','.join(COMMANDS)))
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == '__main__':
    sys.exit(main())
