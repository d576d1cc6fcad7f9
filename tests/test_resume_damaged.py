"""A snapshot damaged after it was written (a flipped bit, a truncated file) in a real
2-rank run: ``--resume auto`` falls back to the newest whole snapshot and names the
damaged one, the resumed run still ends on an uninterrupted run's weights, and naming
the damaged snapshot with ``--resume`` is refused in one line naming the file."""
import os

from chainer_ext.extensions import multi_node_snapshot as snapshots
from chainer_ext.job.stop_signals import PREEMPTED_STATUS
from test_preemption import assert_same_weights, reference, train, with_fault


def errors(proc):
    return [line for line in proc.stdout.splitlines() if 'error:' in line]


def stopped_mid_second_epoch(data, out):
    """Snapshots epoch-1 (iteration 6) and iter-8 of a run stopped by SIGTERM."""
    proc, _ = with_fault(2, 'TERM', 'all', '7', data, out)
    assert proc.returncode == PREEMPTED_STATUS, proc.stdout[-5000:]
    root = os.path.join(out, 'snapshots')
    assert sorted(os.listdir(root)) == ['epoch-1', 'iter-8']
    return os.path.join(root, 'epoch-1'), os.path.join(root, 'iter-8')


def test_flipped_bit_in_a_rank_file(reference, tmp_path):
    data, ref = reference
    out = str(tmp_path / 'out')
    whole, newest = stopped_mid_second_epoch(data, out)
    victim = os.path.join(newest, 'rank-00001.npz')
    with open(victim, 'r+b') as f:
        f.seek(os.path.getsize(victim) // 2)
        byte = f.read(1)[0]
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte ^ 0x10]))
    assert snapshots.is_complete(newest)  # the size is right: only the checksum tells

    proc = train(2, data, out, '--resume', newest)
    assert proc.returncode == 2, proc.stdout[-5000:]
    assert errors(proc) == [
        'train_imagenet.py: error: --resume {}: not a usable snapshot: damaged: SHA-256 of {} '
        'differs from manifest.json; resume from another (--resume auto picks the newest '
        'whole one)'.format(newest, victim)]

    proc = train(2, data, out, '--resume', 'auto')
    assert proc.returncode == 0, proc.stdout[-5000:]
    lines = proc.stdout.splitlines()
    assert ('--resume auto: skipping {} (damaged: SHA-256 of rank-00001.npz differs from '
            'manifest.json; using {})'.format(newest, whole)) in lines
    assert 'resumed from {} (iteration 6)'.format(whole) in lines
    assert_same_weights(out, ref)


def test_truncated_rank_file(reference, tmp_path):
    data, _ = reference
    out = str(tmp_path / 'out')
    whole, newest = stopped_mid_second_epoch(data, out)
    victim = os.path.join(newest, 'rank-00000.npz')
    os.truncate(victim, os.path.getsize(victim) // 2)

    proc = train(2, data, out, '--resume', newest)
    assert proc.returncode == 2, proc.stdout[-5000:]
    assert errors(proc) == [
        'train_imagenet.py: error: --resume {}: not a usable snapshot: missing or truncated: '
        '{}; resume from another (--resume auto picks the newest whole one)'.format(
            newest, victim)]
    said = []
    assert snapshots.resolve_resume('auto', out, skipped=lambda *a: said.append(a)) == whole
    assert said == [(newest, 'missing or truncated: rank-00000.npz; using {}'.format(whole))]
