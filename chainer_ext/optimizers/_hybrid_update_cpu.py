"""CPU kernels of the hybrid momentum-SGD/RMSprop update (paper, Appendix A.1).

:func:`fused_update_numba` (one vectorised numba loop) and :func:`update_numpy`
(in-place ufuncs, the fallback) compute the same IEEE operations in the same
order, so they agree bit for bit::

    m <- mu2 m + (1 - mu2) g g
    Delta <- mu1 Delta - (alpha_SGD + alpha_RMSprop / (sqrt(m) + eps)) g
    theta <- theta + eta Delta
"""
import numpy

try:  # numba is an install requirement; the guard keeps the NumPy path usable without it
    import numba
except ImportError:  # pragma: no cover - exercised only on broken installs
    numba = None

_NUMBA_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))


def _fused_update_py(param, grad, ms, delta, eta, alpha_sgd, alpha_rmsprop,
                     mu1, mu2, one_minus_mu2, eps):
    # Scalar loop over 1-D arrays; compiled by numba below.  Left-to-right
    # evaluation order matches update_numpy() exactly.
    for i in range(param.shape[0]):
        g = grad[i]
        m = mu2 * ms[i] + one_minus_mu2 * g * g
        ms[i] = m
        d = mu1 * delta[i] - (alpha_sgd + alpha_rmsprop / (numpy.sqrt(m) + eps)) * g
        delta[i] = d
        param[i] += eta * d


if numba is not None:
    # error_model='numpy': IEEE division instead of Python's ZeroDivisionError check,
    # whose branch keeps LLVM from vectorizing the loop (sqrt(m) + eps > 0 anyway).
    # fastmath=False: no reassociation or FMA contraction, so the result is bit-identical
    # to update_numpy() and to the step-by-step float rounding of the equations.
    try:
        fused_update_numba = numba.njit(
            cache=True, fastmath=False, nogil=True, error_model='numpy')(_fused_update_py)
    except RuntimeError:  # pragma: no cover - no writable cache location: compile per process
        fused_update_numba = numba.njit(
            cache=False, fastmath=False, nogil=True, error_model='numpy')(_fused_update_py)
else:  # pragma: no cover
    fused_update_numba = None


def update_numpy(param, grad, ms, delta, eta, alpha_sgd, alpha_rmsprop,
                 mu1, mu2, one_minus_mu2, eps):
    """In-place NumPy version of the update (any shape, any float dtype, any strides)."""
    ms *= mu2
    tmp = one_minus_mu2 * grad
    tmp *= grad
    ms += tmp                                   # m = mu2*m + (1-mu2)*g*g
    den = numpy.sqrt(ms)
    den += eps
    numpy.divide(alpha_rmsprop, den, out=den)
    den += alpha_sgd
    den *= grad                                 # (alpha_SGD + alpha_RMSprop/(sqrt(m)+eps)) * g
    delta *= mu1
    delta -= den                                # Delta = mu1*Delta - ...
    numpy.multiply(eta, delta, out=tmp)
    param += tmp                                # theta = theta + eta*Delta


def can_use_numba(param, grad, ms, delta):
    """True when the fused kernel applies: numba present, one float32/float64 dtype,
    all four arrays C-contiguous with the same shape."""
    if fused_update_numba is None:
        return False
    dtype = param.dtype
    if dtype not in _NUMBA_DTYPES:
        return False
    for a in (param, grad, ms, delta):
        if (type(a) is not numpy.ndarray or a.dtype != dtype
                or not a.flags.c_contiguous or a.shape != param.shape):
            return False
    return True


def update(param, grad, ms, delta, eta, alpha_sgd, alpha_rmsprop,
           mu1, mu2, one_minus_mu2, eps):
    """Applies one update in place; scalars must already be of ``param.dtype``."""
    if can_use_numba(param, grad, ms, delta):
        fused_update_numba(param.reshape(-1), grad.reshape(-1), ms.reshape(-1),
                           delta.reshape(-1), eta, alpha_sgd, alpha_rmsprop,
                           mu1, mu2, one_minus_mu2, eps)
    else:
        update_numpy(param, grad, ms, delta, eta, alpha_sgd, alpha_rmsprop,
                     mu1, mu2, one_minus_mu2, eps)
