"""``python -m chainer_ext.evaluate`` on a model trained by ``mpiexec -n 2 train_imagenet.py``.

Top-1 and top-5 against numpy's stable argsort of logits computed apart from the
evaluator; the trainer's final (and epoch-1) validation figures reproduced exactly
from model.npz and the snapshots; ``mpiexec -n 2`` equal to one process; and every
refusal in one line with exit status 2.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy
import pytest

from conftest import REPO_ROOT

TRAIN = os.path.join(REPO_ROOT, 'train_imagenet.py')
N_CLASS = 7    # more than 5 classes, so that top-5 is not always 1
N_VAL = 21     # 11 and 10 images on two ranks; batches of 5 leave a short one


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """(train list, val list, root, out, log) of a 2-epoch, 2-rank run."""
    from conftest import write_tiny_imagenet
    from chainer_ext.job.mpiexec import run_mpi
    base = tmp_path_factory.mktemp('evaluate')
    train, val, root = write_tiny_imagenet(str(base / 'data'), n_train=56, n_val=N_VAL,
                                           n_class=N_CLASS)
    out = str(base / 'run')
    proc = run_mpi(2, [sys.executable, TRAIN, '--train', train, '--val', val, '--root', root,
                       '--arch', 'resnet18', '--insize', '32', '--batchsize', '4',
                       '--val-batchsize', '5', '--epoch', '2', '--loaderjob', '0',
                       '--seed', '3', '--no-plots', '--out', out],
                   timeout=600, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-5000:]
    with open(os.path.join(out, 'log')) as f:
        log = json.load(f)
    return train, val, root, out, log


def evaluate(*args, ranks=1, cwd=REPO_ROOT):
    command = [sys.executable, '-m', 'chainer_ext.evaluate'] + [str(a) for a in args]
    if ranks == 1:
        return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd)
    from chainer_ext.job.mpiexec import run_mpi
    return run_mpi(ranks, command, timeout=300, cwd=cwd)


def results(trained, weights, tmp_path, *extra, ranks=1):
    _, val, root, out, _ = trained
    path = tmp_path / 'top.json'
    proc = evaluate(weights, '--val', val, '--root', root, '--json', path, *extra,
                    ranks=ranks)
    assert proc.returncode == 0, (proc.stdout or '') + (proc.stderr or '')
    with open(path) as f:
        return json.load(f), proc.stdout


def logits_apart(trained):
    """Logits of every validation image: the saved predictor on the centre crops, one batch."""
    import chainer
    from chainer_ext import datasets
    from models import ResNet18
    _, val, root, out, _ = trained
    pairs = datasets.read_image_list(val, root)
    data = datasets.ImageNetDataset(pairs, root, 32, train=False)
    x = numpy.stack([data[i][0] for i in range(len(data))])
    t = numpy.array([label for _, label in pairs])
    net = ResNet18(n_class=N_CLASS)
    chainer.serializers.load_npz(os.path.join(out, 'model.npz'), net)
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        return net(x).array, t


def test_top1_top5_against_numpy_argsort(trained, tmp_path):
    got, stdout = results(trained, os.path.join(trained[3], 'model.npz'), tmp_path)
    y, t = logits_apart(trained)
    order = numpy.argsort(-y, axis=1, kind='stable')         # best class first
    rank = numpy.argmax(order == t[:, None], axis=1)
    correct1, correct5 = int((rank < 1).sum()), int((rank < 5).sum())
    assert 0 < correct1 < correct5 < N_VAL                    # neither test is trivial
    assert (got['correct_top1'], got['correct_top5'], got['n']) == (correct1, correct5, N_VAL)
    assert got['top1'] == correct1 / N_VAL and got['top5'] == correct5 / N_VAL
    assert (got['arch'], got['n_class'], got['insize']) == ('resnet18', N_CLASS, 32)
    assert 'top-1 {!r} ({} of {})'.format(correct1 / N_VAL, correct1, N_VAL) in stdout
    assert 'top-5 {!r} ({} of {})'.format(correct5 / N_VAL, correct5, N_VAL) in stdout


def test_reproduces_the_trainers_validation_exactly(trained, tmp_path):
    _, _, _, out, log = trained
    assert [e['epoch'] for e in log] == [1, 2]
    final, _ = results(trained, os.path.join(out, 'model.npz'), tmp_path)
    assert final['top1'] == log[-1]['validation/main/accuracy']
    assert final['top5'] == log[-1]['validation/main/top5']
    # a snapshot gives the validation of its own epoch, with another batch size too
    first, _ = results(trained, os.path.join(out, 'snapshots', 'epoch-1'), tmp_path,
                       '--batchsize', '3')
    assert first['iteration'] == log[0]['iteration']
    assert first['top1'] == log[0]['validation/main/accuracy']
    assert first['top5'] == log[0]['validation/main/top5']


def test_two_ranks_give_what_one_gives(trained, tmp_path):
    weights = os.path.join(trained[3], 'snapshots', 'epoch-2')
    one, _ = results(trained, weights, tmp_path)
    two, stdout = results(trained, weights, tmp_path, ranks=2)
    assert two['ranks'] == 2 and one['ranks'] == 1
    for key in ('top1', 'top5', 'correct_top1', 'correct_top5', 'n'):
        assert two[key] == one[key], key
    assert two['loss'] == pytest.approx(one['loss'], rel=1e-6)
    assert stdout.count('top-1 ') == 1                        # rank 0 alone prints


def _copy_run(trained, tmp_path, **config_changes):
    """A run folder with the trained snapshot and model.npz, its config.json changed."""
    out = trained[3]
    run = tmp_path / 'other'
    shutil.copytree(os.path.join(out, 'snapshots', 'epoch-2'),
                    str(run / 'snapshots' / 'epoch-2'))
    shutil.copy(os.path.join(out, 'model.npz'), str(run / 'model.npz'))
    with open(os.path.join(out, 'config.json')) as f:
        config = json.load(f)
    for key, value in config_changes.items():
        if key == 'arch':
            config['args']['arch'] = value
        else:
            config[key] = value
    with open(str(run / 'config.json'), 'w') as f:
        json.dump(config, f)
    return run


@pytest.mark.parametrize('case', ['no-model', 'no-val', 'no-root', 'label', 'image', 'arch',
                                  'classes', 'no-config', 'json-folder'])
def test_refusals_in_one_line(trained, tmp_path, case):
    """Each refusal is one problem naming the file, flag or value (the command prints
    it as its one line and exits 2: shown for a missing model)."""
    _, val, root, out, _ = trained
    model = os.path.join(out, 'model.npz')
    args, named = [model, '--val', val, '--root', root], None
    if case == 'no-model':
        args[0] = named = str(tmp_path / 'missing.npz')
    elif case == 'no-val':
        args[2] = named = str(tmp_path / 'missing.txt')
    elif case == 'no-root':
        args[4] = named = str(tmp_path / 'nowhere')
    elif case == 'label':
        bad = tmp_path / 'val.txt'
        with open(val) as f:
            lines = f.read().splitlines()
        lines[4] = lines[4].rsplit(' ', 1)[0] + ' {}'.format(N_CLASS)   # one past the last class
        bad.write_text('\n'.join(lines) + '\n')
        args[2] = str(bad)
        named = '{}:5: label {}'.format(bad, N_CLASS)
    elif case == 'image':
        bad = tmp_path / 'val.txt'
        with open(val) as f:
            lines = f.read().splitlines()
        lines[2] = 'img/missing.JPEG 1'
        bad.write_text('\n'.join(lines) + '\n')
        args[2] = str(bad)
        named = '{}:3: image missing: {}'.format(bad, os.path.join(root, 'img/missing.JPEG'))
    elif case == 'arch':
        snapshot = str(_copy_run(trained, tmp_path, arch='resnet50') / 'snapshots' / 'epoch-2')
        args[0] = snapshot
        named = 'weights of resnet18, but {} records --arch resnet50'.format(
            tmp_path / 'other' / 'config.json')
    elif case == 'classes':
        args[0] = str(_copy_run(trained, tmp_path, n_class=9) / 'model.npz')
        named = 'a {}-class classifier'.format(N_CLASS)
    elif case == 'no-config':
        run = _copy_run(trained, tmp_path)
        os.remove(str(run / 'config.json'))
        args[0] = str(run / 'model.npz')
        named = str(run / 'config.json')
    elif case == 'json-folder':
        named = str(tmp_path / 'nowhere' / 'top.json')
        args += ['--json', named]
    if case == 'no-model':  # the command's exit status and line, once
        proc = evaluate(*args)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and 'Traceback' not in proc.stderr, proc.stderr
        assert lines[0] == 'python -m chainer_ext.evaluate: error: {}: no such file or ' \
            'snapshot folder'.format(named)
        assert proc.stdout == ''
        return
    import chainermn
    from chainer_ext.machine import cuda_env
    from chainer_ext.job import evaluation as ev
    from chainer_ext.job import train_flags
    from chainer_ext.job.input_error import InputError
    parsed = ev.build_parser().parse_args(args)
    gpus = cuda_env.survey()
    train_flags.resolve_device(parsed, gpus)
    with pytest.raises(InputError) as raised:
        ev.evaluate(parsed, chainermn.create_communicator('naive'), gpus)
    assert raised.value.status == 2 and len(raised.value.problems) == 1
    assert named in raised.value.problems[0]


def test_refusal_under_mpiexec_is_one_line(trained, tmp_path):
    _, val, root, out, _ = trained
    proc = evaluate(os.path.join(out, 'model.npz'), '--val', str(tmp_path / 'missing.txt'),
                    '--root', root, ranks=2)
    assert proc.returncode == 2
    said = [line for line in proc.stdout.splitlines() if 'chainer_ext.evaluate' in line]
    assert said == ['python -m chainer_ext.evaluate: error: --val {}: no such '
                    'file'.format(tmp_path / 'missing.txt')]
    assert 'Traceback' not in proc.stdout


def test_a_wrong_root_names_the_first_line_of_the_list(trained, tmp_path):
    """With every image missing, the one line names line 1, not the first in string
    order (``val.txt:10`` sorts before ``val.txt:1:``)."""
    _, val, _, out, _ = trained
    empty = tmp_path / 'elsewhere'
    empty.mkdir()
    with open(val) as f:
        first = f.readline().split()[0]
    proc = evaluate(os.path.join(out, 'model.npz'), '--val', val, '--root', empty)
    assert proc.returncode == 2, proc.stderr
    assert [line for line in proc.stderr.splitlines() if 'error' in line] == [
        'python -m chainer_ext.evaluate: error: {}:1: image missing: {} (and {} more)'.format(
            val, os.path.join(str(empty), first), N_VAL - 1)]


def test_a_main_after_mpi_ended_in_this_process_raises_before_anything(monkeypatch, tmp_path):
    """MPI finalized by an earlier main() (a notebook's earlier cell): the next main() raises
    one RuntimeError instead of calling MPI, which would abort the interpreter."""
    import types
    from chainer_ext.job import evaluation as evaluate
    monkeypatch.setitem(sys.modules, 'mpi4py.MPI', types.SimpleNamespace(
        Is_finalized=lambda: True))
    with pytest.raises(RuntimeError, match=r'^MPI has ended in this process \(a main\(\) '
                                           r'called earlier finalized it\)'):
        evaluate.main([str(tmp_path / 'model.npz'), '--val', str(tmp_path / 'val.txt')])
