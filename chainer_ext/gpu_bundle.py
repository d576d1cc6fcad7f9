"""What an offline GPU machine needs beside Python, NumPy and CuPy.

    python -m chainer_ext.gpu_bundle --help

The command's body is :mod:`chainer_ext.machine.gpu_bundle`.
"""
import sys

from chainer_ext.machine.gpu_bundle import main

if __name__ == '__main__':
    sys.exit(main())
