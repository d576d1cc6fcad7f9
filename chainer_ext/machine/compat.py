"""Chainer 7.8.1 and ChainerMN on today's Python, NumPy and setuptools.

Chainer's last release reads three things newer stacks dropped: ``np.sctypes``
(NumPy 2), ``numpy.distutils`` (Python 3.12) and ``pkg_resources``
(setuptools 82).  :func:`add_stand_ins` stands in for each only where it is missing,
and makes ChainerMN's ``unpack_params`` copy where NumPy 2 refuses
``copy=False``.  It runs when ``chainer_ext`` is imported, which every entry
point does before ``import chainer``; on the stack Chainer was written for it
changes nothing.
"""
import importlib
import importlib.metadata
import sys
import types

import numpy

_NUMPY2 = int(numpy.__version__.split('.')[0]) >= 2

installed = []
"""Names of the stand-ins :func:`add_stand_ins` put in place, in order."""


def _sctypes():
    return {
        'int': [numpy.int8, numpy.int16, numpy.int32, numpy.int64],
        'uint': [numpy.uint8, numpy.uint16, numpy.uint32, numpy.uint64],
        'float': [numpy.float16, numpy.float32, numpy.float64, numpy.longdouble],
        'complex': [numpy.complex64, numpy.complex128, numpy.clongdouble],
        'others': [bool, object, bytes, str, numpy.void],
    }


def _module_missing(name):
    """True when ``import name`` fails; leaves no half-imported module behind."""
    if name in sys.modules:
        return False
    try:
        importlib.import_module(name)
        return False
    except ImportError:
        for key in [k for k in sys.modules if k == name or k.startswith(name + '.')]:
            del sys.modules[key]
        return True


def _numpy_distutils():
    """``numpy.distutils.system_info.get_info``: Chainer asks it only on macOS."""
    package = types.ModuleType('numpy.distutils')
    package.__path__ = []
    system_info = types.ModuleType('numpy.distutils.system_info')
    system_info.get_info = lambda name, notfound_action=0: {}
    package.system_info = system_info
    return {'numpy.distutils': package, 'numpy.distutils.system_info': system_info}


def _pkg_resources():
    """What Chainer's start-up check uses of ``pkg_resources``, on importlib.metadata."""
    from packaging.requirements import Requirement

    module = types.ModuleType('pkg_resources')

    class ResolutionError(Exception):
        pass

    class DistributionNotFound(ResolutionError):
        pass

    class VersionConflict(ResolutionError):
        pass

    def get_distribution(name):
        try:
            return types.SimpleNamespace(
                project_name=name, version=importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            raise DistributionNotFound(name) from None

    def require(requirement):
        req = Requirement(requirement)
        dist = get_distribution(req.name)
        if not req.specifier.contains(dist.version, prereleases=True):
            raise VersionConflict('{} {} does not satisfy {}'.format(
                req.name, dist.version, requirement))
        return [dist]

    module.ResolutionError = ResolutionError
    module.DistributionNotFound = DistributionNotFound
    module.VersionConflict = VersionConflict
    module.get_distribution = get_distribution
    module.require = require
    return {'pkg_resources': module}


def _unpack_params(params, attr_name, buffer, transfer_dtype, zero_fill,
                   stream=None):
    """ChainerMN's ``_memory_utility.unpack_params``, copying with ``astype``.

    ChainerMN writes ``xp.array(v, copy=False, dtype=...)``, which NumPy 2 (and
    CuPy 14) refuse when the dtype changes, i.e. whenever parameters are not in
    the transfer dtype.
    """
    offset = 0
    for param in params:
        v = getattr(param, attr_name)
        if attr_name == 'grad' and v is None and zero_fill:
            v = param.xp.empty_like(param.data)
            setattr(param, attr_name, v)
        size = v.size * numpy.dtype(transfer_dtype).itemsize
        own_dtype = v.dtype
        if own_dtype != transfer_dtype:
            v = v.astype(transfer_dtype)
        buffer.to_device(v, size, offset, stream)
        offset += size
        if own_dtype != transfer_dtype:
            getattr(param, attr_name)[...] = v.astype(own_dtype)


chainermn_unpack_params = None
"""ChainerMN's own ``unpack_params``, once :func:`fix_chainermn` replaced it."""


def fix_chainermn():
    """Replace ChainerMN's ``unpack_params`` under NumPy 2; imports ChainerMN."""
    global chainermn_unpack_params
    from chainermn.communicators import _memory_utility
    if _NUMPY2 and _memory_utility.unpack_params is not _unpack_params:
        chainermn_unpack_params = _memory_utility.unpack_params
        _memory_utility.unpack_params = _unpack_params
        installed.append('chainermn unpack_params')


def add_stand_ins():
    """Put the stand-ins in place; idempotent.  Call before ``import chainer``."""
    if _NUMPY2 and 'sctypes' not in vars(numpy):
        numpy.sctypes = _sctypes()
        installed.append('numpy.sctypes')
    if 'numpy.distutils' not in installed and _module_missing('numpy.distutils.system_info'):
        sys.modules.update(_numpy_distutils())
        installed.append('numpy.distutils')
    if 'pkg_resources' not in installed and _module_missing('pkg_resources'):
        sys.modules.update(_pkg_resources())
        installed.append('pkg_resources')
