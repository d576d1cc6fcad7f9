"""What this machine's CUDA stack offers Chainer: GPUs, NCCL, cuDNN (Section 3).

:func:`probe` answers in one call, with one-line reasons naming the fix when
something is missing, for ``train_imagenet.py``'s start-up checks and for
:mod:`chainer_ext.gpu_check`.  Everything it reports comes from the CuPy it is
given (the installed one by default).
"""
import importlib
import os


class NoGPU(Exception):
    """No usable GPU; ``fatal`` when one is there but CuPy cannot use it."""

    def __init__(self, message, fatal=False):
        super().__init__(message)
        self.fatal = fatal


def survey(cupy=None):
    """:func:`probe`'s answer, or the :class:`NoGPU` it raised: for a caller that decides
    later what a missing GPU means (``--device auto`` runs on CPUs, ``gpu`` refuses)."""
    try:
        return probe(cupy)
    except NoGPU as e:
        return e


def probe(cupy=None):
    """What the machine offers: GPUs, NCCL, cuDNN.  Raises :class:`NoGPU`."""
    if cupy is None:
        try:
            import cupy
        except ImportError as e:
            raise NoGPU('CuPy is not installed ({})'.format(e)) from None
    runtime = cupy.cuda.runtime
    try:
        count = runtime.getDeviceCount()
    except runtime.CUDARuntimeError as e:
        text = str(e)
        if 'NoDevice' in text or 'no CUDA-capable device' in text:
            raise NoGPU('no CUDA device is visible ({})'.format(text)) from None
        raise NoGPU('CuPy {} cannot use the GPU: {} (a CuPy built for another CUDA major '
                    'version than the driver supports? install cupy-cuda12x for a CUDA 12 '
                    'driver, cupy-cuda13x for CUDA 13)'.format(cupy.__version__, text),
                    fatal=True) from None
    if count == 0:
        raise NoGPU('no CUDA device is visible')
    info = dict(cupy=cupy.__version__, gpus=count,
                driver=runtime.driverGetVersion(), runtime=runtime.runtimeGetVersion(),
                names=[_name(runtime.getDeviceProperties(i)) for i in range(count)])
    try:
        info['nccl'] = _submodule(cupy, 'nccl').get_version()
    except Exception as e:  # ImportError, or the library failing to load
        info['nccl'] = None
        info['nccl_missing'] = ('NCCL is not available to CuPy ({}): pure_nccl cannot run; '
                                'install the nvidia-nccl-cu12/-cu13 wheel matching CuPy'
                                .format(e))
    info.update(_cudnn(cupy))
    return info


def _submodule(cupy, name):
    """``cupy.cuda.<name>`` of the CuPy given, imported if it is not yet."""
    module = getattr(cupy.cuda, name, None)
    if module is None:
        module = importlib.import_module('{}.cuda.{}'.format(cupy.__name__, name))
    return module


def _cudnn(cupy):
    """cuDNN as Chainer will use it: Chainer enables it when CuPy's cuDNN module imports
    (and ``CHAINER_CUDNN`` is not 0).  Its version, which library, or why there is none."""
    from chainer_ext.machine import cudnn_library
    library = dict(cudnn_library.loaded) or None  # what the start-up hook loaded, if it ran
    fallback = ('convolutions and batch normalization use im2col + cuBLAS and elementwise '
                'kernels')
    if os.environ.get('CHAINER_CUDNN', '1') == '0':
        return {'cudnn': None, 'cudnn_library': library,
                'cudnn_missing': 'CHAINER_CUDNN=0 turns cuDNN off: ' + fallback}
    from chainer.backends import cuda
    try:
        version = cudnn_library.version_string(_submodule(cupy, 'cudnn').getVersion())
        if cupy is cuda.cupy and not cuda.cudnn_enabled:
            raise RuntimeError('Chainer did not enable it ({})'.format(
                getattr(cuda, '_resolution_error', 'no reason given')))
    except Exception as e:
        major = int(str(cupy.__version__).split('.')[0])
        fix = ('CuPy 14 and later have no cuDNN' if major >= 14 else
               'for CuPy 13: pip install "nvidia-cudnn-cu12==8.9.7.29" (the gpu-cuda12 extra)')
        why = (library or {}).get('error') or '{}: {}'.format(type(e).__name__, e)
        return {'cudnn': None, 'cudnn_library': library,
                'cudnn_missing': 'cuDNN is not available to Chainer (CuPy {}; {}; {}): {}'
                .format(cupy.__version__, why, fix, fallback)}
    return {'cudnn': version, 'cudnn_library': library}


def _name(props):
    name = props['name']
    return name.decode() if isinstance(name, bytes) else str(name)
