"""Launched with mpiexec -n 2 / -n 3: the float16 PackedRingCommunicator on every rank.

Checks (each asserts on every rank):
  numerics   result == a NumPy float16 re-enactment of the ring, bit for bit;
             within the derived rounding bound of the exact mean; float16-
             representable; bit-identical on all ranks
  zero_fill  None gradients with zero_fill True/False; uninitialised params;
             mismatched layouts raise on every rank
  nonfinite  float16 overflow and inf-inf: same verdict/count/bits everywhere
  bytes      float16 sends exactly half of the float32 ring's bytes
  float32    the float32 ring agrees with ChainerMN's naive communicator
  contract   bcast_data, allreduce, bcast_obj, send/recv, split, ...
  training   50 MomentumSGD updates keep parameters identical on all ranks
"""
import hashlib

import numpy as np

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer
import chainer.functions as F
import chainer.links as L
import chainermn

from chainer_ext.communicators.packed_ring_communicator import PackedRingCommunicator
from chainer_ext.communicators import create_communicator
from rank_checks import abort_on_exception

chainer.disable_experimental_feature_warning = True
U = 2.0 ** -11          # float16 unit roundoff
ETA = 2.0 ** -25        # half the spacing of float16 subnormals

comm = create_communicator('naive', allreduce_grad_dtype='float16')
p, r = comm.size, comm.rank
assert isinstance(comm, PackedRingCommunicator), type(comm)
assert comm.get_config('allreduce_grad_dtype') == np.float16

check = abort_on_exception(comm)


def digest(arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def same_on_all_ranks(arrays, what):
    d = comm.mpi_comm.allgather(digest(arrays))
    check(all(x == d[0] for x in d), what, 'differs across ranks', d)


SHAPES = {'a': (7, 5), 'b': (5,), 'c': (1,), 'd': (3, 3, 2, 2), 'e': (1001,)}


def make_link():
    link = chainer.Link()
    with link.init_scope():
        for name, shape in SHAPES.items():
            setattr(link, name, chainer.Parameter(np.zeros(shape, np.float32)))
        link.u = chainer.Parameter()          # never initialised: skipped
    return link


def random_grads(seed):
    rng = np.random.RandomState(seed)
    out = {}
    for name, shape in SHAPES.items():
        mag = 10.0 ** rng.uniform(-7, 2, size=shape)
        out[name] = (rng.standard_normal(shape) * mag).astype(np.float32)
    return out


def set_grads(link, grads):
    for name, g in grads.items():
        getattr(link, name).grad = None if g is None else g.copy()


def ring_reference(all_packed, p):
    """NumPy float16 re-enactment of the ring: chunk c summed from rank c on."""
    n = all_packed[0].size
    out = np.empty(n, np.float16)
    for c in range(p):
        b, e = n * c // p, n * (c + 1) // p
        s = all_packed[c][b:e].copy()
        for k in range(1, p):
            s = s + all_packed[(c + k) % p][b:e]       # float32 sum, one rounding
        out[b:e] = (s.astype(np.float32) * np.float32(1.0 / p)).astype(np.float16)
    return out


# -- numerics ------------------------------------------------------------
link = make_link()
mine = random_grads(100 + r)
set_grads(link, mine)
everyone = comm.mpi_comm.allgather(mine)
comm.multi_node_mean_grad(link)
names = sorted(SHAPES)
result = np.concatenate([getattr(link, n).grad.ravel() for n in names])
check(link.u.array is None, 'uninitialised parameter was initialised')
check(comm.last_mean_grad_finite and comm.last_nonfinite_elements == 0,
      'finite data reported non-finite')

packed = [np.concatenate([g[n].ravel() for n in names]).astype(np.float16)
          for g in everyone]
ref = ring_reference(packed, p).astype(np.float32)
check(np.array_equal(result, ref), 'not the float16 ring re-enactment',
      np.nonzero(result != ref)[0][:10])

inputs = np.stack([np.concatenate([g[n].ravel() for n in names]).astype(np.float64)
                   for g in everyone])
exact = inputs.mean(axis=0)
A = np.abs(inputs).sum(axis=0)
bound = (p + 1) * U * (1 + U) ** (p + 2) * A / p + 2.0 ** -23 * A / p + (p + 1) * ETA
err = np.abs(result - exact)
check(np.all(err <= bound), 'rounding bound violated', (err / bound).max())
check((err > 0).any(), 'no rounding at all: not a float16 reduction?')
check(np.array_equal(result.astype(np.float16).astype(np.float32), result),
      'result not representable in float16')
check(err.max() / bound[err.argmax()] < 1, 'bound')
same_on_all_ranks([result], 'mean gradient')
if r == 0:
    print('numerics: max err/bound = {:.3f}'.format((err / bound).max()))

# Many small segments per hop (double-buffered receives reused), same bits.
small = PackedRingCommunicator(comm.mpi_comm, allreduce_grad_dtype=np.float16,
                               segment_bytes=64)
set_grads(link, mine)
small.multi_node_mean_grad(link)
got = np.concatenate([getattr(link, n).grad.ravel() for n in names])
check(np.array_equal(got, result), 'segmented hops changed the result')
check(small.bytes_sent == comm.bytes_sent, 'segmented bytes', small.bytes_sent)
small.finalize()

# Fewer elements than ranks: empty chunks.
tiny = chainer.Link()
with tiny.init_scope():
    tiny.w = chainer.Parameter(np.zeros(2, np.float32))
tiny.w.grad = np.array([r + 0.5, -r], np.float32)
comm.multi_node_mean_grad(tiny)
want = np.array([sum(k + 0.5 for k in range(p)), -sum(range(p))], np.float32) / p
check(np.allclose(tiny.w.grad, want, rtol=2 * U), 'tiny', tiny.w.grad, want)
same_on_all_ranks([tiny.w.grad], 'tiny result')

# -- zero_fill and None gradients --------------------------------------------
grads = random_grads(200 + r)
if r == 0:
    grads['b'] = None                       # unused link on rank 0 only
set_grads(link, grads)
link.c.grad = None                          # unused everywhere
everyone = comm.mpi_comm.allgather(grads)
comm.multi_node_mean_grad(link, zero_fill=True)
check(link.b.grad is not None and link.c.grad is not None, 'zero_fill left None')
check(link.u.array is None, 'zero_fill touched an uninitialised parameter')
check(np.all(link.c.grad == 0), 'all-None gradient not zero', link.c.grad)
b_inputs = [np.zeros(5, np.float16) if g['b'] is None else g['b'].astype(np.float16)
            for g in everyone]
b_sum = b_inputs[0].astype(np.float64)
for x in b_inputs[1:]:
    b_sum = b_sum + x
check(np.allclose(link.b.grad, b_sum / p, rtol=4 * p * U, atol=1e-7),
      'zero-filled mean wrong', link.b.grad, b_sum / p)
same_on_all_ranks([getattr(link, n).grad for n in names], 'zero_fill result')

set_grads(link, random_grads(300 + r))
link.c.grad = None
comm.multi_node_mean_grad(link, zero_fill=False)
check(link.c.grad is None, 'zero_fill=False must skip a None gradient')
same_on_all_ranks([getattr(link, n).grad for n in names if n != 'c'],
                  'zero_fill=False result')

set_grads(link, random_grads(400 + r))
if r == 0:
    link.b.grad = None                      # layouts now differ between ranks
try:
    comm.multi_node_mean_grad(link, zero_fill=False)
    check(False, 'mismatched layouts did not raise')
except ValueError as e:
    check('different numbers of gradient elements' in str(e), str(e))

# -- non-finite values ----------------------------------------------------------
set_grads(link, random_grads(500 + r))
link.e.grad[0] = 40000.0                    # p * 40000 > 65504: sum overflows
if r == 0:
    link.e.grad[1] = 1e6                    # overflows when packed
    link.e.grad[2] = 1e6                    # +inf here ...
if r == 1:
    link.e.grad[2] = -1e6                   # ... -inf there: NaN
before = comm.nonfinite_count
comm.multi_node_mean_grad(link)
check(not comm.last_mean_grad_finite, 'overflow not detected')
check(comm.last_nonfinite_elements == 3, comm.last_nonfinite_elements)
check(comm.nonfinite_count == before + 1, comm.nonfinite_count)
e = link.e.grad
check(np.isposinf(e[0]) and np.isposinf(e[1]) and np.isnan(e[2]), e[:3])
check(np.isfinite(e[3:]).all(), 'finite elements damaged')
verdicts = comm.mpi_comm.allgather(
    (comm.last_mean_grad_finite, comm.last_nonfinite_elements,
     comm.nonfinite_count))
check(all(v == verdicts[0] for v in verdicts), 'verdicts differ', verdicts)
same_on_all_ranks([getattr(link, n).grad for n in names], 'non-finite result')
set_grads(link, random_grads(600 + r))
comm.multi_node_mean_grad(link)
check(comm.last_mean_grad_finite and comm.nonfinite_count == before + 1,
      'finite call after overflow')
set_grads(link, random_grads(700 + r))
link.a.grad[0, 0] = 1e6
with chainer.using_config('debug', True):
    try:
        comm.multi_node_mean_grad(link)
        check(False, 'debug mode did not raise on non-finite')
    except ValueError as e:
        check('diverged' in str(e), str(e))

# -- bytes: float16 sends half of float32 ------------------------------------
comm32 = create_communicator('flat', allreduce_grad_dtype='float32')
check(isinstance(comm32, PackedRingCommunicator), type(comm32))
n_elems = sum(int(np.prod(s)) for s in SHAPES.values())
grads = random_grads(800 + r)
set_grads(link, grads)
b16 = comm.bytes_sent
comm.multi_node_mean_grad(link)
sent16 = comm.bytes_sent - b16
set_grads(link, grads)
b32 = comm32.bytes_sent
comm32.multi_node_mean_grad(link)
sent32 = comm32.bytes_sent - b32
check(2 * sent16 == sent32, 'float16 bytes', sent16, 'float32 bytes', sent32)
total16 = comm.mpi_comm.allreduce(sent16)
check(total16 == 2 * (p - 1) * n_elems * 2, 'ring total', total16)
if r == 0:
    print('bytes per rank: float16 {} float32 {}'.format(sent16, sent32))

# -- float32 ring == ChainerMN naive --------------------------------------------
naive = chainermn.create_communicator('naive')
link2 = make_link()
set_grads(link, grads)
set_grads(link2, grads)
comm32.multi_node_mean_grad(link)
naive.multi_node_mean_grad(link2)
for n in names:
    a, b = getattr(link, n).grad, getattr(link2, n).grad
    if p == 2:      # a single float32 addition: identical whatever the order
        check(np.array_equal(a, b), 'float32 ring != naive', n)
    else:
        check(np.allclose(a, b, rtol=1e-6, atol=1e-12), 'float32 ring != naive', n)
check(comm32.last_mean_grad_finite, 'float32 finite flag')

# -- contract calls ---------------------------------------------------------------
link3 = make_link()
for name in SHAPES:
    getattr(link3, name).array[...] = r + 1
comm.bcast_data(link3)
check(all(np.all(getattr(link3, n).array == 1) for n in SHAPES), 'bcast_data')
x = np.arange(6, dtype=np.float32) * (r + 1)
check(np.array_equal(comm.allreduce(x), np.arange(6) * sum(range(1, p + 1))),
      'allreduce')
obj = comm.bcast_obj({'seed': 7} if r == 0 else None)
check(obj == {'seed': 7}, 'bcast_obj', obj)
check(comm.allreduce_obj(r) == sum(range(p)), 'allreduce_obj')
gathered = comm.gather_obj(r)
check(r != 0 or gathered == list(range(p)), 'gather_obj', gathered)
right, left = (r + 1) % p, (r - 1) % p
if r % 2 == 0:
    comm.send(np.full(3, r, np.float32), dest=right, tag=5)
    got = comm.recv(source=left, tag=5)
else:
    got = comm.recv(source=left, tag=5)
    comm.send(np.full(3, r, np.float32), dest=right, tag=5)
check(np.array_equal(got, np.full(3, left)), 'send/recv', got)
check(comm.intra_size == p and comm.inter_size == 1 and comm.intra_rank == r
      and comm.inter_rank == 0, 'ranks')
comm.set_config('batched_copy', False)
check(comm.get_config('batched_copy') is False, 'batched_copy config')
sub = comm.split(color=r % 2, key=r)
check(type(sub) is PackedRingCommunicator, type(sub))
check(sub.get_config('allreduce_grad_dtype') == np.float16, 'split dtype')
check(sub.size == len(range(r % 2, p, 2)), 'split size', sub.size)
set_grads(link, random_grads(900 + r))
members = comm.mpi_comm.allgather(r % 2)
everyone = comm.mpi_comm.allgather(random_grads(900 + r))
sub.multi_node_mean_grad(link)
group = [g for g, m in zip(everyone, members) if m == r % 2]
packed = [np.concatenate([g[n].ravel() for n in names]).astype(np.float16)
          for g in group]
ref = ring_reference(packed, sub.size).astype(np.float32)
got = np.concatenate([getattr(link, n).grad.ravel() for n in names])
check(np.array_equal(got, ref), 'split communicator result')
sub.finalize()

# -- training: 50 MomentumSGD updates, parameters identical on all ranks -------------
np.random.seed(1000 + r)                  # different initial weights per rank
model = L.Classifier(chainer.Sequential(L.Linear(10, 16), F.relu, L.Linear(16, 3)))
model(np.zeros((1, 10), np.float32), np.zeros(1, np.int32))
opt = chainermn.create_multi_node_optimizer(
    chainer.optimizers.MomentumSGD(lr=0.1), comm)
opt.setup(model)
rng = np.random.RandomState(2000 + r)     # different data per rank
w_true = np.random.RandomState(0).standard_normal((10, 3)).astype(np.float32)
initial = None
for it in range(51):                      # the first update only broadcasts
    x = rng.standard_normal((16, 10)).astype(np.float32)
    t = (x @ w_true).argmax(axis=1).astype(np.int32)
    opt.update(model, x, t)
    if it == 0:
        initial = [p_.array.copy() for _, p_ in sorted(model.namedparams())]
        same_on_all_ranks(initial, 'parameters after the broadcast')
final = [p_.array for _, p_ in sorted(model.namedparams())]
check(any(not np.array_equal(a, b) for a, b in zip(initial, final)), 'no learning')
same_on_all_ranks(final, 'parameters after 50 updates')
check(comm.last_mean_grad_finite, 'training gradients non-finite')

comm32.finalize()
comm.finalize()
if r == 0:
    print('comm_fp16: all checks passed on {} ranks'.format(p))
