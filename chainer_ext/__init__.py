"""Extensions of Chainer and ChainerMN for Akiba, Suzuki and Fukuda (2017).

Importing the package first puts :mod:`chainer_ext.compat`'s stand-ins in place,
so that Chainer 7.8.1 imports on NumPy 2 and Python 3.12+; entry points import
``chainer_ext`` before ``chainer``.
"""
from chainer_ext import compat

compat.install()
