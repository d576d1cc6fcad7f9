"""Command-line flags checked as argparse reads them: one line naming the flag, the
requirement and the value, and exit status 2.

``type=`` validators for numbers, and :class:`OneLineParser`, an ``ArgumentParser``
whose errors are that one line (without the usage block).  Shared by
``train_imagenet.py`` and the project's other command-line tools.
"""
import argparse
import math


class OneLineParser(argparse.ArgumentParser):
    """``ArgumentParser`` whose errors are one line: ``PROG: error: --flag text``."""

    def error(self, message):
        if message.startswith('argument '):  # "argument --x: text" -> "--x text"
            flag, _, text = message[len('argument '):].partition(': ')
            message = '{} {}'.format(flag.split('/')[-1], text)
        self.exit(2, '{}: error: {}\n'.format(self.prog, message))


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
