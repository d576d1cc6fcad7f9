"""CPU runs at the machine's speed: the CPU's own BLAS kernel, each rank its share of cores.

Chainer's CPU convolutions are im2col + GEMM in NumPy's bundled OpenBLAS, which
picks its kernel from the CPU model.  In some VMs it misreads an AVX-512 CPU as
``Prescott`` (SSE3, about 5x slower), and not the same way in every process, so
ranks and runs would compute with different kernels.  OpenBLAS reads
``OPENBLAS_CORETYPE`` only when it loads, so :func:`ensure_kernel` re-executes
the process once, before MPI starts, pinned to the kernel of the CPU's vector
generation (processes it starts inherit the setting); a value the user set is
never changed, only warned about.
:func:`limit_threads` gives each rank's BLAS the cores it owns (:mod:`chainer_ext.cores`),
less its data-loading processes, unless the user set a thread count.
"""
import os
import sys

REEXEC_MARK = 'AKIBA2017_BLAS_REEXEC'
# OpenBLAS kernels by the widest vector instructions they use.
_GENERATION = {
    'katmai': 0, 'prescott': 0, 'core2': 0, 'penryn': 0, 'dunnington': 0, 'nehalem': 0, 'atom': 0,
    'sandybridge': 1, 'bulldozer': 1, 'piledriver': 1,
    'haswell': 2, 'zen': 2, 'steamroller': 2, 'excavator': 2,
    'skylakex': 3, 'cooperlake': 3, 'sapphirerapids': 3,
}
_AVX512 = {'avx512f', 'avx512bw', 'avx512vl', 'avx512dq', 'avx512cd'}
THREAD_VARS = ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS')


def cpu_flags(path='/proc/cpuinfo'):
    """The instruction-set flags of the first CPU in ``path`` (empty if unreadable)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith('flags'):
                    return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_kernel(flags):
    """The OpenBLAS kernel for a CPU with ``flags``, or None when nothing beats the default.

    What OpenBLAS picks on a correctly read CPU; a build without Cooperlake runs
    SkylakeX for it, the same in every process.
    """
    if _AVX512 <= flags:
        return 'Cooperlake' if 'avx512_bf16' in flags else 'SkylakeX'
    if {'avx2', 'fma'} <= flags:
        return 'Haswell'
    return None


def openblas_kernel():
    """The kernel of NumPy's OpenBLAS (threadpoolctl), or None for another BLAS.

    SciPy, once imported, brings an OpenBLAS of its own; NumPy's is the one
    Chainer's GEMMs run on.
    """
    import numpy
    from threadpoolctl import threadpool_info
    libs = [lib for lib in threadpool_info() if lib.get('internal_api') == 'openblas']
    home = os.path.dirname(os.path.dirname(numpy.__file__))
    mine = [lib for lib in libs if os.path.basename(os.path.dirname(lib['filepath']))
            .startswith('numpy') and lib['filepath'].startswith(home)]
    return (mine or libs or [{}])[0].get('architecture')


def older(kernel, than):
    """Whether ``kernel`` uses narrower vector instructions than ``than``."""
    mine, best = _GENERATION.get((kernel or '').lower()), _GENERATION.get(than.lower())
    return mine is not None and best is not None and mine < best


def plan(kernel, flags, environ):
    """``('reexec', name)``, ``('warn', line)`` or ``(None, None)`` for this process."""
    best = cpu_kernel(flags)
    if best is None or kernel is None:
        return None, None
    user = environ.get('OPENBLAS_CORETYPE')
    # The mark counts only with the value it was set with: a process whose parent
    # re-executed, but which was started without that value, decides afresh.
    if REEXEC_MARK in environ and user == best:
        if not older(kernel, best):
            return None, None
        return 'warn', ('OpenBLAS runs {} although OPENBLAS_CORETYPE={} was set for this CPU; '
                        'its build may lack that kernel'.format(kernel, best))
    if user:
        if not older(kernel, best):
            return None, None
        return 'warn', ('OPENBLAS_CORETYPE={} is set, an older kernel than this CPU runs '
                        '(OpenBLAS {} is several times faster at GEMM): unset it or set '
                        'OPENBLAS_CORETYPE={}'.format(user, best, best))
    if kernel.lower() not in _GENERATION:
        return None, None  # a kernel newer than this module knows: leave it
    # Also when OpenBLAS found this kernel itself: its cache sizes, and so its
    # blocking and summation order, are read from CPUID too, not alike everywhere.
    return 'reexec', best


def ensure_kernel(rank=0):
    """Re-execute this process with the right ``OPENBLAS_CORETYPE`` if needed.

    Call first thing in ``main()``, before MPI starts and before worker processes
    exist.  Returns a description for ``config.json``.
    """
    kernel = openblas_kernel()
    action, value = plan(kernel, cpu_flags(), os.environ)
    if action == 'reexec':
        os.environ['OPENBLAS_CORETYPE'] = value
        os.environ[REEXEC_MARK] = kernel
        argv = list(getattr(sys, 'orig_argv', None) or [sys.executable] + sys.argv)
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable] + argv[1:])
    if action == 'warn' and rank == 0:
        sys.stderr.write('warning: {}\n'.format(value))
    return describe()


def describe():
    """The BLAS set-up of this process, for ``config.json`` and the benchmarks."""
    from threadpoolctl import threadpool_info
    kernel = openblas_kernel()
    return {'kernel': kernel, 'cpu_kernel': cpu_kernel(cpu_flags()),
            'openblas_coretype': os.environ.get('OPENBLAS_CORETYPE'),
            'detected_kernel': os.environ.get(REEXEC_MARK, kernel),
            'threads': max((lib['num_threads'] for lib in threadpool_info()
                            if lib.get('user_api') == 'blas'), default=None)}


def limit_threads(cores, loader_processes):
    """Give this process's BLAS its ``cores`` (:mod:`chainer_ext.cores`) less its loader
    processes, at least one thread; returns the count in use.

    A thread count the user set in the environment is kept as it is.
    """
    from threadpoolctl import threadpool_limits
    if not any(var in os.environ for var in THREAD_VARS):
        threadpool_limits(max(1, int(cores) - max(0, int(loader_processes))), user_api='blas')
    return describe()['threads']
