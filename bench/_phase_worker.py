"""MPI worker of bench_scaling.py: one iteration split as in the paper's Figure 1.

Run under ``mpiexec -n N``. Each rank builds the model on synthetic data and
times, over ``--iterations`` iterations after one warm-up, with a barrier
before each phase so that phases do not overlap across ranks:

* ``forward_backward``: loss and gradients of one local batch;
* ``allreduce_float16``: the project's float16 gradient all-reduce;
* ``allreduce_float32``: ChainerMN's float32 communicator of the same name;
* ``allreduce_float32_ring``: the project's ring in float32 (the same
  algorithm as the float16 one at twice the bytes: the pair the cost model
  fits latency and bandwidth to);
* ``optimizer``: one RMSpropWarmup update (weight decay included).

Rank 0 prints one JSON object (medians in seconds, plus bytes and sizes).
"""
import argparse
import json
import sys
import time

import numpy

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer.links as L
import chainermn


def main():
    from chainer_ext.machine import blas as blas_setup
    blas_setup.ensure_kernel()  # the CPU's own BLAS kernel, as train_imagenet.py uses
    p = argparse.ArgumentParser()
    p.add_argument('--arch', default='resnet50')
    p.add_argument('--batchsize', type=int, default=32)
    p.add_argument('--insize', type=int, default=224)
    p.add_argument('--iterations', type=int, default=3)
    p.add_argument('--communicator', default='naive')
    args = p.parse_args()

    from chainer_ext.communicators import create_communicator
    from chainer_ext.optimizers import RMSpropWarmup
    from chainer_ext.optimizer_hooks import add_weight_decay
    from models import archs

    comm16 = create_communicator(args.communicator, allreduce_grad_dtype='float16')
    comm32 = chainermn.create_communicator(args.communicator)
    ring32 = create_communicator(args.communicator, allreduce_grad_dtype='float32')
    model = L.Classifier(archs[args.arch](n_class=1000))
    comm32.bcast_data(model)
    opt = RMSpropWarmup(lr=0.1)
    opt.setup(model)
    add_weight_decay(model, 1e-4)

    rng = numpy.random.default_rng(comm16.rank)
    x = rng.standard_normal((args.batchsize, 3, args.insize, args.insize), dtype=numpy.float32)
    t = rng.integers(0, 1000, args.batchsize).astype(numpy.int32)
    n_params = sum(p.size for p in model.params())

    def timed(fn):
        comm32.mpi_comm.Barrier()
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    def fwd_bwd():
        model.cleargrads()
        loss = model(x, t)
        loss.backward()

    times = {k: [] for k in ('forward_backward', 'allreduce_float16', 'allreduce_float32',
                             'allreduce_float32_ring', 'optimizer', 'iteration')}
    for it in range(args.iterations + 1):
        fb = timed(fwd_bwd)
        grads = [p.grad.copy() for p in model.params()]
        a16 = timed(lambda: comm16.multi_node_mean_grad(model))
        for p, g in zip(model.params(), grads):
            p.grad[...] = g
        a32 = timed(lambda: comm32.multi_node_mean_grad(model))
        for p, g in zip(model.params(), grads):
            p.grad[...] = g
        r32 = timed(lambda: ring32.multi_node_mean_grad(model))
        upd = timed(lambda: opt.update())
        if it == 0:
            continue  # warm-up: allocation, numba compilation, first-touch
        times['forward_backward'].append(fb)
        times['allreduce_float16'].append(a16)
        times['allreduce_float32'].append(a32)
        times['allreduce_float32_ring'].append(r32)
        times['optimizer'].append(upd)
        times['iteration'].append(fb + a16 + upd)

    if comm16.rank == 0:
        out = {k: float(numpy.median(v)) for k, v in times.items()}
        out.update(ranks=comm16.size, arch=args.arch, batchsize=args.batchsize,
                   insize=args.insize, iterations=args.iterations,
                   communicator=args.communicator, n_params=int(n_params),
                   grad_bytes_float32=int(4 * n_params), grad_bytes_float16=int(2 * n_params),
                   samples=times)
        print('PHASES ' + json.dumps(out), flush=True)


if __name__ == '__main__':
    sys.exit(main())
