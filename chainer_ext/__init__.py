"""Extensions of Chainer and ChainerMN for Akiba, Suzuki and Fukuda (2017).

Importing the package adds :mod:`chainer_ext.startup`'s import hook, which puts
:mod:`chainer_ext.machine.compat`'s stand-ins in place just before ``chainer`` loads (so that
Chainer 7.8.1 imports on NumPy 2 and Python 3.12+) and cuDNN's wheel just before
CuPy's cuDNN module.  An installed project adds it at interpreter start; entry points
import ``chainer_ext`` before ``chainer`` all the same.  Nothing heavier than ``sys``
is imported here (``os`` is loaded at interpreter start already): the hook runs in every
program of the environment.
"""
import os
import sys

from chainer_ext import startup

#: The checkout this package lies in (README, EXPERIMENTS.md and the sources beside it).
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

startup.install()
if 'chainer' in sys.modules:  # imported before the hook existed: install them now
    from chainer_ext.machine import compat
    compat.add_stand_ins()
