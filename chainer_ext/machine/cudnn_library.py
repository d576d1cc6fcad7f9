"""cuDNN for CuPy 13 from the ``nvidia-cudnn-cu12`` wheel: no network, no LD_LIBRARY_PATH
(Section 3).

CuPy 13 (cuDNN 8 only) looks for ``libcudnn.so.8`` only on the dynamic loader's path and
where ``cupyx.tools.install_library`` downloads it.  ``pip install ".[gpu-cuda12]"``
installs cuDNN 8.9.7 as a wheel; :func:`preload` loads that copy by path, each library
after those it needs, before CuPy's cuDNN module is imported, so that the loader binds
``libcudnn.so.8`` and cuDNN's sub-libraries to it.  A cuDNN the loader finds by itself is
used as it is.  :mod:`chainer_ext.startup` calls :func:`preload`; :data:`loaded` says what
happened, for ``gpu_check`` and ``config.json``.  Details: docs/DESIGN.md.
"""
import ctypes
import glob
import os
import re
import sys

SONAME = 'libcudnn.so.8'
#: cuDNN 8's libraries, each after the ones it loads (cuDNN 8 API reference, "library
#: dependencies"): ops_infer; ops_train and cnn_infer on it; cnn_train, adv_* on those.
LIBRARIES = ('libcudnn_ops_infer.so.8', 'libcudnn_ops_train.so.8', 'libcudnn_cnn_infer.so.8',
             'libcudnn_cnn_train.so.8', 'libcudnn_adv_infer.so.8', 'libcudnn_adv_train.so.8',
             SONAME)
#: Where the NVIDIA wheels put their libraries, under a ``sys.path`` entry.
WHEEL_LIB = os.path.join('nvidia', '{}', 'lib')
_MISSING = re.compile(r'(lib[\w.+-]+\.so[\w.]*): cannot open shared object file')

loaded = {}
"""What :func:`preload` did: ``source`` ('system', 'wheel' or None), ``path`` of the
``libcudnn.so.8`` in use, ``version`` ('8.9.7'), ``error`` (why none was loaded)."""
_handles = []  # kept: a library whose handle is collected may be unloaded


def wheel_dirs(path=None):
    """The ``nvidia/cudnn/lib`` folders holding ``libcudnn.so.8`` under ``path``
    (default ``sys.path``), in order."""
    found = []
    for entry in (sys.path if path is None else path):
        lib = os.path.join(entry or '.', WHEEL_LIB.format('cudnn'))
        if os.path.isfile(os.path.join(lib, SONAME)) and lib not in found:
            found.append(lib)
    return found


def _load_with_dependencies(path, search, load):
    """Load ``path``; a library it needs that the loader cannot find is loaded first from
    another NVIDIA wheel under ``search``.  Raises ``OSError`` naming what is missing."""
    tried = set()
    while True:
        try:
            return load(path)
        except OSError as e:
            match = _MISSING.search(str(e))
            name = match.group(1) if match else None
            if name is None or name in tried:
                raise
            tried.add(name)
            candidates = [c for entry in search for c in sorted(glob.glob(os.path.join(
                entry or '.', WHEEL_LIB.format('*'), name)))]
            if not candidates:
                raise
            _handles.append(load(candidates[0]))


def version_string(number):
    """cuDNN 8's version number as text: 8907 -> '8.9.7'."""
    number = int(number)
    return '{}.{}.{}'.format(number // 1000, number % 1000 // 100, number % 100)


def _version(handle):
    """``cudnnGetVersion()`` of a loaded ``libcudnn.so.8``."""
    get = handle.cudnnGetVersion
    get.restype = ctypes.c_size_t
    return version_string(get())


def preload(path=None, load=ctypes.CDLL):
    """Load cuDNN before CuPy does: the loader's own ``libcudnn.so.8`` if it finds one, else
    the ``nvidia-cudnn-cu12`` wheel's under ``path`` (default ``sys.path``).  Once per
    process; returns :data:`loaded`.  Never raises: what failed is in ``loaded['error']``."""
    if loaded or not sys.platform.startswith('linux'):
        return loaded
    try:
        handle = load(SONAME)
        loaded.update(source='system', path=SONAME, error=None)
    except OSError as e:
        system_error = str(e)
        dirs = wheel_dirs(path)
        if not dirs:
            loaded.update(source=None, path=None, version=None, error=(
                '{} (and no nvidia-cudnn-cu12 wheel on sys.path: pip install '
                '"nvidia-cudnn-cu12==8.9.7.29", the gpu-cuda12 extra)'.format(system_error)))
            return loaded
        search = list(sys.path if path is None else path)
        try:
            for name in LIBRARIES:
                handle = _load_with_dependencies(os.path.join(dirs[0], name), search, load)
                _handles.append(handle)
        except OSError as e:
            loaded.update(source=None, path=None, version=None, error='{}: {}'.format(
                dirs[0], e))
            return loaded
        loaded.update(source='wheel', path=os.path.join(dirs[0], SONAME), error=None)
    _handles.append(handle)
    try:
        loaded['version'] = _version(handle)
    except (AttributeError, OSError):
        loaded['version'] = None
    return loaded
