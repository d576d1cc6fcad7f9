"""``python -m chainer_ext.report`` on fake result folders.

The fake folders hold a ``log`` and ``config.json`` shaped like
train_imagenet.py's, with lr and alpha_SGD computed here from the formulas of
the paper (Appendix A; independently of chainer_ext.optimizers.schedules), as the project's
schedule extensions log them: per epoch, the mean over the epoch's updates of
the value each update ran with (update t runs at e = (t-1) * b / shard).
"""
import json
import math
import os
import struct
import subprocess
import sys

import pytest

from chainer_ext.paper import numbers as paper
from chainer_ext.paper import report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The paper's reported figures, copied from its text into the repository.
REPORTED = os.path.join(REPO, 'tests', 'data', 'akiba2017_reported.md')


# --- the paper's formulas, written out again for the test ---------------------

def slow_start(e, eta_base, total):
    s = total / 90.0
    for b, f in ((40 * s, 0.5), (70 * s, 0.075), (85 * s, 0.01)):
        if e < b:
            return f * eta_base
    return 0.001 * eta_base


def goyal(e, eta_base, total):
    s = total / 90.0
    if eta_base > 0.1 and e < 5 * s:
        return 0.1 + (eta_base - 0.1) * e / (5 * s)
    for b, f in ((30 * s, 1.0), (60 * s, 0.1), (80 * s, 0.01)):
        if e < b:
            return f * eta_base
    return 0.001 * eta_base


def lars(e, total):
    """You et al.'s ResNet-50 rate below a total batch of 16,384: gamma 10, 5 of 90 epochs
    of linear warm-up, then the polynomial decay of power 2."""
    w = 5 * total / 90.0
    return 10.0 * e / w if e < w else 10.0 * max(0.0, 1 - (e - w) / (total - w)) ** 2


def elu_alpha(e, total):
    c, p = 10 * total / 90.0, 5 * total / 90.0
    if e < c:
        return 0.5 * math.exp(2 * (e - c) / p)
    if e < c + p / 2:
        return 0.5 + (e - c) / p
    return 1.0


def make_run(path, world=2, b=32, n_train=1797, n_val=450, epochs=6,
             optimizer='rmsprop_warmup', epochs_done=None, acc_final=0.9,
             seconds_per_iter=0.05, cpu='Fake CPU @ 2.0GHz', drop=(), perturb=None):
    """Write a result folder; returns (log, config)."""
    os.makedirs(path, exist_ok=True)
    total = world * b
    eb = 0.1 * total / 256
    shard = -(-n_train // world)
    log, prev = [], 0
    for k in range(1, (epochs_done or epochs) + 1):
        it = -(-k * shard // b)
        ts = range(prev + 1, it + 1)
        es = [(t - 1) * b / shard for t in ts]
        fn = {'rmsprop_warmup': lambda e: slow_start(e, eb, epochs),
              'momentum': lambda e: goyal(e, eb, epochs),
              'lars': lambda e: lars(e, epochs)}[optimizer]
        entry = {
            'epoch': k, 'iteration': it,
            'main/loss': 2.3 * math.exp(-0.4 * k),
            'main/accuracy': acc_final * (1 - math.exp(-0.7 * k)),
            'validation/main/loss': 2.4 * math.exp(-0.35 * k),
            'validation/main/accuracy': acc_final * (1 - math.exp(-0.6 * k)),
            'validation/main/top5': 1 - 0.5 * math.exp(-0.6 * k),
            'lr': sum(fn(e) for e in es) / len(es),
            'elapsed_time': it * seconds_per_iter + 0.5 * k,
        }
        if optimizer == 'rmsprop_warmup':
            entry['alpha_sgd'] = sum(elu_alpha(e, epochs) for e in es) / len(es)
        for key in drop:
            entry.pop(key, None)
        log.append(entry)
        prev = it
    if perturb:
        log[perturb[0]][perturb[1]] *= perturb[2]
    config = {
        'args': {'arch': 'resnet18', 'batchsize': b, 'epoch': epochs, 'insize': 32,
                 'communicator': 'naive', 'optimizer': optimizer,
                 'bn_moving_average': False, 'demo': True, 'allreduce_dtype': 'float16',
                 'seed': 0},
        'world_size': world, 'total_batch': total, 'eta_base': eb,
        'n_train': n_train, 'n_val': n_val, 'n_class': 10, 'device': 'cpu',
        'hardware': {'hostname': 'h', 'cpu_model': cpu, 'gpu_name': None, 'nodes': 1},
        'versions': {'python': '3.11', 'chainer': '7.8.1', 'numpy': '1.26.4',
                     'mpi4py': '3.1', 'mpi': 'Open MPI', 'cupy': None},
        'start_time': '2026-01-01T00:00:00+00:00',
    }
    with open(os.path.join(path, 'log'), 'w') as f:
        json.dump(log, f)
    with open(os.path.join(path, 'config.json'), 'w') as f:
        json.dump(config, f)
    return log, config


def run_cli(*args):
    return subprocess.run([sys.executable, '-m', 'chainer_ext.report'] + [str(a) for a in args],
                          cwd=REPO, capture_output=True, text=True, timeout=300)


def table_rows(md, header_start):
    """Rows (lists of cells) of the markdown table whose header starts so."""
    lines = md.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(header_start):
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith('|'):
                    break
                rows.append([c.strip() for c in row.strip().strip('|').split('|')])
            return rows
    raise AssertionError('no table starting with {!r}'.format(header_start))


def assert_png(path):
    with open(path, 'rb') as f:
        head = f.read(24)
    assert head[:8] == b'\x89PNG\r\n\x1a\n', path
    assert head[12:16] == b'IHDR'
    w, h = struct.unpack('>II', head[16:24])
    assert w > 100 and h > 100
    import matplotlib.image
    assert matplotlib.image.imread(path).shape[:2] == (h, w)


# --- tests ---------------------------------------------------------------------

def test_single_run_report(tmp_path):
    d = tmp_path / 'demo_run'
    log, cfg = make_run(str(d))
    proc = run_cli(d)
    assert proc.returncode == 0, proc.stderr
    md = (d / 'report.md').read_text()

    rows = table_rows(md, '| team | hardware |')
    assert len(rows) == len(paper.TABLE1) + 1
    for r, want in zip(rows, paper.TABLE1):
        assert r == [want['team'], want['hardware'], want['software'],
                     '{:,}'.format(want['batch']), want['time'], want['top1'], 'n/a']
    mine = rows[-1]
    assert mine[0] == 'this run: demo_run'
    assert 'Fake CPU @ 2.0GHz x 2 ranks' in mine[1] and '1 node' in mine[1]
    assert mine[2] == 'Chainer 7.8.1'
    assert mine[3] == '64'
    assert '({:.1f} s, 6 epochs)'.format(log[-1]['elapsed_time']) in mine[4]
    assert mine[5] == '{:.1f}%'.format(100 * log[-1]['validation/main/accuracy'])
    assert mine[6] == '{:.1f}%'.format(100 * log[-1]['validation/main/top5'])

    # headline numbers, with the run's scale stated plainly
    assert '897.9 ± 3.3 s' in md and '74.94 ± 0.09 %' in md and '32,768' in md
    assert '70% / 80%' in md
    assert ('2 CPU ranks on 1 node, total batch 64, ResNet-18 at 32 px on the built-in '
            'digits demo') in md
    assert 'not comparable in absolute terms' in md
    head = {r[0]: r[1:] for r in table_rows(md, '| quantity | paper (measured) |')}
    assert head['total batch'] == ['32,768', '64']
    assert head['eta_base = 0.1 b_total / 256'] == ['12.8', '0.025']
    assert head['top-5 single-crop validation accuracy'] == [
        'not reported', '{:.2f}%'.format(100 * log[-1]['validation/main/top5'])]

    # schedules recomputed with chainer_ext.optimizers.schedules match the formulas above
    data = json.loads((d / 'report.json').read_text())
    chk = data['schedule_checks'][0]
    assert chk['available'] and chk['matches'], chk
    assert chk['convention'] == report.LOG_CONVENTION
    assert chk['lr_max_rel'] < 1e-12 and chk['alpha_max_abs'] < 1e-12
    assert "**Matches the paper's definitions (Appendix A) (within 1e-06).**" in md
    sched = table_rows(md, '| epoch | iteration | lr (log)')
    assert len(sched) == len(log)
    assert float(sched[0][2]) == pytest.approx(log[0]['lr'], rel=1e-5)

    # cost model section, clearly labelled
    assert '## Cost model (MODELLED)' in md
    assert 'MODELLED' in md and '897.9 ± 3.3 s' in md
    assert data['cost_model']['paper_comparison']['modelled']['n'] == 1024
    # report.json's verdict on the 90-epoch time is the one its table prints
    time_row = table_rows(md, '| criterion | tolerance |')[0]
    assert time_row[0] == '90-epoch time'
    error, within = data['cost_model']['paper_comparison']['check']['time']
    assert time_row[2].startswith('{:+.1f}% at the {:.0f} images/s'.format(
        100 * error, data['cost_model']['paper_comparison']['check']['time_images_per_s']))
    assert time_row[3] == {True: 'yes', False: 'NO'}[within] == 'NO'

    for name in report.PLOTS.values():
        assert_png(str(d / name))
    # the training script's own figures are not overwritten
    assert not (d / 'loss.png').exists()
    assert sorted(data['files']) == sorted(list(report.PLOTS) + ['report', 'json'])


def test_side_by_side_two_runs(tmp_path):
    a, b, out = tmp_path / 'paper_recipe', tmp_path / 'momentum', tmp_path / 'cmp'
    make_run(str(a))
    log_b, _ = make_run(str(b), optimizer='momentum', acc_final=0.8)
    proc = run_cli(a, b, '--out', out, '--label', 'recipe', '--label', 'momentum')
    assert proc.returncode == 0, proc.stderr
    md = (out / 'report.md').read_text()
    assert '## Side by side' in md
    side = table_rows(md, '| | paper | recipe | momentum |')
    by = {r[0]: r[1:] for r in side}
    assert by['optimizer'] == ['rmsprop_warmup', 'rmsprop_warmup', 'momentum']
    assert by['final top-1'][2] == '{:.2f}%'.format(100 * log_b[-1]['validation/main/accuracy'])
    assert by['alpha_SGD max abs. deviation'][2] == 'n/a'
    rows = table_rows(md, '| team | hardware |')
    assert [r[0] for r in rows[-2:]] == ['this run: recipe', 'this run: momentum']
    data = json.loads((out / 'report.json').read_text())
    assert [c['matches'] for c in data['schedule_checks']] == [True, True]
    assert data['schedule_checks'][1]['alpha_max_abs'] is None
    for name in report.PLOTS.values():
        assert_png(str(out / name))
    assert not (a / 'report.md').exists()


@pytest.mark.parametrize('optimizer, whose, alpha', [
    ('momentum', "Goyal et al.'s definitions (the momentum SGD baseline)",
     'alpha_SGD n/a (momentum SGD has no RMSprop->SGD transition)'),
    ('lars', "You et al.'s definitions (the LARS baseline)",
     'alpha_SGD n/a (LARS has no RMSprop->SGD transition)')])
def test_a_baselines_schedule_is_checked_against_its_own_source(tmp_path, optimizer, whose,
                                                                alpha):
    """A momentum or LARS run follows its baseline's schedule, not the paper's: the
    report names whose definitions it matched, and why it has no alpha_SGD."""
    d = tmp_path / optimizer
    make_run(str(d), optimizer=optimizer)
    data = report.build_report([str(d)])
    assert data['schedule_checks'][0]['matches']
    md = (d / 'report.md').read_text()
    assert '**Matches {} (within 1e-06).**'.format(whose) in md
    assert "the paper's definitions" not in md
    assert '; {}.'.format(alpha) in md


def test_scaling_efficiency_from_runs_of_two_sizes(tmp_path):
    l2, _ = make_run(str(tmp_path / 'n2'), world=2, seconds_per_iter=0.05)
    l4, _ = make_run(str(tmp_path / 'n4'), world=4, seconds_per_iter=0.0625)
    data = report.build_report([str(tmp_path / 'n2'), str(tmp_path / 'n4')],
                               out=str(tmp_path / 'o'))
    eff = {e['label']: e['efficiency'] for e in data['scaling_from_runs']}
    assert eff['n2'] == pytest.approx(1.0)
    # per-worker images/s = iterations * 32 / elapsed_time, n4 against n2
    rate = [l[-1]['iteration'] * 32 / l[-1]['elapsed_time'] for l in (l2, l4)]
    assert eff['n4'] == pytest.approx(rate[1] / rate[0])
    assert eff['n4'] < 0.8
    assert 'Measured weak-scaling efficiency' in (tmp_path / 'o' / 'report.md').read_text()


def test_deviating_schedule_is_reported(tmp_path):
    d = tmp_path / 'r'
    make_run(str(d), perturb=(2, 'lr', 1.01))
    data = report.build_report([str(d)])
    chk = data['schedule_checks'][0]
    assert not chk['matches']
    assert chk['lr_max_rel'] == pytest.approx(0.01, rel=1e-6)
    assert 'DEVIATES' in (d / 'report.md').read_text()


def test_missing_optional_keys_say_na(tmp_path):
    d = tmp_path / 'bare'
    make_run(str(d), drop=('validation/main/loss', 'validation/main/accuracy', 'alpha_sgd'))
    cfg = json.loads((d / 'config.json').read_text())
    for k in ('hardware', 'versions', 'eta_base', 'n_val', 'start_time'):
        cfg.pop(k)
    (d / 'config.json').write_text(json.dumps(cfg))
    data = report.build_report([str(d)])
    md = (d / 'report.md').read_text()
    mine = table_rows(md, '| team | hardware |')[-1]
    assert mine[2] == 'n/a' and mine[5] == 'n/a'
    assert data['runs'][0]['top1_percent'] is None
    chk = data['schedule_checks'][0]
    assert not chk['matches'] and 'alpha_sgd' in chk['problem']


@pytest.mark.parametrize('damage, words', [
    ('missing_log', ['log', 'file not found']),
    ('corrupt_log', ['log', 'not valid JSON']),
    ('log_not_list', ['log', 'expected a JSON list']),
    ('missing_config', ['config.json', 'file not found']),
    ('corrupt_config', ['config.json', 'not valid JSON']),
])
def test_clear_errors(tmp_path, damage, words):
    d = tmp_path / 'run'
    make_run(str(d))
    if damage == 'missing_log':
        os.remove(str(d / 'log'))
    elif damage == 'corrupt_log':
        (d / 'log').write_text('[{"epoch": 1, "iteration": ')
    elif damage == 'log_not_list':
        (d / 'log').write_text('{"epoch": 1}')
    elif damage == 'missing_config':
        os.remove(str(d / 'config.json'))
    else:
        (d / 'config.json').write_text('not json')
    with pytest.raises(report.ReportError) as err:
        report.build_report([str(d)])
    msg = str(err.value)
    assert str(d) in msg
    for w in words:
        assert w in msg
    if damage in ('missing_log', 'corrupt_log'):     # and from the command line
        proc = run_cli(d)
        assert proc.returncode == 2
        assert proc.stderr.startswith('python -m chainer_ext.report: error: ')
        assert os.path.join(str(d), 'log') in proc.stderr
        assert 'Traceback' not in proc.stderr


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(report.ReportError, match='not a folder'):
        report.build_report([str(tmp_path / 'nope')])


def test_a_folder_given_twice_is_an_error(tmp_path):
    """report r1 r1 used to list the same run twice, as r1 and r1 (2)."""
    make_run(str(tmp_path / 'r1'))
    proc = run_cli(tmp_path / 'r1', str(tmp_path / 'r1') + '/', '--out', tmp_path / 'rep')
    assert proc.returncode == 2
    assert proc.stderr == 'python -m chainer_ext.report: error: {0}/ is given twice ' \
        '(as {0} and {0}/): give each result ' \
        'folder once\n'.format(tmp_path / 'r1')
    assert not (tmp_path / 'rep').exists()


def test_bench_calibrates_local_cost_model(tmp_path):
    from test_cost_model import bench_scaling_json
    d = tmp_path / 'r'
    make_run(str(d))
    bench = tmp_path / 'scaling.json'
    bench.write_text(json.dumps(bench_scaling_json(bw=1e9)))
    data = report.build_report([str(d)], bench=str(bench))
    local = data['cost_model']['local']
    assert local['fit']['bandwidth'] == pytest.approx(1e9, rel=1e-6)
    assert local['runs'][0]['measured_s'] == pytest.approx(
        json.loads((d / 'log').read_text())[-1]['elapsed_time'])
    assert 'MODELLED from MEASURED inputs' in (d / 'report.md').read_text()
    # a bench file is used only when given: nothing is guessed from the folder
    (d / 'bench.json').write_text(bench.read_text())
    assert 'local' not in report.build_report([str(d)])['cost_model']


def test_paper_numbers_match_the_paper():
    with open(REPORTED, encoding='utf-8') as f:
        lines = f.read().splitlines()
    # quoted sentences are wrapped over '> ' lines: one line of text
    text = ' '.join(' '.join(line.lstrip('> ') for line in lines).split())
    rows = []
    in_table = False
    for line in lines:
        if line.startswith('| team'):
            in_table = True
            continue
        if in_table:
            if not line.startswith('|'):
                break
            if set(line) <= set('|- '):
                continue
            rows.append([c.strip() for c in line.strip().strip('|').split('|')])
    assert len(rows) == len(paper.TABLE1) == 5
    for r, p in zip(rows, paper.TABLE1):
        assert r == [p['team'], p['hardware'], p['software'], '{:,}'.format(p['batch']),
                     p['time'], p['top1']]
        assert p['top1'] == '{:.1f}%'.format(p['top1_percent'])
    h = paper.HEADLINE
    assert 'the training time was {} +/- {} seconds for {} epochs'.format(
        h['time_s'], h['time_sd_s'], h['epochs']) in text
    assert 'accuracy on the validation images was {}% +/- {}%'.format(
        h['top1_percent'], h['top1_sd_percent']) in text
    assert 'from {} independent runs'.format({5: 'five'}[h['runs']]) in text
    assert 'Our scaling efficiency when using {} GPUs is {:.0f}% and {:.0f}% in comparison ' \
           'to single-GPU and single-node (i.e., {} GPUs)'.format(
               h['workers'], 100 * h['efficiency_vs_1gpu'], 100 * h['efficiency_vs_1node'],
               h['gpus_per_node']) in text
    assert 'per-worker minibatch size was {}'.format(h['batch_per_worker']) in text
    assert 'It consists of {} nodes'.format(h['nodes']) in text
    assert 'eta_base = {}'.format(h['eta_base']) in text
    assert h['total_batch'] == h['workers'] * h['batch_per_worker'] == 32768
    assert h['eta_base'] == pytest.approx(0.1 * h['total_batch'] / 256)


def test_log_of_the_project_schedule_extensions_matches(tmp_path):
    """A real (single-process) Chainer run with the project's optimizer and
    schedule extensions: its LogReport entries fit the report's definitions."""
    import numpy as np
    import chainer
    import chainer.links as L
    from chainer import training
    from chainer.training import extensions
    from chainer_ext.optimizers import schedules
    from chainer_ext.optimizers.recipe import schedules_of
    from chainer_ext.extensions import EpochSchedule
    from chainer_ext.optimizers import RMSpropWarmup

    n, b, epochs = 100, 8, 3                 # 12.5 iterations per epoch
    rng = np.random.RandomState(0)
    data = chainer.datasets.TupleDataset(rng.randn(n, 4).astype(np.float32),
                                         rng.randint(0, 3, n).astype(np.int32))
    model = L.Classifier(L.Linear(4, 3))
    eb = schedules.eta_base(b)
    opt = RMSpropWarmup(lr=0.5 * eb, alpha_sgd=0.0)
    opt.setup(model)
    it = chainer.iterators.SerialIterator(data, b, shuffle=True)
    out = tmp_path / 'real'
    trainer = training.Trainer(training.StandardUpdater(it, opt), (epochs, 'epoch'),
                               out=str(out))
    for attr, fn in schedules_of('rmsprop_warmup', b, epochs).items():
        trainer.extend(EpochSchedule(attr, fn))
    trainer.extend(extensions.LogReport(trigger=(1, 'epoch')))
    trainer.run()
    config = {'args': {'arch': 'resnet18', 'batchsize': b, 'epoch': epochs, 'insize': 32,
                       'optimizer': 'rmsprop_warmup', 'bn_moving_average': False},
              'world_size': 1, 'total_batch': b, 'eta_base': eb, 'n_train': n,
              'n_val': 0, 'n_class': 3, 'device': 'cpu'}
    (out / 'config.json').write_text(json.dumps(config))
    result = report.build_report([str(out)])
    chk = result['schedule_checks'][0]
    assert chk['matches'], chk
    assert chk['lr_max_rel'] < 1e-9 and chk['alpha_max_abs'] < 1e-9
    assert [r['iteration'] for r in chk['rows']] == [13, 25, 38]


def test_report_links_the_batch_size_sweep(tmp_path):
    d = tmp_path / 'demo_run'
    make_run(str(d))
    report.build_report([str(d)])
    md = (d / 'report.md').read_text()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    link = os.path.relpath(os.path.join(root, 'EXPERIMENTS.md'), str(d))
    assert '[EXPERIMENTS.md]({})'.format(link) in md
    assert os.path.isfile(os.path.normpath(os.path.join(str(d), link)))
    assert '| paper |' in md and '| goyal |' in md   # the committed table


def test_a_log_without_top5_shows_it_unknown(tmp_path):
    d = tmp_path / 'older_run'
    make_run(str(d), drop=('validation/main/top5',))
    assert run_cli(d).returncode == 0
    mine = table_rows((d / 'report.md').read_text(), '| team | hardware |')[-1]
    assert mine[0] == 'this run: older_run' and mine[6] == 'n/a'
