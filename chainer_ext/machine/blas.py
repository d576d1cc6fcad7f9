"""CPU runs at the machine's speed: the CPU's own BLAS kernel, each rank its cores.

Chainer's CPU convolutions are im2col + GEMM in NumPy's bundled OpenBLAS, which picks its
kernel from the CPU model and in some VMs misreads an AVX-512 CPU as ``Prescott`` (about 5x
slower).  Where the kernel in use is of an older vector generation than the CPU's,
:func:`ensure_kernel` re-executes the process once with ``OPENBLAS_CORETYPE`` set, where
that is sure to run the same program again (:func:`reexec_refusal`), and otherwise prints
one line naming the value to set.  A kernel OpenBLAS picked of the CPU's generation, or a
value the user set, is left alone (the latter warned about).  :func:`limit_threads` gives
each rank's BLAS the cores it owns (:mod:`chainer_ext.machine.cores`), less its loaders,
unless the user set a thread count.  Why: docs/DESIGN.md.
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
# Instructions a kernel needs beyond its generation's.
_NEEDS = {'cooperlake': {'avx512_bf16'}, 'sapphirerapids': {'amx_bf16', 'avx512_fp16'}}
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


def cpu_generation(flags):
    """The widest vector instructions of a CPU with ``flags``: 3 AVX-512, 2 AVX2+FMA,
    1 AVX, 0 SSE."""
    if _AVX512 <= flags:
        return 3
    if {'avx2', 'fma'} <= flags:
        return 2
    return 1 if 'avx' in flags else 0


def cpu_kernel(flags):
    """The OpenBLAS kernel for a CPU with ``flags``, or None when nothing beats the default.

    What OpenBLAS picks on a correctly read CPU; a build without Cooperlake runs
    SkylakeX for it, the same in every process.
    """
    generation = cpu_generation(flags)
    if generation == 3:
        return 'Cooperlake' if 'avx512_bf16' in flags else 'SkylakeX'
    return 'Haswell' if generation == 2 else None


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


def beyond(kernel, flags):
    """Whether ``kernel`` needs instructions a CPU with ``flags`` lacks (OpenBLAS would
    stop with an illegal instruction)."""
    name = (kernel or '').lower()
    generation = _GENERATION.get(name)
    if generation is None:
        return False
    return generation > cpu_generation(flags) or not _NEEDS.get(name, set()) <= flags


def plan(kernel, flags, environ):
    """``('reexec', name)``, ``('warn', line)`` or ``(None, None)`` for this process."""
    best = cpu_kernel(flags)
    user = environ.get('OPENBLAS_CORETYPE')
    if user and beyond(user, flags):
        return 'warn', ('OPENBLAS_CORETYPE={} is set, a kernel this CPU cannot run ({}; an '
                        'environment from another host?): GEMM may stop with an illegal '
                        'instruction; unset it or set OPENBLAS_CORETYPE={}'.format(
                            user, 'its own is {}'.format(best) if best else
                            'it has no AVX2', best or 'Prescott'))
    if best is None or kernel is None:
        return None, None
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
    if not older(kernel, best):
        return None, None  # OpenBLAS picked a kernel of this CPU's generation (or one unknown here)
    return 'reexec', best


def _program(orig_argv):
    """How Python was started: ``('-c', code)``, ``('-m', module)``, ``('file', path)`` or
    ``('stdin', None)``, from ``sys.orig_argv``."""
    i = 1
    while i < len(orig_argv):
        arg = orig_argv[i]
        if arg == '--':
            i += 1
            break
        if arg == '-' or not arg.startswith('-'):
            break
        if arg.startswith('--'):
            i += 2 if arg == '--check-hash-based-pycs' else 1
            continue
        for j, option in enumerate(arg[1:], 1):
            if option in 'cm':
                rest = arg[j + 1:]
                value = rest or (orig_argv[i + 1] if i + 1 < len(orig_argv) else None)
                return '-' + option, value
            if option in 'WX':
                i += 0 if arg[j + 1:] else 1  # the value is the next argument
                break
        i += 1
    if i >= len(orig_argv) or orig_argv[i] == '-':
        return 'stdin', None
    return 'file', orig_argv[i]


def reexec_refusal(caller_globals):
    """Why re-executing this process could run something else than the program, or None.

    Safe only when all hold: the caller is the ``__main__`` module's code (the program's
    own entry point, not ``train_imagenet.main([...])`` called by a notebook, a test or a
    driver); MPI is not initialised (``python -m mpi4py``, an earlier ``MPI_Init``);
    ``sys.orig_argv`` (Python 3.10+) holds a command line that starts this same
    ``__main__`` again: a script file, ``-m`` of this module or ``-c`` code, not a script
    read from standard input nor another module's ``-m`` (``pdb``, ``mpi4py``, a profiler).
    """
    main = sys.modules.get('__main__')
    if main is None or caller_globals is not vars(main):
        return 'called from inside another program, not from its own entry point'
    mpi = sys.modules.get('mpi4py.MPI')
    if mpi is not None and mpi.Is_initialized():
        return 'MPI is already initialised'
    orig_argv = getattr(sys, 'orig_argv', None)
    if not orig_argv:
        return 'Python {}.{} keeps no sys.orig_argv to start it again with'.format(
            *sys.version_info[:2])
    kind, value = _program(orig_argv)
    if kind == 'stdin':
        return 'its program was read from standard input'
    if kind == '-m':
        spec = getattr(main, '__spec__', None)
        if value != getattr(spec, 'name', None):
            return 'it was started by python -m {}'.format(value)
    if kind == 'file':
        path = getattr(main, '__file__', None)
        if not path or os.path.abspath(value) != os.path.abspath(path):
            return 'it was started by {}, which is not the program running'.format(value)
    return None


def ensure_kernel(rank=0, warn=True):
    """Re-execute this process with the CPU's ``OPENBLAS_CORETYPE`` where OpenBLAS misread
    the CPU and that is safe (:func:`reexec_refusal`); else warn in one line.

    Call first thing in the program's ``main()``, before MPI starts and before worker
    processes exist.  Returns :func:`describe`'s dict with ``'warning'``, the line (or
    None), which rank 0 prints now unless ``warn`` is False: a program that checks its
    flags first prints it once they are accepted, so that a refusal stays one line.
    """
    kernel = openblas_kernel()
    action, value = plan(kernel, cpu_flags(), os.environ)
    if action == 'reexec':
        refusal = reexec_refusal(sys._getframe(1).f_globals)
        if refusal is None:
            os.environ['OPENBLAS_CORETYPE'] = value
            os.environ[REEXEC_MARK] = kernel
            sys.stdout.flush()
            sys.stderr.flush()
            os.execv(sys.executable, [sys.executable] + list(sys.orig_argv[1:]))
        action, value = 'warn', (
            'OpenBLAS runs {} on this CPU, whose own kernel {} is several times faster at '
            'GEMM, and this process is not restarted with it ({}): set '
            'OPENBLAS_CORETYPE={} before starting it'.format(kernel, value, refusal, value))
    warning = 'warning: {}'.format(value) if action == 'warn' else None
    if warning and warn and rank == 0:
        sys.stderr.write(warning + '\n')
    return dict(describe(), warning=warning)


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
    """Give this process's BLAS its ``cores`` (:mod:`chainer_ext.machine.cores`) less its loader
    processes, at least one thread; returns the count in use.

    A thread count the user set in the environment is kept as it is.
    """
    from threadpoolctl import threadpool_limits
    if not any(var in os.environ for var in THREAD_VARS):
        threadpool_limits(max(1, int(cores) - max(0, int(loader_processes))), user_api='blas')
    return describe()['threads']
