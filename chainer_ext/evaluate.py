"""Top-1 and top-5 of a trained model on a validation list.

    python -m chainer_ext.evaluate --help

The command's body is :mod:`chainer_ext.job.evaluation`.
"""
import sys

from chainer_ext.job.evaluation import main

if __name__ == '__main__':
    sys.exit(main())
