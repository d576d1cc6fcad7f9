"""An MPI launcher whose Ctrl-C or SIGTERM stops the job with a snapshot.

    python -m chainer_ext.launch --help

The command's body is :mod:`chainer_ext.job.signal_relay`.
"""
import sys

from chainer_ext.job.signal_relay import main

if __name__ == '__main__':
    sys.exit(main())
