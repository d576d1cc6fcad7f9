"""The batch-size sweep: the emulated workers are a real data-parallel step, and each
recipe's settings reach the optimizer and batch normalization (--quick run)."""
import copy
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy
import pytest

import chainer_ext  # noqa: F401  (compatibility stand-ins before chainer loads)
import chainer
import chainer.links as L

from chainer_ext.experiments import large_batch
from chainer_ext.experiments.emulated_workers import EmulatedWorkersUpdater
from models import CifarResNet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_model(seed=0):
    numpy.random.seed(seed)
    return L.Classifier(CifarResNet(n=1, n_class=3, widths=(4, 4, 4), in_channels=1))


def toy_data(n, seed=1):
    rng = numpy.random.RandomState(seed)
    x = rng.normal(size=(n, 1, 8, 8)).astype(numpy.float32)
    t = rng.randint(0, 3, size=n).astype(numpy.int32)
    return list(zip(x, t))


def emulated(model, data, n_workers, lr, iterations=1):
    optimizer = chainer.optimizers.SGD(lr=lr)
    optimizer.setup(model)
    iterator = chainer.iterators.SerialIterator(data, len(data) // iterations, shuffle=False)
    updater = EmulatedWorkersUpdater(iterator, optimizer, n_workers=n_workers)
    for _ in range(iterations):
        updater.update()
    return updater


def worker_gradient(model, chunk):
    """One worker's gradient, computed on its own copy of the model."""
    replica = copy.deepcopy(model)
    replica.cleargrads()
    x = numpy.stack([x for x, _ in chunk])
    t = numpy.array([t for _, t in chunk])
    replica(x, t).backward()
    return {name: p.grad.copy() for name, p in replica.namedparams()}


def test_update_is_the_mean_of_the_workers_gradients():
    data = toy_data(12)
    model = small_model()
    before = {name: p.array.copy() for name, p in model.namedparams()}
    grads = [worker_gradient(model, data[4 * k:4 * (k + 1)]) for k in range(3)]
    emulated(model, data, n_workers=3, lr=0.5)
    for name, p in model.namedparams():
        mean = sum(g[name] for g in grads) / 3.0
        numpy.testing.assert_allclose(p.array, before[name] - 0.5 * mean, rtol=1e-5,
                                      atol=1e-6, err_msg=name)


def test_each_worker_keeps_its_own_moving_averages():
    data = toy_data(16)   # 2 iterations x 2 workers x 4 images
    model = small_model()
    replicas = [copy.deepcopy(model) for _ in range(2)]
    updater = emulated(model, data, n_workers=2, lr=1e-12, iterations=2)
    # Worker k saw images [4k, 4k + 4) in iteration 1 and [8 + 4k, 8 + 4k + 4) in 2.
    for k, replica in enumerate(replicas):
        for start in (4 * k, 8 + 4 * k):
            x = numpy.stack([x for x, _ in data[start:start + 4]])
            t = numpy.array([t for _, t in data[start:start + 4]])
            replica(x, t)
    links = [link for name, link in sorted(model.namedlinks())
             if isinstance(link, L.BatchNormalization)]
    first = links[0]
    # Independent check of one link: decay 0.9 from zero, two batch means.
    conv = replicas[0].predictor.conv1
    with chainer.using_config('train', True):
        h = [conv(numpy.stack([x for x, _ in data[s:s + 4]])).array for s in (0, 8)]
    by_hand = 0.9 * (0.1 * h[0].mean(axis=(0, 2, 3))) + 0.1 * h[1].mean(axis=(0, 2, 3))
    numpy.testing.assert_allclose(updater.worker_statistics(0)[0][0], by_hand, rtol=1e-4,
                                  atol=1e-6)
    for k, replica in enumerate(replicas):
        expected = [link for name, link in sorted(replica.namedlinks())
                    if isinstance(link, L.BatchNormalization)]
        for (mean, var), link in zip(updater.worker_statistics(k), expected):
            numpy.testing.assert_allclose(mean, link.avg_mean, rtol=1e-5, atol=1e-7)
            numpy.testing.assert_allclose(var, link.avg_var, rtol=1e-5, atol=1e-7)
    assert not numpy.allclose(updater.worker_statistics(0)[0][0],
                              updater.worker_statistics(1)[0][0])
    updater.average_statistics()
    numpy.testing.assert_allclose(
        first.avg_mean, (updater.worker_statistics(0)[0][0] +
                         updater.worker_statistics(1)[0][0]) / 2, rtol=1e-6)


def test_a_batch_that_does_not_split_is_refused():
    model = small_model()
    with pytest.raises(ValueError, match='10 examples does not split over 3 workers'):
        emulated(model, toy_data(10), n_workers=3, lr=0.1)


# ------------------------------------------------------------ the --quick sweep

def expected_lr(recipe, epoch, batch, epochs):
    """A.2's schedules written out again: slow start or Goyal et al.'s (with warm-up), or
    LARS's gamma: 0 -> 10 over 5 of 90 epochs, then 10 (1 - progress) ** 2 (batch < 16k)."""
    eta = 0.1 * batch / 256
    f = epochs / 90.0
    if recipe.lr == 'lars':
        if epoch < 5 * f:
            return 10.0 * epoch / (5 * f)
        return 10.0 * (1 - (epoch - 5 * f) / (epochs - 5 * f)) ** 2
    if recipe.lr == 'slow_start':
        for edge, factor in ((40, 0.5), (70, 0.075), (85, 0.01)):
            if epoch < edge * f:
                return factor * eta
        return 0.001 * eta
    if eta > 0.1 and epoch < 5 * f:
        return 0.1 + (eta - 0.1) * epoch / (5 * f)
    for edge, factor in ((30, 1.0), (60, 0.1), (80, 0.01)):
        if epoch < edge * f:
            return factor * eta
    return 0.001 * eta


def expected_alpha(recipe, epoch, epochs):
    """A.1's ELU transition with beta_center = 10, beta_period = 5 (of 90 epochs)."""
    if recipe.alpha_sgd == 'none':
        return None
    if recipe.alpha_sgd == 'one':
        return 1.0
    center, period = 10 * epochs / 90.0, 5 * epochs / 90.0
    if epoch < center:
        return 0.5 * math.exp(2 * (epoch - center) / period)
    return min(1.0, 0.5 + (epoch - center) / period)


#: Training digits of every run: scikit-learn's 1,797, less the 20 % (360) held out.
N_TRAIN = 1437
#: Where each schedule changes, in epochs of a 90-epoch run (A.1, A.2; Goyal et al.).
BOUNDARIES = {'slow_start': (40, 70, 85), 'goyal': (5, 30, 60, 80), 'elu': (10, 12.5),
              'one': ()}


@pytest.mark.parametrize('recipe_name, batch', [
    ('paper', 64), ('goyal', 64), ('goyal', 512), ('goyal-lr', 512)])
def test_every_update_runs_the_schedule_of_its_epoch(monkeypatch, recipe_name, batch):
    """The trace of every update, with each update's epoch derived here (update t, from
    0, starts after t batches: t * batch / examples), checked on both sides of every
    boundary of the run's schedules."""
    real = large_batch.HyperparameterTrace.thinned
    monkeypatch.setattr(large_batch.HyperparameterTrace, 'thinned',
                        lambda self, b, n: real(self, b, n, points=len(self.rows)))
    epochs = 2
    record = large_batch.train_one(recipe_name, batch, seed=0, epochs=epochs)
    recipe = large_batch.RECIPES[recipe_name]
    updates = round(epochs * N_TRAIN / batch)
    assert [row[0] for row in record['trace']] == list(range(updates))
    lrs = {}
    for t, _, lr, alpha, _ in record['trace']:
        epoch = t * batch / N_TRAIN
        where = '{} batch {} update {} (epoch {:.4f})'.format(recipe_name, batch, t, epoch)
        assert lr == pytest.approx(expected_lr(recipe, epoch, batch, epochs), rel=1e-6), where
        assert alpha == pytest.approx(expected_alpha(recipe, epoch, epochs), rel=1e-6), where
        lrs[t] = lr
    eta = 0.1 * batch / 256
    edges = BOUNDARIES[recipe.lr] + BOUNDARIES[recipe.alpha_sgd]
    if recipe.lr == 'goyal' and eta <= 0.1:
        edges = edges[1:]  # no warm-up below eta_base 0.1
    for edge in edges:
        first_after = math.ceil(edge * epochs / 90 * N_TRAIN / batch)  # first t at or past
        assert 1 <= first_after < updates, (edge, first_after)     # both sides in the run
        if edge in BOUNDARIES[recipe.lr][int(recipe.lr == 'goyal'):]:  # a step of lr
            assert lrs[first_after] < lrs[first_after - 1], (edge, first_after)


@pytest.fixture(scope='module')
def quick_sweep(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('sweep'))
    proc = subprocess.run(
        [sys.executable, '-m', 'chainer_ext.experiments.large_batch', '--quick', '--out', out,
         '--jobs', '2'], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc


def test_quick_sweep_writes_every_output(quick_sweep):
    out, proc = quick_sweep
    for name in ('results.json', 'table.md', 'facts.md', 'top1_vs_batch.png', 'runs.jsonl'):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    with open(os.path.join(out, 'results.json')) as f:
        results = json.load(f)
    plan = large_batch.QUICK
    keys = {(r['recipe'], r['total_batch'], r['seed']) for r in results['records']}
    assert keys == {(r, b, s) for r in large_batch.RECIPES for b in plan['batches']
                    for s in plan['seeds']}
    for record in results['records']:
        assert 0.0 <= record['top1'] <= 1.0
        assert record['workers'] * 32 == record['total_batch']
    with open(os.path.join(out, 'table.md')) as f:
        table = f.read()
    for recipe in large_batch.RECIPES:
        assert '| {} |'.format(recipe) in table
    assert 'top1_vs_batch.png' in proc.stdout


def test_each_recipe_reaches_the_optimizer_and_batch_normalization(quick_sweep):
    out, _ = quick_sweep
    with open(os.path.join(out, 'results.json')) as f:
        records = json.load(f)['records']
    for record in records:
        recipe = large_batch.RECIPES[record['recipe']]
        batch, epochs = record['total_batch'], record['epochs']
        assert record['bn_decay'] == ([0.0] if recipe.bn == 'last_batch' else [0.9]), record
        assert len(record['trace']) >= 5
        for t, traced_epoch, lr, alpha, lr_rmsprop in record['trace']:
            epoch = t * batch / N_TRAIN
            assert traced_epoch == pytest.approx(epoch)
            where = '{} batch {} update {}'.format(recipe.name, batch, t)
            assert lr == pytest.approx(expected_lr(recipe, epoch, batch, epochs), rel=1e-6,
                                       abs=1e-12), where
            alpha_want = expected_alpha(recipe, epoch, epochs)
            assert alpha == (None if alpha_want is None else
                             pytest.approx(alpha_want, rel=1e-6)), where
            assert lr_rmsprop == {'momentum': 0.0, 'lars': None}.get(recipe.optimizer,
                                                                      3e-4), where
        assert record['blas_threads'] >= 1
    # The ablations differ from the paper's recipe where they should, within one run.
    first = {r['recipe']: r['trace'][0] for r in records if r['total_batch'] == 64}
    assert first['paper'][3] < 0.01 and first['no-rmsprop-warmup'][3] == 1.0
    assert first['goyal-lr'][2] == pytest.approx(2 * first['paper'][2])
    assert first['lars'][2] == 0.0 and first['lars'][3] is None   # warm-up from 0


def test_a_sweep_of_some_recipes_keeps_every_finished_run(quick_sweep, tmp_path):
    """Finished runs are taken from results.json too (a committed sweep has no runs.jsonl),
    and a sweep of one recipe neither trains nor drops the others."""
    out, _ = quick_sweep
    copy_ = str(tmp_path / 'sweep')
    os.makedirs(copy_)
    with open(os.path.join(out, 'results.json')) as f:
        before = json.load(f)
    with open(os.path.join(copy_, 'results.json'), 'w') as f:
        json.dump(before, f)
    proc = subprocess.run(
        [sys.executable, '-m', 'chainer_ext.experiments.large_batch', '--quick', '--out',
         copy_, '--recipes', 'lars'], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert '2 of 2 runs already in' in proc.stdout
    with open(os.path.join(copy_, 'results.json')) as f:
        after = json.load(f)
    assert after['records'] == before['records']
    assert after['sweeps'] == before['sweeps']            # nothing new was trained
    assert len(after['sweeps']) == 1
    assert after['sweeps'][0]['new_runs'] == len(large_batch.RECIPES) * 2


# ------------------------------------------------------------ the write-up's numbers

def record(recipe, batch, seed, top1, train_top1=None, seconds=1.0, threads=1):
    return dict(recipe=recipe, total_batch=batch, seed=seed, epochs=30, top1=top1,
                train_top1=top1 if train_top1 is None else train_top1, seconds=seconds,
                blas_threads=threads)


def test_paired_differences_per_seed_and_sign_agreement():
    records = [record('paper', 64, s, v) for s, v in enumerate((0.90, 0.80, 0.85))]
    records += [record('lars', 64, s, v) for s, v in enumerate((0.95, 0.78, 0.85))]
    records += [record('goyal', 64, s, v) for s, v in enumerate((0.70, 0.75, 0.80))]
    records += [record('goyal', 128, 0, 0.5)]                # no paper run to pair with
    paired = large_batch.paired_differences(records)
    assert list(paired) == ['goyal', 'lars'] and list(paired['goyal']) == [64]
    assert [s for s, _ in paired['lars'][64]] == [0, 1, 2]
    assert [d for _, d in paired['lars'][64]] == pytest.approx([0.05, -0.02, 0.0])
    # mean +1 point: only seed 0 is positive; the zero difference does not agree
    assert large_batch.sign_agreement([0.05, -0.02, 0.0]) == (1, 3)
    assert large_batch.sign_agreement([-0.2, -0.05, -0.1]) == (3, 3)
    assert large_batch.sign_agreement([0.01, -0.01, 0.0]) == (1, 3)   # zero mean
    table = large_batch.format_paired(paired)
    assert '| goyal | -10.0 (-20.0, -5.0, -5.0) 3/3 |' in table
    assert '| lars | +1.0 (+5.0, -2.0, +0.0) 1/3 |' in table


def test_batch_share_of_the_training_set_and_the_papers():
    line = large_batch.format_batch_share([64, 1024], 1437)
    # 64 / 1437 = 4.45 %, 1024 / 1437 = 71.26 %, 32768 / 1281167 = 2.558 %
    assert '64 = 4.5 %, 1024 = 71.3 %' in line
    assert "32,768 of ImageNet's 1,281,167: 2.56 %" in line


def test_facts_are_what_the_records_say():
    records = [record('paper', 64, 0, 0.90, 0.95, 10.0), record('paper', 64, 1, 0.90, 0.91, 20.0),
               record('goyal', 64, 0, 0.80, 0.78, 5.5, None)]
    result = dict(records=records, sweeps=[dict(command='c', elapsed_s=1936.3, new_runs=3)])
    facts = large_batch.format_facts(result)
    assert '`c`: 3 new runs in 1,936.3 s (32 min 16 s) of wall-clock.' in facts
    assert 'summed: 35.5 s over 3 runs (paper 30.0 s, goyal 5.5 s)' in facts
    # gaps: paper +5, +1 (mean +3); goyal -2
    assert 'largest mean over seeds +3.0 points (paper at batch 64)' in facts
    assert 'largest single run +5.0 (paper at batch 64, seed 0)' in facts
    assert 'smallest -2.0 (goyal at batch 64, seed 0)' in facts
    assert '1 in 2 runs; 1 earlier runs do not record it' in facts


def test_sweep_history_keeps_the_first_sweeps_record_and_adds_new_runs_only(tmp_path):
    old = [record('paper', 64, 0, 0.9), record('goyal', 64, 0, 0.8)]
    with open(str(tmp_path / 'results.json'), 'w') as f:   # a file of before the history
        json.dump(dict(command='first', elapsed_s=12.5, blas={'kernel': 'Haswell'},
                       records=old), f)
    same = large_batch.sweep_history(str(tmp_path), old, 'again', 1.0, 0)
    assert same == [dict(command='first', elapsed_s=12.5, new_runs=2,
                         parent_blas={'kernel': 'Haswell'})]
    grown = large_batch.sweep_history(str(tmp_path), old + [record('lars', 64, 0, 0.7)],
                                      'more', 3.04, 1)
    assert len(grown) == 2 and grown[0] == same[0]
    assert (grown[1]['command'], grown[1]['elapsed_s'], grown[1]['new_runs']) == ('more', 3.0, 1)
    assert len(grown[1]['loadavg']) == 3 and grown[1]['cores'] >= 1


def test_runs_of_an_interrupted_sweep_are_not_counted_in_the_next_ones_wall_clock(tmp_path):
    """Runs that runs.jsonl kept from a sweep stopped before results.json get an entry
    of their own, without a wall-clock; the sweep that finishes counts only its own."""
    old = [record('paper', 64, 0, 0.9)]
    kept = [record('goyal', 64, 0, 0.8), record('lars', 64, 0, 0.7)]
    with open(str(tmp_path / 'results.json'), 'w') as f:
        json.dump(dict(sweeps=[dict(command='first', elapsed_s=12.5, new_runs=1)],
                       records=old), f)
    history = large_batch.sweep_history(str(tmp_path), old + kept + [record('paper', 128, 0, 0.6)],
                                        'resumed', 30.0, 1)
    assert [(h['command'], h['elapsed_s'], h['new_runs']) for h in history] == [
        ('first', 12.5, 1), (None, None, 2), ('resumed', 30.0, 1)]
    facts = large_batch.format_facts(dict(sweeps=history, records=old + kept))
    assert ('- 2 runs kept in `runs.jsonl` by earlier sweeps into this folder, stopped before '
            'they wrote `results.json`: their wall-clock is not recorded') in facts
    assert '`resumed`: 1 new runs in 30.0 s' in facts


def test_a_sweep_resumed_from_runs_jsonl_alone_records_what_it_trained(quick_sweep, tmp_path):
    out, _ = quick_sweep
    with open(os.path.join(out, 'runs.jsonl')) as f:
        paper = [line for line in f if json.loads(line)['recipe'] == 'paper']
    assert len(paper) == len(large_batch.QUICK['batches'])
    with open(str(tmp_path / 'runs.jsonl'), 'w') as f:   # as a stopped sweep leaves it
        f.writelines(paper)
    proc = subprocess.run(
        [sys.executable, '-m', 'chainer_ext.experiments.large_batch', '--quick', '--out',
         str(tmp_path), '--recipes', 'paper,goyal', '--jobs', '2'], cwd=ROOT,
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    with open(str(tmp_path / 'results.json')) as f:
        sweeps = json.load(f)['sweeps']
    assert [(s['command'] is None, s['new_runs']) for s in sweeps] == [(True, 2), (False, 2)]
    assert sweeps[1]['command'].endswith('--recipes paper,goyal --jobs 2')
    with open(str(tmp_path / 'facts.md')) as f:
        assert f.read().startswith('- 2 runs kept in `runs.jsonl` by earlier sweeps')


@pytest.mark.parametrize('name', ['large_batch', 'fashion_mnist'])
def test_committed_tables_and_facts_are_the_codes_reading_of_results_json(name):
    """docs/experiments/NAME/{table,facts}.md come from its results.json, and
    EXPERIMENTS.md quotes them as they are."""
    folder = os.path.join(ROOT, 'docs', 'experiments', name)
    if not os.path.exists(os.path.join(folder, 'results.json')):
        pytest.skip('docs/experiments/{}/results.json is not committed yet'.format(name))
    with open(os.path.join(folder, 'results.json')) as f:
        result = json.load(f)
    with open(os.path.join(folder, 'table.md')) as f:
        table = f.read()
    with open(os.path.join(folder, 'facts.md')) as f:
        facts = f.read()
    assert table == large_batch.table_md(result['records'], result['plan'], result['n_train'],
                                         result.get('data', 'digits'))
    assert facts == large_batch.format_facts(result)
    with open(os.path.join(ROOT, 'EXPERIMENTS.md')) as f:
        page = f.read()
    for block in table.split('\n\n') + [facts]:
        assert block.strip() in page, block[:200]


def test_a_second_run_reuses_finished_runs(quick_sweep):
    out, _ = quick_sweep
    with open(os.path.join(out, 'runs.jsonl'), 'a') as f:
        f.write('{"recipe": "paper", "total_ba')   # a sweep killed while writing
    proc = subprocess.run(
        [sys.executable, '-m', 'chainer_ext.experiments.large_batch', '--quick', '--out', out,
         '--recipes', 'paper,goyal'], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert '4 of 4 runs already in' in proc.stdout
    torn = len(large_batch.RECIPES) * len(large_batch.QUICK['batches']) + 1
    assert 'runs.jsonl:{} is not a complete record'.format(torn) in proc.stderr


def test_a_sweep_of_another_plan_is_refused_before_it_drops_runs(tmp_path):
    with open(str(tmp_path / 'results.json'), 'w') as f:
        json.dump(dict(plan=large_batch.FULL, records=[]), f)
    proc = subprocess.run(
        [sys.executable, '-m', 'chainer_ext.experiments.large_batch', '--quick',
         '--out', str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert 'results.json holds a sweep of 30 epochs per run, not 2; use another --out' in (
        proc.stderr)
    assert sorted(os.listdir(str(tmp_path))) == ['results.json']


@pytest.mark.parametrize('flags, message', [
    (['--recipes', 'paper,sgd'], "--recipes: unknown recipe 'sgd'"),
    (['--jobs', '0'], '--jobs must be >= 1, got 0'),
])
def test_bad_flags_get_one_line(tmp_path, flags, message):
    proc = subprocess.run(
        [sys.executable, '-m', 'chainer_ext.experiments.large_batch', '--quick',
         '--out', str(tmp_path)] + flags, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert not os.listdir(str(tmp_path))


def _as_from_a_terminal():
    """SIGINT's default action, as a program started from a terminal has it: a suite run
    in the background by a non-interactive shell inherits SIGINT ignored, and Python
    then never turns Ctrl-C into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for_a_child(pid, timeout=60):
    """Wait until process ``pid`` has a child (read from /proc, as ``ps --ppid`` does)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for entry in os.listdir('/proc'):
            try:
                with open('/proc/{}/stat'.format(entry)) as f:
                    fields = f.read().rsplit(')', 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == pid:
                return
        time.sleep(0.05)
    raise AssertionError('process {} started no child in {} s'.format(pid, timeout))


def test_ctrl_c_stops_at_once_and_says_what_is_kept(quick_sweep, tmp_path):
    """Ctrl-C (SIGINT to the terminal's process group) used to wait for the run in
    progress, drop it anyway and print an 18-line traceback."""
    out = str(tmp_path / 'sweep')
    os.makedirs(out)
    with open(os.path.join(quick_sweep[0], 'runs.jsonl')) as f:
        first = [line for line in f if '"recipe": "paper", "total_batch": 64,' in line]
    with open(os.path.join(out, 'runs.jsonl'), 'w') as f:
        f.writelines(first)
    job = subprocess.Popen(
        [sys.executable, '-m', 'chainer_ext.experiments.large_batch', '--quick', '--out', out,
         '--recipes', 'paper', '--jobs', '1'], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env=dict(os.environ, PYTHONUNBUFFERED='1'), preexec_fn=_as_from_a_terminal)
    lines = [job.stdout.readline()]
    if lines[0].startswith('warning: OPENBLAS_CORETYPE='):  # a host's own pin, warned about
        lines.append(job.stdout.readline())
    assert lines[-1].startswith('1 of 2 runs already in'), lines
    _wait_for_a_child(job.pid)  # the pool's worker, spawned to do the second run
    time.sleep(1)  # past the pool's submit: the run counts as in progress
    os.killpg(job.pid, signal.SIGINT)
    rest, _ = job.communicate(timeout=120)
    assert job.returncode == 130, rest
    assert rest.splitlines() == [
        'python -m chainer_ext.experiments.large_batch: interrupted: 1 of 2 runs kept in {} '
        '(1 in progress dropped); run the same command again to do the others'.format(
            os.path.join(out, 'runs.jsonl'))]
    with open(os.path.join(out, 'runs.jsonl')) as f:
        assert f.readlines() == first


# ------------------------------------------------------------ Fashion-MNIST

FASHION_DIR = '/usr/share/datasets/fashion-mnist'
needs_fashion_mnist = pytest.mark.skipif(
    not os.path.isdir(FASHION_DIR),
    reason='dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)')

#: You et al.'s reference code (tensorflow/tpu lars_util.py): peak gamma and warm-up
#: epochs (of 90) by total batch, written out again.
LARS_REFERENCE = ((16384, 10.0, 5), (32768, 25.0, 5), (65536, 32.0, 14),
                  (float('inf'), 35.6, 40))


def lars_reference(batch):
    return next((gamma, warmup) for below, gamma, warmup in LARS_REFERENCE if batch < below)


@pytest.mark.parametrize('batch, imagenet_batch, eta, gamma, warmup', [
    (32, 4096, 1.6, 10.0, 5),      # the small-batch reference
    (64, 8192, 3.2, 10.0, 5),      # Goyal et al.'s 8k
    (128, 16384, 6.4, 25.0, 5),    # You et al.'s 16k
    (256, 32768, 12.8, 32.0, 14),  # the paper's 32k and its eta_base
    (512, 65536, 25.6, 35.6, 40),
])
def test_equivalent_batch_of_10000_images_and_the_rates_it_gives(batch, imagenet_batch, eta,
                                                                 gamma, warmup):
    """Batch b of 10,000 images is the share of ImageNet's 1,281,167 that 128 b is
    (1,281,167 / 10,000 = 128.1); A.2's eta_base = 0.1 (128 b) / 256."""
    from chainer_ext.optimizers import recipe, schedules
    assert schedules.imagenet_equivalent_batch(batch, 10000) == imagenet_batch == 128 * batch
    spec = large_batch.DATA['fashion-mnist']
    assert large_batch.rule_batch(spec, batch, 10000) == imagenet_batch
    assert large_batch.rule_batch(large_batch.DATA['digits'], batch, 1437) == batch
    plan = recipe.schedules_of('rmsprop_warmup', imagenet_batch, 30)
    assert plan['lr'](0.0) == pytest.approx(0.5 * eta)             # slow start's first step
    goyal = recipe.schedules_of('momentum', imagenet_batch, 30)['lr']
    assert goyal(0.0) == pytest.approx(0.1)      # warm-up from 0.1 over 5 of 90 epochs
    assert goyal(5.0) == pytest.approx(eta)      # after it, until epoch 30 of 90
    lars = recipe.schedules_of('lars', imagenet_batch, 30)['lr']
    assert lars(warmup * 30 / 90.0) == pytest.approx(gamma)           # the end of warm-up
    assert (gamma, warmup) == lars_reference(imagenet_batch)


def test_control_and_divergence_lines_are_what_the_records_say():
    def rec(recipe, seed, top1, lr_batch, finite=True):
        r = record(recipe, 256, seed, top1)
        r.update(lr_batch=lr_batch, finite=finite)
        return r
    main = [rec('paper', s, v, 32768) for s, v in enumerate((0.80, 0.82, 0.84))]
    control = [rec('paper', s, v, 256) for s, v in enumerate((0.81, 0.80, 0.70))]
    text = large_batch.format_control(main, control, (0, 1, 2))
    # 80/82/84: mean 82.0, sd 2.0; 81/80/70: mean 77.0, sd 6.08; differences -1, +2, +14
    assert '| paper | 256 | 82.0 ± 2.0 | 77.0 ± 6.1 | +5.0 (-1.0, +2.0, +14.0) 2/3 |' in text
    assert large_batch.format_nonfinite(main) == 'Every run ended with finite weights.\n'
    bad = rec('goyal', 1, 0.1, 32768, finite=False)
    assert large_batch.format_nonfinite(main + [bad]) == (
        'Runs whose weights were not finite at the end (diverged): goyal batch 256 (rules '
        'at 32,768) seed 1: top-1 10.0 %.\n')
    assert '32 = 0.32 %, 512 = 5.12 %' in large_batch.format_batch_share([32, 512], 10000)


def expected_lr_at(recipe, epoch, lr_batch, epochs):
    """:func:`expected_lr` with the rules at ``lr_batch`` and LARS's peak chosen by it."""
    if recipe.lr != 'lars':
        return expected_lr(recipe, epoch, lr_batch, epochs)
    gamma, warmup = lars_reference(lr_batch)
    w = warmup * epochs / 90.0
    if epoch < w:
        return gamma * epoch / w
    return gamma * (1 - (epoch - w) / (epochs - w)) ** 2


@pytest.fixture(scope='module')
def fashion_quick_sweep(tmp_path_factory):
    if not os.path.isdir(FASHION_DIR):
        pytest.skip('dataset-fashion-mnist is not installed (apt-get install '
                    'dataset-fashion-mnist)')
    out = str(tmp_path_factory.mktemp('fashion'))
    proc = subprocess.run(
        [sys.executable, '-m', 'chainer_ext.experiments.large_batch', '--data',
         'fashion-mnist', '--quick', '--out', out, '--jobs', '2', '--recipes',
         'paper,goyal,lars'], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc


@needs_fashion_mnist
def test_fashion_quick_sweep_runs_the_rules_at_the_equivalent_batch_and_the_control(
        fashion_quick_sweep):
    out, proc = fashion_quick_sweep
    with open(os.path.join(out, 'results.json')) as f:
        result = json.load(f)
    plan = large_batch.FASHION_QUICK
    n_train = 10 * plan['train_per_class']
    assert result['data'] == 'fashion-mnist' and result['n_train'] == n_train
    scale = round(1281167 / n_train)   # 1,281 ImageNet images per image here
    recipes = ('paper', 'goyal', 'lars')
    keys = {(r['recipe'], r['total_batch'], r['seed'], r['lr_batch'], r['epochs'])
            for r in result['records']}
    assert keys == ({(r, b, 0, scale * b, 2) for r in recipes for b in plan['batches']} |
                    {(r, 256, 0, 256, 2) for r in recipes} |          # the control
                    {(r, 256, 0, scale * 256, 3) for r in recipes})   # the longer runs
    for rec in result['records']:
        recipe = large_batch.RECIPES[rec['recipe']]
        assert rec['eta_base'] == pytest.approx(0.1 * rec['lr_batch'] / 256)
        assert rec['updates'] == round(rec['epochs'] * n_train / rec['total_batch'])
        assert 0.0 <= rec['top1'] <= 1.0 and isinstance(rec['finite'], bool)
        for t, traced_epoch, lr, _, _ in rec['trace']:
            epoch = t * rec['total_batch'] / n_train
            assert traced_epoch == pytest.approx(epoch)
            assert lr == pytest.approx(expected_lr_at(recipe, epoch, rec['lr_batch'],
                                                      rec['epochs']), rel=1e-6, abs=1e-12), (
                rec['recipe'], rec['total_batch'], rec['lr_batch'], t)
    with open(os.path.join(out, 'table.md')) as f:
        table = f.read()
    assert table == large_batch.table_md(result['records'], result['plan'], n_train,
                                         'fashion-mnist')
    assert 'Control: the same runs with the learning-rate rules at the absolute batch.' in table
    assert '| paper | 256 |' in table
    assert 'Longer runs: validation top-1' in table and '| lars | 256 | 0 | 3 | 12 |' in table
    with open(os.path.join(out, 'facts.md')) as f:
        assert f.read() == large_batch.format_facts(result)
    assert os.path.getsize(os.path.join(out, 'top1_vs_batch.png')) > 0


@needs_fashion_mnist
def test_a_digits_folder_is_refused_for_fashion_mnist(tmp_path):
    with open(str(tmp_path / 'results.json'), 'w') as f:
        json.dump(dict(plan=large_batch.FULL, records=[]), f)
    proc = subprocess.run(
        [sys.executable, '-m', 'chainer_ext.experiments.large_batch', '--data',
         'fashion-mnist', '--out', str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
        timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        'python -m chainer_ext.experiments.large_batch: --out: {} holds a sweep on digits, not '
        'fashion-mnist; use another --out'.format(tmp_path / 'results.json')]


def test_the_digits_sweep_regenerates_its_committed_files_byte_for_byte(tmp_path):
    """``--data digits`` over a copy of the committed folder trains nothing and writes
    the same results.json, table.md and facts.md."""
    folder = os.path.join(ROOT, 'docs', 'experiments', 'large_batch')
    copy_ = str(tmp_path / 'large_batch')
    shutil.copytree(folder, copy_)
    proc = subprocess.run(
        [sys.executable, '-m', 'chainer_ext.experiments.large_batch', '--data', 'digits',
         '--out', copy_, '--jobs', '1'], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert '90 of 90 runs already in' in proc.stdout
    for name in ('results.json', 'table.md', 'facts.md'):
        with open(os.path.join(folder, name), 'rb') as a, open(os.path.join(copy_, name),
                                                              'rb') as b:
            assert a.read() == b.read(), name


def test_the_fashion_sweep_without_the_package_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    from chainer_ext.datasets import fashion_mnist
    missing = str(tmp_path / 'no-package')
    monkeypatch.setattr(fashion_mnist, 'DEBIAN_DIR', missing)   # as where it is not installed
    monkeypatch.setattr(large_batch.blas_setup, 'ensure_kernel', lambda **kw: {'warning': None})
    out = tmp_path / 'out'
    assert large_batch.main(['--data', 'fashion-mnist', '--out', str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "python -m chainer_ext.experiments.large_batch: --data fashion-mnist: {}: no "
        "Fashion-MNIST there; install Debian's dataset-fashion-mnist (as root: apt-get install "
        "dataset-fashion-mnist; without root: apt-get download dataset-fashion-mnist && dpkg -x "
        "dataset-fashion-mnist_*.deb DIR, then --data-dir DIR/usr/share/datasets/"
        "fashion-mnist)".format(missing)]
    assert not out.exists()
    somewhere = str(tmp_path / 'elsewhere')
    assert large_batch.main(['--data', 'fashion-mnist', '--out', str(out), '--data-dir',
                             somewhere]) == 2
    assert capsys.readouterr().err.startswith(
        'python -m chainer_ext.experiments.large_batch: --data fashion-mnist: {}: no '
        'Fashion-MNIST there'.format(somewhere))
