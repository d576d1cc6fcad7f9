"""Command-line flags checked as argparse reads them: one line naming the flag, the
requirement and the value, and exit status 2.

``type=`` validators for numbers and signal lists, :class:`OneLineParser`, an
``ArgumentParser`` whose errors are that one line (without the usage block), and
:class:`RankZeroParser`, the same printing on rank 0 only.  Shared by
``train_imagenet.py`` and the project's other command-line tools.
"""
import argparse
import math
import time

from chainer_ext.job.mpiexec import rank_from_env
from chainer_ext.job.stop_signals import parse_signals


class OneLineParser(argparse.ArgumentParser):
    """``ArgumentParser`` whose errors are one line: ``PROG: error: --flag text``."""

    def error(self, message):
        if message.startswith('argument '):  # "argument --x: text" -> "--x text"
            flag, _, text = message[len('argument '):].partition(': ')
            message = '{} {}'.format(flag.split('/')[-1], text)
        self.exit(2, '{}: error: {}\n'.format(self.prog, message))


class RankZeroParser(OneLineParser):
    """:class:`OneLineParser` that prints (help, errors) on rank 0 only: every rank of an
    MPI job parses the same flags, before MPI starts."""

    def _print_message(self, message, file=None):
        if rank_from_env() == 0:
            super(RankZeroParser, self)._print_message(message, file)

    def error(self, message):
        if rank_from_env() != 0:
            time.sleep(3.0)  # the same flags everywhere: let rank 0 speak first
        super(RankZeroParser, self).error(message)


def _number(kind, accept, requirement):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError('must be {}, got {}'.format(requirement, text))
        return value
    parse.__name__ = requirement
    return parse


positive_int = _number(int, lambda v: v > 0, 'a positive integer')
nonnegative_int = _number(int, lambda v: v >= 0, 'an integer >= 0')
nonnegative_float = _number(float, lambda v: v >= 0, 'a number >= 0')
area_fraction = _number(float, lambda v: 0 < v <= 1, 'in (0, 1]')
at_least_two = _number(int, lambda v: v >= 2, 'an integer >= 2')
seed = _number(int, lambda v: 0 <= v <= 2 ** 32 - 1, 'an integer in [0, 4294967295]')
positive_finite = _number(float, lambda v: 0 < v < math.inf, 'a finite number > 0')
nonnegative_finite = _number(float, lambda v: 0 <= v < math.inf, 'a finite number >= 0')
fraction = _number(float, lambda v: 0 <= v <= 1, 'in [0, 1]')


def signals(text):
    """``--stop-signals TERM,USR1`` -> signal numbers."""
    try:
        return parse_signals(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError('{}; e.g. TERM,USR1'.format(e))
