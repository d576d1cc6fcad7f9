"""Number formatting shared by the report and the cost model ("n/a" for unknown values)."""

NA = 'n/a'


def fmt(x, spec='{:g}'):
    """``spec.format(x)``, or n/a for None."""
    return NA if x is None else spec.format(x)


def integer(x):
    """``1,281,167`` style, or n/a."""
    return NA if x is None else '{:,}'.format(int(x))


def percent(fraction, digits=0):
    """A fraction (0.7495) as a percentage (``74.95%`` with 2 digits), or n/a."""
    return NA if fraction is None else '{:.{}f}%'.format(100.0 * fraction, digits)


def duration(seconds):
    """Seconds as ``12.3 s``, ``4.5 min`` (from 2 min) or ``1.5 h`` (from 2 h), or n/a."""
    if seconds is None:
        return NA
    if seconds >= 2 * 3600:
        return '{:.1f} h'.format(seconds / 3600.0)
    if seconds >= 2 * 60:
        return '{:.1f} min'.format(seconds / 60.0)
    return '{:.1f} s'.format(seconds)


def ms(seconds):
    """Seconds as milliseconds with one decimal."""
    return '{:.1f}'.format(1e3 * seconds)
