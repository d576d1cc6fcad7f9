"""Bad input is refused at start on every rank, and --check-dataset spreads over ranks."""
import os
import sys

from conftest import REPO_ROOT, write_tiny_imagenet
from chainer_ext.job.mpiexec import run_mpi

TRAIN = os.path.join(REPO_ROOT, 'train_imagenet.py')


def _run(n, data, out, *extra):
    train, val, root = data
    return run_mpi(n, [sys.executable, TRAIN, '--train', train, '--val', val, '--root', root,
                       '--arch', 'resnet18', '--insize', '32', '--batchsize', '4',
                       '--epoch', '1', '--loaderjob', '0', '--out', out] + list(extra),
                   timeout=300, cwd=REPO_ROOT)


def test_missing_image_duplicate_line_and_foreign_label_stop_before_training(tmp_path):
    data = write_tiny_imagenet(str(tmp_path / 'data'))
    train, val, root = data
    with open(train) as f:
        lines = f.readlines()
    os.remove(os.path.join(root, lines[5].split()[0]))               # line 6: missing
    open(os.path.join(root, lines[9].split()[0]), 'w').close()       # line 10: empty
    with open(train, 'a') as f:
        f.write(lines[2])                                            # line 49: duplicate of 3
    with open(val) as f:
        val_lines = f.readlines()
    with open(val, 'w') as f:                                        # line 16: classes are 0..3
        f.writelines(val_lines[:-1] + [val_lines[-1].split()[0] + ' 7\n'])
    proc = _run(2, data, str(tmp_path / 'out'))
    assert proc.returncode == 1, proc.stdout[-3000:]
    out = proc.stdout
    assert '{}:49: duplicate of line 3'.format(train) in out
    assert '{}:16: label 7 out of range [0, 4)'.format(val) in out
    assert not os.path.exists(os.path.join(str(tmp_path / 'out'), 'config.json'))

    # with the list itself fixed, the file checks run on every rank's shard
    with open(train, 'w') as f:
        f.writelines(lines)
    with open(val, 'w') as f:
        f.writelines(val_lines)
    proc = _run(2, data, str(tmp_path / 'out'))
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert '{}:6: image missing'.format(train) in proc.stdout
    assert '{}:10: image is empty'.format(train) in proc.stdout
    assert '2 problem(s) in the input' in proc.stdout
    assert not os.path.exists(os.path.join(str(tmp_path / 'out'), 'config.json'))


def test_check_dataset_over_three_ranks(tmp_path):
    data = write_tiny_imagenet(str(tmp_path / 'data'))
    proc = _run(3, data, str(tmp_path / 'out'), '--check-dataset')
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert 'check-dataset: 0 problem(s)' in proc.stdout
    train, val, root = data
    with open(train) as f:
        victim = f.readlines()[7].split()[0]
    with open(os.path.join(root, victim), 'r+b') as f:
        f.truncate(200)
    with open(val, 'a') as f:
        f.write('img/nothing.JPEG 1\n')
    proc = _run(3, data, str(tmp_path / 'out'), '--check-dataset')
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert '{}:8:'.format(train) in proc.stdout
    assert '{}:17:'.format(val) in proc.stdout
    assert 'check-dataset: 2 problem(s)' in proc.stdout
