"""What this project puts in place before Chainer and CuPy load, in any program of its environment.

An install adds ``zz_chainer_ext_startup.pth`` beside the packages; Python runs it at start,
and it calls :func:`install`, which imports nothing (this module and the package's
``__init__`` import only ``sys``) and adds an import hook that acts once, just before:

- the first ``import chainer``: :mod:`chainer_ext.machine.compat`'s stand-ins (Chainer 7.8.1 on
  NumPy 2, Python 3.12+), so a script or notebook may import ``chainer`` before
  ``chainer_ext``;
- the first import of CuPy's cuDNN module: :func:`chainer_ext.machine.cudnn_library.preload`
  (cuDNN from the ``nvidia-cudnn-cu12`` wheel).

``import chainer_ext`` installs the same hook, for a checkout used without installing it.
"""
import sys

#: Modules whose first import runs a step first: chainer, and CuPy's cuDNN module under
#: the names CuPy 13 and Chainer import it by.
TRIGGERS = {'chainer': 'compat',
            'cupy.cuda.cudnn': 'cudnn', 'cupy.cudnn': 'cudnn',
            'cupy_backends.cuda.libs.cudnn': 'cudnn'}


class BeforeImport(object):
    """Meta path finder that runs a step before the first import of a trigger module and
    then lets the ordinary finders import it."""

    def __init__(self):
        self.done = set()

    def find_spec(self, name, path=None, target=None):
        step = TRIGGERS.get(name)
        if step is None or step in self.done:
            return None
        self.done.add(step)
        if step == 'compat':
            from chainer_ext.machine import compat
            compat.add_stand_ins()
        else:
            from chainer_ext.machine import cudnn_library
            cudnn_library.preload()
        if self.done >= set(TRIGGERS.values()) and self in sys.meta_path:
            sys.meta_path.remove(self)
        return None


def install():
    """Put the hook first on ``sys.meta_path`` (once per process)."""
    if not any(isinstance(f, BeforeImport) for f in sys.meta_path):
        sys.meta_path.insert(0, BeforeImport())
