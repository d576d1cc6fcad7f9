"""Training runs compared with the paper: report.md, report.json and plots.

    python -m chainer_ext.report --help

The command's body is :mod:`chainer_ext.paper.report`.
"""
import sys

from chainer_ext.paper.report import main

if __name__ == '__main__':
    sys.exit(main())
