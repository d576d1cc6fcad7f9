"""The cost model of Section 4, for the paper's set-up or this machine's.

    python -m chainer_ext.cost_model --help

The command's body is :mod:`chainer_ext.paper.cost_model.text`.
"""
import sys

from chainer_ext.paper.cost_model.text import main

if __name__ == '__main__':
    sys.exit(main())
