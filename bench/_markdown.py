"""What every benchmark's section of BENCHMARKS.md is made of: :class:`Goal`, a row of the
summary table, and the few ways a figure is written."""
import collections

#: One row of BENCHMARKS.md's summary: the goal's number (or the benchmark's name), what
#: is measured, the measured value (or 'failed', 'skipped'), the target, and met (True,
#: False, or None where nothing is judged).
Goal = collections.namedtuple('Goal', 'goal quantity measured target met')


def met(flag):
    return 'n/a' if flag is None else ('**met**' if flag else '**missed**')


def na_or(x, fmt='{:.2f}'):
    return 'n/a' if x is None else fmt.format(x)


def load_average(la):
    """``os.getloadavg()``'s three figures, or n/a."""
    return 'n/a' if not la else ', '.join('{:.2f}'.format(v) for v in la)


def failed_section(title, name, res, goal=None):
    """The section of benchmark ``name``, which raised ``res['error']``, and the summary
    row ``goal`` (a :class:`Goal` saying 'failed') where it has one."""
    return ([title, '', '**FAILED** — `{}` raised:'.format(name), '', '```',
             res['error'].rstrip(), '```', ''], [goal] if goal else [])
