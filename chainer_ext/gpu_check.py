"""Check and measure the paper's GPU path on one machine.

    python -m chainer_ext.gpu_check --help

The command's body is :mod:`chainer_ext.machine.gpu_check`.
"""
import sys

from chainer_ext.machine.gpu_check import main

if __name__ == '__main__':
    sys.exit(main())
