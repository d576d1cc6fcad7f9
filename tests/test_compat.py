"""chainer_ext.machine.compat: Chainer 7.8.1 on NumPy 2, Python 3.12+ and setuptools 82+."""
import json
import subprocess
import sys
import textwrap

import numpy
import pytest

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer
import chainer.functions as F
from chainer_ext.machine import compat

NUMPY2 = int(numpy.__version__.split('.')[0]) >= 2

# Runs in a fresh interpreter: hide the named modules as a new stack would,
# import the project and Chainer, report what compat installed.
_HIDE_AND_IMPORT = textwrap.dedent('''
    import importlib.abc, json, sys
    HIDDEN = {hidden!r}

    class Hide(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if any(name == h or name.startswith(h + '.') for h in HIDDEN):
                raise ImportError('hidden for the test: ' + name)

    sys.meta_path.insert(0, Hide())
    import chainer_ext
    import chainer, chainermn
    import chainer.functions as F
    import numpy
    x = chainer.Variable(numpy.arange(6, dtype=numpy.float32))
    y = F.as_strided(x, (2, 2), (2, 1))
    y.grad = numpy.ones((2, 2), numpy.float32)
    y.backward()
    pr = sys.modules['pkg_resources']
    report = dict(installed=chainer_ext.machine.compat.installed,
                  grad=x.grad.tolist(),
                  pkg_resources_file=getattr(pr, '__file__', None),
                  numpy_version=pr.get_distribution('numpy').version)
    try:
        pr.require('numpy<1')
        report['conflict'] = None
    except pr.VersionConflict as e:
        report['conflict'] = str(e)
    try:
        pr.require('no-such-distribution-akiba2017')
        report['not_found'] = False
    except pr.DistributionNotFound:
        report['not_found'] = True
    print(json.dumps(report))
''')


def _run_hidden(hidden):
    proc = subprocess.run(
        [sys.executable, '-c', _HIDE_AND_IMPORT.format(hidden=list(hidden))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_chainer_imports_and_checks_requirements_without_pkg_resources_or_distutils():
    report = _run_hidden(['pkg_resources', 'numpy.distutils'])
    assert 'pkg_resources' in report['installed']
    assert 'numpy.distutils' in report['installed']
    assert report['pkg_resources_file'] is None          # the stand-in
    assert report['numpy_version'] == numpy.__version__
    assert report['conflict'] and 'numpy' in report['conflict']
    assert report['not_found'] is True
    # as_strided reads np.sctypes at import and in backward: overlapping
    # windows (0,1),(2,3) of 0..5 with strides (2, 1) -> each x once.
    assert report['grad'] == [1, 1, 1, 1, 0, 0]


def test_as_strided_backward_accumulates_overlaps():
    x = chainer.Variable(numpy.arange(6, dtype=numpy.float32))
    y = F.as_strided(x, (3, 2), (1, 1))        # rows (0,1), (1,2), (2,3)
    y.grad = numpy.ones((3, 2), numpy.float32)
    y.backward()
    numpy.testing.assert_array_equal(x.grad, [1, 2, 2, 1, 0, 0])


def test_sctypes_as_numpy1_defined_them():
    sctypes = numpy.sctypes
    assert [numpy.dtype(t).itemsize for t in sctypes['int']] == [1, 2, 4, 8]
    assert [numpy.dtype(t).itemsize for t in sctypes['uint']] == [1, 2, 4, 8]
    assert numpy.float16 in sctypes['float'] and numpy.float64 in sctypes['float']
    assert ('numpy.sctypes' in compat.installed) == NUMPY2


@pytest.mark.skipif(NUMPY2 or sys.version_info >= (3, 12),
                    reason='the stack Chainer 7.8.1 was written for')
def test_changes_nothing_on_the_legacy_stack():
    report = _run_hidden([])
    assert report['installed'] == []
    assert report['pkg_resources_file'].endswith('__init__.py')


class _RecordingBuffer:
    """Stands in for ChainerMN's device buffer: serves ``to_device`` from a host array."""

    def __init__(self, values):
        self.bytes = numpy.ascontiguousarray(values).view(numpy.uint8)

    def to_device(self, array, size, offset, stream=None):
        array.view(numpy.uint8).ravel()[...] = self.bytes[offset:offset + size]


class _Param:
    xp = numpy

    def __init__(self, data, grad):
        self.data, self.grad = data, grad


def test_chainermn_unpack_params_converts_transfer_dtype():
    """A float16 wire and float32 gradients, the case NumPy 2 refuses ``copy=False`` for."""
    compat.fix_chainermn()
    from chainermn.communicators import _memory_utility
    wire = numpy.array([0.5, -1.25, 3.0, 65504.0, 1e-3], numpy.float16)
    params = [_Param(numpy.zeros(2, numpy.float32), numpy.zeros(2, numpy.float32)),
              _Param(numpy.zeros(3, numpy.float32), None)]
    _memory_utility.unpack_params(params, 'grad', _RecordingBuffer(wire),
                                  numpy.float16, zero_fill=True)
    assert params[0].grad.dtype == numpy.float32
    numpy.testing.assert_array_equal(params[0].grad, wire[:2].astype(numpy.float32))
    numpy.testing.assert_array_equal(params[1].grad, wire[2:].astype(numpy.float32))


@pytest.mark.skipif(not NUMPY2, reason='NumPy 1 copies where copy=False needs one')
def test_chainermn_own_unpack_params_fails_on_numpy2():
    """The defect the stand-in replaces is real on this stack."""
    compat.fix_chainermn()
    params = [_Param(numpy.zeros(2, numpy.float32), numpy.zeros(2, numpy.float32))]
    buffer = _RecordingBuffer(numpy.ones(2, numpy.float16))
    with pytest.raises(ValueError, match='copy'):
        compat.chainermn_unpack_params(params, 'grad', buffer, numpy.float16, False)
