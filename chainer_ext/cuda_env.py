"""What this machine's CUDA stack offers Chainer: GPUs, NCCL, cuDNN (Section 3).

:func:`probe` answers in one call, with one-line reasons naming the fix when
something is missing, for ``train_imagenet.py``'s start-up checks and for
:mod:`chainer_ext.gpu_check`.
"""


class NoGPU(Exception):
    """No usable GPU; ``fatal`` when one is there but CuPy cannot use it."""

    def __init__(self, message, fatal=False):
        super().__init__(message)
        self.fatal = fatal


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
        from cupy.cuda import nccl
        info['nccl'] = nccl.get_version()
    except Exception as e:  # ImportError, or the library failing to load
        info['nccl'] = None
        info['nccl_missing'] = ('NCCL is not available to CuPy ({}): pure_nccl cannot run; '
                                'install the nvidia-nccl-cu12/-cu13 wheel matching CuPy'
                                .format(e))
    from chainer.backends import cuda
    info['cudnn'] = str(cuda.cuda.cudnn.getVersion()) if cuda.cudnn_enabled else None
    if info['cudnn'] is None:
        info['cudnn_missing'] = ('cuDNN is not available to Chainer (CuPy {}): convolutions '
                                 'and batch normalization use im2col + cuBLAS and elementwise '
                                 'kernels'.format(cupy.__version__))
    return info


def _name(props):
    name = props['name']
    return name.decode() if isinstance(name, bytes) else str(name)
