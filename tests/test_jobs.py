"""Batch-job templates (jobs/): rendered for several sizes, parsed, dry-run.

Each rendered script is checked three ways: ``bash -n``; its scheduler
directives and header comments, parsed; and the command it would launch,
obtained by running it with ``DRY_RUN=1`` (it prints the command instead of
starting it) and parsed with shlex and train_imagenet.py's own argument parser.
"""
import importlib.util
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest

from chainer_ext.job import train_flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOBS = os.path.join(REPO, 'jobs')
KINDS = ('slurm-gpu', 'pbs-gpu', 'slurm-cpu', 'pbs-cpu')


def _load_render():
    spec = importlib.util.spec_from_file_location('jobs_render', os.path.join(JOBS, 'render.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


render = _load_render()


# --- parsing -------------------------------------------------------------------

def parse_script(text):
    """Directives, header facts and top-level variables of a job script."""
    lines = text.splitlines()
    assert lines[0] == '#!/bin/bash'
    first_code = next(i for i, l in enumerate(lines) if l.strip() and not l.startswith('#'))
    slurm, pbs_l, pbs = {}, {}, {}
    for i, line in enumerate(lines):
        if line.startswith('#SBATCH') or line.startswith('#PBS'):
            # directives are only read before the first command
            assert i < first_code, 'directive after the first command: ' + line
        if line.startswith('#SBATCH '):
            key, _, value = line[len('#SBATCH '):].partition('=')
            assert key not in slurm, 'duplicate ' + key
            slurm[key] = value
        elif line.startswith('#PBS -l '):
            for part in line[len('#PBS -l '):].split(','):
                key, _, value = part.partition('=')
                pbs_l[key] = value
        elif line.startswith('#PBS '):
            opt, _, value = line[len('#PBS '):].partition(' ')
            pbs[opt] = value
    header = {}
    for line in lines[:first_code]:
        m = re.match(r'^# ([a-z ]+): (\S+)', line)
        if m:
            header[m.group(1)] = m.group(2)
    variables = {}
    for line in lines[first_code:]:
        m = re.match(r'^([A-Z_]+)=(\S+)', line)
        if m and m.group(1) not in variables:
            variables[m.group(1)] = m.group(2)
    return {'slurm': slurm, 'pbs_l': pbs_l, 'pbs': pbs, 'header': header,
            'vars': variables}


def parse_select(select):
    """``N:ncpus=16:ngpus=8:mpiprocs=8`` -> (N, {'ncpus': 16, ...})."""
    first, *rest = select.split(':')
    return int(first), {k: int(v) for k, v in (r.split('=') for r in rest)}


def parse_launch(cmd):
    """Split the dry-run command into (launcher argv, train_imagenet.py flags)."""
    argv = shlex.split(cmd)
    i = next(k for k, a in enumerate(argv) if a.endswith('/train_imagenet.py'))
    assert argv[i - 1].endswith('/bin/python'), argv[i - 1]
    return argv[:i - 1], argv[i + 1:]


def launcher_options(argv):
    """mpiexec/srun argv -> {'-n': '1024', '--mca': [(k, v)...], '-x': [...]}."""
    out = {'prog': argv[0], '--mca': [], '-x': []}
    k = 1
    while k < len(argv):
        a = argv[k]
        if a == '--mca':
            out['--mca'].append((argv[k + 1], argv[k + 2]))
            k += 3
        elif a == '-x':
            out['-x'].append(argv[k + 1])
            k += 2
        elif a.startswith('--') and '=' in a:
            key, _, value = a.partition('=')
            out[key] = value
            k += 1
        elif a in ('--bind-to', '--map-by', '--hostfile', '-n'):
            out[a] = argv[k + 1]
            k += 2
        else:
            out[a] = True
            k += 1
    return out


def flags(train_argv):
    """``train_argv`` as train_imagenet.py's own parser reads it: a parser that cannot be
    built, or refuses the flags (SystemExit 2), fails the test."""
    return vars(train_flags.build_parser().parse_args(train_argv))


def data_root(tmp_path):
    """A data folder with both lists (their lines are not read by the scripts)."""
    root = tmp_path / 'imagenet'
    root.mkdir(exist_ok=True)
    for name in ('train.txt', 'val.txt'):
        (root / name).write_text('n01440764/a.JPEG 0\n')
    return str(root)


def dry_run(path, kind, nodes, tmp_path, env_extra=None, ranks_per_node=8):
    """``DRY_RUN=1 bash path`` as in a job of ``nodes`` nodes, with a checkout, a
    venv and a data folder that exist (``env_extra`` changes any of them)."""
    env = dict(os.environ, DRY_RUN='1', TMPDIR=str(tmp_path), REPO=REPO, VENV=sys.prefix,
               DATA=data_root(tmp_path))
    for name in ('SLURM_JOB_NUM_NODES', 'OUT', 'TRAIN_LIST', 'VAL_LIST'):
        env.pop(name, None)
    if kind.startswith('slurm'):
        env['SLURM_JOB_NUM_NODES'] = str(nodes)
    else:
        nodefile = tmp_path / 'nodefile'
        nodefile.write_text(''.join('node{:03d}\n'.format(i)
                                    for i in range(nodes) for _ in range(ranks_per_node)))
        env['PBS_NODEFILE'] = str(nodefile)
        env['PBS_JOBID'] = '42.pbs'
    for name, value in (env_extra or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(['bash', str(path)], env=env, capture_output=True, text=True,
                          timeout=60)


# --- tests ---------------------------------------------------------------------

@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('nodes', [1, 4, 128])
def test_rendered_script(tmp_path, kind, nodes):
    gpu = kind.endswith('gpu')
    gpn = 8 if gpu else 1
    text = render.render(kind, nodes=nodes, script_name='job.sh')
    path = tmp_path / 'job.sh'
    path.write_text(text)
    syntax = subprocess.run(['bash', '-n', str(path)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    assert '{{' not in text

    p = parse_script(text)
    h, v = p['header'], p['vars']
    ranks = nodes * gpn
    # header facts agree with each other and with the size asked for
    assert int(h['nodes']) == nodes
    assert int(h['gpus per node' if gpu else 'ranks per node']) == gpn
    assert int(h['ranks']) == ranks == int(h['nodes']) * gpn
    assert int(h['batch per rank']) == 32
    assert int(h['total batch']) == ranks * 32
    if nodes == 128 and gpu:
        assert int(h['total batch']) == 32768
    # variables the script computes from
    assert int(v['NODES']) == nodes and int(v['BATCHSIZE']) == 32
    assert int(v['GPUS_PER_NODE' if gpu else 'RANKS_PER_NODE']) == gpn

    if kind.startswith('slurm'):
        s = p['slurm']
        assert int(s['--nodes']) == nodes
        assert int(s['--ntasks-per-node']) == gpn
        assert int(s['--cpus-per-task']) == int(v['CPUS_PER_TASK'])
        assert re.match(r'^\d+:\d\d:\d\d$', s['--time'])
        if gpu:
            assert s['--gres'] == 'gpu:8'
        else:
            assert '--gres' not in s
    else:
        n, res = parse_select(p['pbs_l']['select'])
        assert n == nodes and res['mpiprocs'] == gpn
        assert res['ncpus'] // res['mpiprocs'] == int(v['CPUS_PER_TASK'])
        if gpu:
            assert res['ngpus'] == 8 and res['ncpus'] == 16
        else:
            assert 'ngpus' not in res
        assert re.match(r'^\d+:\d\d:\d\d$', p['pbs_l']['walltime'])

    # what it would launch
    proc = dry_run(path, kind, nodes, tmp_path, ranks_per_node=gpn)
    assert proc.returncode == 0, proc.stderr
    assert 'total_batch={}'.format(ranks * 32) in proc.stderr
    launch = [l for l in proc.stdout.splitlines() if l.strip()]
    assert len(launch) == 1
    head, train = parse_launch(launch[0])
    opts = launcher_options(head)
    assert opts['prog'] == 'mpiexec'
    assert int(opts['-n']) == ranks
    assert opts['--map-by'] == 'ppr:{}:node'.format(gpn)
    f = flags(train)
    assert int(f['batchsize']) == 32 and int(f['epoch']) == 90
    assert int(opts['-n']) * int(f['batchsize']) == int(h['total batch'])
    assert f['resume'] == 'auto'
    assert f['optimizer'] == 'rmsprop_warmup'
    assert not f.get('bn_moving_average')
    assert f['out'].endswith('x{}'.format(gpn))
    assert 'PATH' in opts['-x'] and 'OMP_NUM_THREADS' in opts['-x']
    if gpu:
        assert f['communicator'] == 'pure_nccl'
        assert f['arch'] == 'resnet50' and int(f['insize']) == 224
        assert ('pml', 'ucx') in opts['--mca']
        for name in ('NCCL_IB_HCA', 'NCCL_SOCKET_IFNAME', 'NCCL_IB_DISABLE',
                     'UCX_NET_DEVICES'):
            assert name in opts['-x']
    else:
        assert f['communicator'] == 'naive'
        assert ('btl', 'tcp,vader,self') in opts['--mca']
    if kind.startswith('pbs'):  # the hostfile, shown by the dry run and not left behind
        hostfile = opts['--hostfile']
        assert hostfile == str(tmp_path / 'hostfile.42.pbs')
        lines = [l[len('hostfile: '):] for l in proc.stderr.splitlines()
                 if l.startswith('hostfile: ')]
        assert lines == ['node{:03d} slots={}'.format(i, gpn) for i in range(nodes)]
        assert not os.path.exists(hostfile)


def test_slurm_srun_launcher(tmp_path):
    path = tmp_path / 'job.sh'
    path.write_text(render.render('slurm-gpu', nodes=4))
    proc = dry_run(path, 'slurm-gpu', 4, tmp_path, {'LAUNCHER': 'srun'})
    assert proc.returncode == 0, proc.stderr
    head, train = parse_launch(proc.stdout.strip())
    opts = launcher_options(head)
    assert opts['prog'] == 'srun' and opts['--mpi'] == 'pmix'
    assert int(opts['--ntasks']) == 32 and int(opts['--ntasks-per-node']) == 8
    assert flags(train)['communicator'] == 'pure_nccl'


def test_openib_transport_of_the_paper(tmp_path):
    path = tmp_path / 'job.sh'
    path.write_text(render.render('pbs-gpu', nodes=2))
    proc = dry_run(path, 'pbs-gpu', 2, tmp_path, {'MPI_TRANSPORT': 'openib',
                                                  'IB_HCA': 'mlx4_0'})
    assert proc.returncode == 0, proc.stderr
    opts = launcher_options(parse_launch(proc.stdout.strip())[0])
    assert ('btl', 'openib,vader,self') in opts['--mca']
    assert ('btl_openib_if_include', 'mlx4_0:1') in opts['--mca']
    assert 'UCX_NET_DEVICES' not in opts['-x']


@pytest.mark.parametrize('kind', KINDS)
def test_wrong_allocation_size_is_refused(tmp_path, kind):
    path = tmp_path / 'job.sh'
    path.write_text(render.render(kind, nodes=4))
    gpn = 8 if kind.endswith('gpu') else 1
    proc = dry_run(path, kind, 5, tmp_path, ranks_per_node=gpn)
    assert proc.returncode != 0
    assert 'NODES=4' in proc.stderr and 'render' in proc.stderr
    assert proc.stdout == ''


def test_checked_in_scripts_are_current_and_paper_sized():
    assert subprocess.run([sys.executable, os.path.join(JOBS, 'render.py'), '--check'],
                          capture_output=True).returncode == 0
    for kind, name in render.CHECKED_IN.items():
        path = os.path.join(JOBS, name)
        assert os.access(path, os.X_OK), path
        p = parse_script(open(path).read())
        if kind.endswith('gpu'):
            assert p['header']['nodes'] == '128' and p['header']['total batch'] == '32768'
        else:
            assert p['header']['nodes'] == '4'


def test_renderer_cli_and_options(tmp_path):
    out = tmp_path / 'j.sh'
    proc = subprocess.run(
        [sys.executable, os.path.join(JOBS, 'render.py'), 'slurm-gpu', '--nodes', '16',
         '--gpus-per-node', '4', '--walltime', '02:00:00',
         '--directive', '#SBATCH --partition=gpu', '-o', str(out)],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    p = parse_script(out.read_text())
    assert p['slurm']['--nodes'] == '16' and p['slurm']['--gres'] == 'gpu:4'
    assert p['slurm']['--partition'] == 'gpu' and p['slurm']['--time'] == '02:00:00'
    assert p['header']['total batch'] == str(16 * 4 * 32)
    assert os.access(str(out), os.X_OK)
    bad = subprocess.run([sys.executable, os.path.join(JOBS, 'render.py'), 'pbs-gpu',
                          '--directive', '#SBATCH --partition=gpu'],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.splitlines() == [
        "python jobs/render.py: error: directive '#SBATCH --partition=gpu' does not suit "
        'pbs-gpu']  # the one line, without the usage block
    unknown = subprocess.run([sys.executable, os.path.join(JOBS, 'render.py'), 'pbs-gpu',
                              '--nodes', 'four'], capture_output=True, text=True)
    assert unknown.returncode == 2 and unknown.stderr.splitlines() == [
        'python jobs/render.py: error: --nodes must be a positive integer, got four']
    with pytest.raises(ValueError):
        render.render('slurm-gpu', nodes=0)
    with pytest.raises(ValueError):
        render.render('slurm-gpu', walltime='2h')


@pytest.mark.parametrize('extra', [
    ['slurm-cpu', '--nodes', '8', '--cpus-per-node', '5'],
    ['pbs-gpu', '--nodes', '2', '--gpus-per-node', '4', '--batchsize', '16', '--cpus-per-node',
     '32', '--loaderjob', '3', '--walltime', '03:00:00', '--job-name', 'my run',
     '--directive', '#PBS -q gpu', '-o', 'job.pbs'],
    ['slurm-gpu', '--nodes', '128', '--walltime', '05:00:00']])
def test_the_header_command_renders_the_same_script(tmp_path, extra):
    """The command in the "Generated by" line names every flag given: run again, it
    writes the same script."""
    cli = [sys.executable, os.path.join(JOBS, 'render.py')]
    first = subprocess.run(cli + extra, capture_output=True, text=True, cwd=str(tmp_path))
    assert first.returncode == 0, first.stderr
    text = first.stdout or (tmp_path / 'job.pbs').read_text()
    said = re.search(r'# Generated by "python jobs/render.py (.*)" from ', text).group(1)
    assert shlex.split(said) == extra
    os.remove(str(tmp_path / 'job.pbs')) if '-o' in extra else None
    again = subprocess.run(cli + shlex.split(said), capture_output=True, text=True,
                           cwd=str(tmp_path))
    assert (again.stdout or (tmp_path / 'job.pbs').read_text()) == text


def test_modelled_walltime():
    wt, note = render.modelled_walltime(1024, 32)
    h, m, s = map(int, wt.split(':'))
    assert 0 < h * 3600 + m * 60 + s <= 2 * 3600 and 'cost model' in note
    wt1, note1 = render.modelled_walltime(8, 32)          # one node: ~22 h x 2 > cap
    assert wt1 == '24:00:00' and 'resubmit' in note1


FAKE_TRAINING = '''
import os, signal, sys, time
ready, out, writes, wait = sys.argv[1:5]
got = []
signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))
open(ready, 'w').close()
deadline = time.time() + (60 if wait == 'wait' else 0)
while not got and time.time() < deadline:
    time.sleep(0.01)
time.sleep(1.1)  # what it writes is newer than the launch (1 s resolution)
if writes == 'snapshot':
    os.makedirs(os.path.join(out, 'snapshots', 'iter-7'))
    open(os.path.join(out, 'snapshots', 'iter-7', 'manifest.json'), 'w').close()
elif writes == 'model':
    open(os.path.join(out, 'model.npz'), 'w').close()
sys.exit(75 if got else 0)
'''


def run_snippet(tmp_path, kind, writes, signum=None):
    """The scripts' run() around a fake training that writes ``writes`` (a
    snapshot, the model, nothing) and exits 75 if signalled, 0 otherwise; the
    scheduler's commands are stubs.  Returns (status, output, stub calls)."""
    text = render.render(kind, nodes=1, script_name='jobs/job.sh')
    snippet = text[text.index('# ---- preemption'):]
    snippet = snippet[:snippet.index('\n}\n', snippet.index('\nrun() {')) + 3]
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for tool in ('scontrol', 'qsub'):
        stub = bin_dir / tool
        stub.write_text('#!/bin/sh\necho "{} $*" >> {}\n'.format(tool, tmp_path / 'called'))
        stub.chmod(0o755)
    (tmp_path / 'fake.py').write_text(FAKE_TRAINING)
    ready, out = tmp_path / 'ready', tmp_path / 'out'
    out.mkdir()
    (tmp_path / 'job.sh').write_text(
        'set -euo pipefail\nDRY_RUN=0\nJOB_SCRIPT=/repo/jobs/job.sh\nOUT={}\n'.format(out)
        + snippet + 'run {} {} {} {} {} {}\n'.format(
            sys.executable, tmp_path / 'fake.py', ready, out, writes,
            'wait' if signum else 'exit'))
    env = dict(os.environ, PATH='{}:{}'.format(bin_dir, os.environ['PATH']),
               SLURM_JOB_ID='4242')
    job = subprocess.Popen(['bash', str(tmp_path / 'job.sh')], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if signum:
        deadline = time.time() + 30
        while not ready.exists() and time.time() < deadline and job.poll() is None:
            time.sleep(0.01)
        assert ready.exists(), job.communicate()[0]
        job.send_signal(signum)
    output, _ = job.communicate(timeout=60)
    called = tmp_path / 'called'
    return job.returncode, output, called.read_text() if called.exists() else ''


@pytest.mark.parametrize('kind,signum,requeue', [
    ('slurm-cpu', signal.SIGUSR1, 'scontrol requeue 4242'),
    ('pbs-gpu', signal.SIGTERM, 'qsub /repo/jobs/job.sh')])
def test_stop_signal_is_forwarded_and_the_job_requeued(tmp_path, kind, signum, requeue):
    """The scheduler's signal reaches the launcher as SIGUSR1; a run that stopped
    with a new snapshot (exit 75) requeues the job."""
    status, out, called = run_snippet(tmp_path, kind, 'snapshot', signum)
    assert status == 75, out
    assert called == requeue + '\n'
    assert re.search(r'^\d{4}-\d\d-\d\d [\d:.]+ %s: telling the ranks to stop' % signal.Signals(
        signum).name, out, re.M), out
    assert 'stopped with a snapshot on a stop signal: requeueing' in out


@pytest.mark.parametrize('kind', ['slurm-gpu', 'pbs-cpu'])
def test_a_stop_without_progress_is_not_requeued(tmp_path, kind):
    """Stopped again before any new iteration (no snapshot since the launch): a
    requeue would repeat forever, so the job ends and says why."""
    status, out, called = run_snippet(tmp_path, kind, 'nothing', signal.SIGUSR1)
    assert status == 75 and called == '', out
    assert 'not requeueing, which would repeat forever' in out


def test_a_launcher_exit_0_counts_only_with_a_new_model(tmp_path):
    """Open MPI's mpiexec exits 0 after losing a node's daemon: without a new
    model.npz the job fails, saying so."""
    for case in ('unfinished', 'finished'):
        (tmp_path / case).mkdir()
    status, out, called = run_snippet(tmp_path / 'unfinished', 'slurm-cpu', 'nothing')
    assert status == 1 and called == '', out
    assert 'the launcher exited 0 but the training did not finish' in out
    status, out, called = run_snippet(tmp_path / 'finished', 'slurm-cpu', 'model')
    assert status == 0 and out == '', out


@pytest.mark.parametrize('kind', KINDS)
def test_dry_run_reports_what_would_fail(tmp_path, kind):
    """Each problem gets one line naming the variable to set; nothing is launched."""
    path = tmp_path / 'job.sh'
    path.write_text(render.render(kind, nodes=2))
    gpn = 8 if kind.endswith('gpu') else 1
    data = data_root(tmp_path)
    cases = {
        'DATA=': {'DATA': str(tmp_path / 'nowhere')},
        'TRAIN_LIST=': {'TRAIN_LIST': os.path.join(data, 'missing.txt')},
        'VAL_LIST=': {'VAL_LIST': str(tmp_path)},  # a folder, not a list
        'VENV=': {'VENV': str(tmp_path / 'no-venv')},
        'REPO=': {'REPO': str(tmp_path)},
        'OUT=': {'OUT': os.path.join(data, 'train.txt', 'out')},  # under a file
    }
    for variable, env in cases.items():
        proc = dry_run(path, kind, 2, tmp_path, env, ranks_per_node=gpn)
        errors = [l for l in proc.stderr.splitlines() if l.startswith('error: ')]
        assert proc.returncode == 1, (variable, proc.stderr)
        assert len(errors) == 1 and errors[0].startswith('error: ' + variable), proc.stderr
        assert 'DRY_RUN: the job would stop here' in proc.stderr
        assert proc.stdout == ''
    everything = {k: v for env in cases.values() for k, v in env.items() if k != 'DATA'}
    proc = dry_run(path, kind, 3, tmp_path, everything, ranks_per_node=gpn)
    errors = [l for l in proc.stderr.splitlines() if l.startswith('error: ')]
    assert proc.returncode == 1 and len(errors) == 6, proc.stderr  # all at once, nodes too
    assert sorted(os.listdir(data)) == ['train.txt', 'val.txt']  # nothing created


@pytest.mark.parametrize('kind', KINDS)
def test_only_variables_that_are_set_are_exported(tmp_path, kind):
    """``-x NAME`` of an unset NAME makes Open MPI print a warning box in every job."""
    path = tmp_path / 'job.sh'
    path.write_text(render.render(kind, nodes=1))
    gpn = 8 if kind.endswith('gpu') else 1
    for value, exported in ((None, False), ('/opt/lib', True)):
        proc = dry_run(path, kind, 1, tmp_path, {'LD_LIBRARY_PATH': value},
                       ranks_per_node=gpn)
        assert proc.returncode == 0, proc.stderr
        names = launcher_options(parse_launch(proc.stdout)[0])['-x']
        assert ('LD_LIBRARY_PATH' in names) == exported and 'PATH' in names


def test_a_silent_node_is_bounded_by_the_launchers_keepalive(tmp_path):
    path = tmp_path / 'job.sh'
    path.write_text(render.render('slurm-cpu', nodes=2))
    proc = dry_run(path, 'slurm-cpu', 2, tmp_path, {'NODE_TIMEOUT': '60'}, ranks_per_node=1)
    mca = dict(launcher_options(parse_launch(proc.stdout)[0])['--mca'])
    # idle time + probes x interval: about NODE_TIMEOUT
    total = int(mca['oob_tcp_keepalive_time']) + int(mca['oob_tcp_keepalive_probes']) * int(
        mca['oob_tcp_keepalive_intvl'])
    assert 55 <= total <= 65, mca


def test_renderer_refuses_sizes_that_cannot_run_and_warns_about_bad_ones(tmp_path):
    cli = [sys.executable, os.path.join(JOBS, 'render.py')]
    big = subprocess.run(cli + ['slurm-gpu', '--nodes', '100000'], capture_output=True,
                         text=True)
    assert big.returncode == 2 and big.stdout == ''
    assert "more than ImageNet's 1,281,167 training images" in big.stderr
    assert 'at most 5,004 nodes' in big.stderr
    short = subprocess.run(cli + ['pbs-cpu', '--walltime', '00:09:00'], capture_output=True,
                           text=True)
    assert short.returncode == 2 and 'stop as soon as it starts' in short.stderr
    loaders = subprocess.run(cli + ['slurm-cpu', '--cpus-per-node', '4', '--loaderjob', '6'],
                             capture_output=True, text=True)
    assert loaders.returncode == 0 and loaders.stdout.startswith('#!/bin/bash')
    assert loaders.stderr.splitlines() == [
        'warning: 6 loader processes per rank but 4 core(s) per rank: the loaders and the '
        'rank compete for the cores (use --loaderjob 3 or more --cpus-per-node)']
    batch = subprocess.run(cli + ['pbs-gpu', '--nodes', '256'], capture_output=True, text=True)
    assert batch.returncode == 0 and "larger than the paper's 32,768" in batch.stderr
    quiet = subprocess.run(cli + ['slurm-gpu'], capture_output=True, text=True)
    assert quiet.returncode == 0 and quiet.stderr == ''
