"""The machine under Chainer: stand-ins for today's stack, BLAS, cores, CUDA and cuDNN.

Imports nothing: the start-up hook loads :mod:`chainer_ext.machine.compat` in every program.
"""
