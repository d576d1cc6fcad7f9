"""The CPU Slurm script of jobs/, submitted to a real Slurm cluster of network
namespaces (slurm_cluster.py), trains across two nodes and survives the
scheduler's signals, preemption by hand, a node dying and a second submission.

Every run trains the tiny data set with the script's own command; only
environment variables and sbatch options (-o, -t, --signal) differ from a
user's submission.  Times are measured from the job output, whose lines the
script stamps, and from the moment each line appeared (conftest.Watch).
"""
import json
import os
import re
import time

import pytest

from cluster.conftest import (EPOCH, Watch, job_env, log_epochs, max_weight_difference,
                              render)

ITERATIONS = EPOCH * 6  # 48 images / (2 ranks x 4)


def submit(cluster, script, env, out_file, *options):
    """sbatch the script with ``env`` and ``options``; its output goes to ``out_file``."""
    return cluster.sbatch(['-o', str(out_file)] + list(options) + [script], env=env)


def stamped(text, what):
    """Seconds since 1970 of the script's first line containing ``what``."""
    m = re.search(r'(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) [^\n]*' + re.escape(what), text)
    assert m, 'no "{}" line in:\n{}'.format(what, text[-4000:])
    return time.mktime(time.strptime(m.group(1)[:19], '%Y-%m-%d %H:%M:%S')) + float(
        m.group(1)[19:])


def test_trains_across_two_nodes_like_mpiexec(cluster, data, script, reference, tmp_path):
    """An uninterrupted Slurm run: ranks on both nodes, the uninterrupted
    ``mpiexec -n 2`` run's weights, and no warning box from Open MPI."""
    out = tmp_path / 'out'
    job = submit(cluster, script, job_env(data, out), tmp_path / 'job.out')
    info = cluster.wait(job, timeout=600)
    text = (tmp_path / 'job.out').read_text()
    assert (info['JobState'], info['ExitCode']) == ('COMPLETED', '0:0'), text[-4000:]
    with open(out / 'config.json') as f:
        config = json.load(f)
    assert config['hardware']['hosts'] == ['n1', 'n2'], config['hardware']
    assert max_weight_difference(out, reference) <= 1e-6
    assert log_epochs(out) == list(range(1, EPOCH + 1))
    assert 'Could not find the environment variable' not in text
    assert '----------' not in text  # no Open MPI notice box at all


def test_time_limit_stops_requeues_and_resumes(cluster, data, script, reference, tmp_path):
    """Slurm's --signal=B:USR1@N before the time limit: every rank stops at one
    iteration with a snapshot, the script exits 75 and requeues the job (same job
    id), the requeued run resumes there and ends on the uninterrupted weights."""
    out, out_file = tmp_path / 'out', tmp_path / 'job.out'
    # slurmctld checks time limits every 30 s from its start and signals at the
    # first check once fewer than N + 30 s are left: with -t 1 and N = 14, the
    # first check 16 s or more into the job.  Submitted 18 s before a check, the
    # job is signalled 18 s in: after its first iterations, long before its end.
    since = (time.time() - cluster.ctl_started) % 30
    time.sleep((30 - 18 - since) % 30)
    watch = Watch(out_file)
    try:
        submitted = time.time()
        job = submit(cluster, script, job_env(data, out), out_file,
                     '-t', '1', '--signal=B:USR1@14')
        requeue = watch.wait_for('requeueing', timeout=240)
        info = cluster.wait(job, ('PENDING',), timeout=30)
        assert info['Restarts'] == '1', info
        # the resumed run gets time to finish (a longer -t on a resubmission)
        cluster.run(['scontrol', 'update', 'JobId={}'.format(job), 'TimeLimit=15'])
        info = cluster.wait(job, timeout=600)
        resumed = watch.first('resumed from', after=requeue)
        started = watch.first('ranks=')  # the job's first line: at or after its start
    finally:
        watch.stop()
    text = out_file.read_text()
    assert (info['JobState'], info['ExitCode']) == ('COMPLETED', '0:0'), text[-4000:]
    stop = re.findall(r'stopped at iteration (\d+) on SIGUSR1 \(snapshot (\S+)\)', text)
    assert len(stop) == 1, text[-4000:]
    iteration, snap = int(stop[0][0]), stop[0][1]
    assert 0 < iteration < ITERATIONS
    # the snapshot of that iteration: its own, or the epoch's if it ended an epoch
    assert os.path.basename(snap) in ('iter-{}'.format(iteration),
                                      'epoch-{}'.format(iteration // 6))
    assert 'resumed from {} (iteration {})'.format(snap, iteration) in text
    assert text.count('train_imagenet.py: finished') == 1
    assert 'Traceback' not in text, text[-4000:]  # the loaders' helpers outlive the signal
    assert log_epochs(out) == list(range(1, EPOCH + 1))  # each epoch once
    assert max_weight_difference(out, reference) <= 1e-6
    signalled = stamped(text, 'SIGUSR1: telling the ranks')
    requeued = stamped(text, 'requeueing')
    print('\ntime limit: submitted -> signal {:.1f} s; signal -> job requeued {:.1f} s '
          '(bound {:.1f} s: the time limit); '
          'requeue -> resumed run starts iteration {} {:.1f} s'.format(
              signalled - submitted, requeued - signalled, started + 60 - signalled,
              iteration + 1, resumed - requeue))
    # Bound: the 1-minute time limit (-t 1), from the job's start, at or before its first
    # line appeared.  Past it Slurm ends the job (SIGTERM at its first 30-s check past the
    # limit) and a stop could come only after that.  --signal=B:USR1@14 and those checks
    # leave at least 14 s between the signal and the limit (about 42 s as submitted here)
    # for one iteration, a snapshot and the ranks' exit (about 2 s).
    assert requeued < started + 60


def newest_complete(out):
    """The newest snapshot whose manifest lists files that are all there, whole
    (read here, not through the project's snapshots module)."""
    best = None
    root = os.path.join(str(out), 'snapshots')
    for name in os.listdir(root) if os.path.isdir(root) else ():
        manifest = os.path.join(root, name, 'manifest.json')
        if not re.match(r'^(epoch|iter)-\d+$', name) or not os.path.exists(manifest):
            continue
        with open(manifest) as f:
            m = json.load(f)
        whole = all(os.path.isfile(os.path.join(root, name, f))
                    and os.path.getsize(os.path.join(root, name, f)) == size
                    for f, size in m['files'].items())
        if whole and (best is None or m['iteration'] > best[0]):
            best = (m['iteration'], os.path.join(root, name))
    return best


def wait_snapshot(out, epoch, timeout=600):
    """Wait until the run in ``out`` has a complete snapshot of epoch ``epoch``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = newest_complete(out)
        if found is not None and found[0] >= 6 * epoch:
            return found
        time.sleep(0.2)
    raise AssertionError('no snapshot of epoch {} in {} after {} s'.format(epoch, out, timeout))


def resubmit(cluster, script, data, out, out_file, reference=None):
    """A resubmission continues from the newest complete snapshot; with
    ``reference`` it trains to the end and ends on the uninterrupted weights,
    without, it is cancelled once it has resumed.  Returns its output."""
    iteration, path = newest_complete(out)
    job = submit(cluster, script, job_env(data, out), out_file)
    resumed = 'resumed from {} (iteration {})'.format(path, iteration)
    if reference is None:
        watch = Watch(out_file)
        try:
            watch.wait_for('resumed from', timeout=300)
        finally:
            watch.stop()
        cluster.run(['scancel', str(job)])
        cluster.wait(job, timeout=120)
        text = out_file.read_text()
        assert resumed in text, text[-4000:]
        return text
    info = cluster.wait(job, timeout=600)
    text = out_file.read_text()
    assert (info['JobState'], info['ExitCode']) == ('COMPLETED', '0:0'), text[-4000:]
    assert resumed in text, text[-4000:]
    assert log_epochs(out) == list(range(1, EPOCH + 1))
    assert max_weight_difference(out, reference) <= 1e-6
    return text


def test_scancel_usr1_requeues_and_plain_scancel_leaves_a_resumable_run(
        cluster, data, script, reference, tmp_path):
    """``scancel --signal=USR1 --batch``: stop with a snapshot, requeue, resume.
    A plain ``scancel`` (SIGTERM to every step, SIGKILL after KillWait): the job
    ends; whatever it left, a resubmission resumes only a complete snapshot."""
    out, out_file = tmp_path / 'out', tmp_path / 'job.out'
    job = submit(cluster, script, job_env(data, out), out_file)
    wait_snapshot(out, 2)
    cluster.run(['scancel', '--signal=USR1', '--batch', str(job)])
    info = cluster.wait(job, ('PENDING',), timeout=120)
    text = out_file.read_text()
    assert info['Restarts'] == '1' and 'requeueing' in text, text[-4000:]
    stop = re.findall(r'stopped at iteration (\d+) on SIGUSR1', text)
    assert len(stop) == 1 and int(stop[0]) >= 12, text[-4000:]
    first_stop = int(stop[0])
    cluster.wait(job, ('RUNNING',), timeout=120)
    deadline = time.time() + 300
    while newest_complete(out)[0] <= first_stop and time.time() < deadline:
        time.sleep(0.2)  # the resumed run makes progress ...
    assert newest_complete(out)[0] > first_stop, (
        'the resumed run wrote no snapshot past iteration {} in 300 s:\n{}'.format(
            first_stop, out_file.read_text()[-4000:]))
    cluster.run(['scancel', str(job)])  # ... and is cancelled
    info = cluster.wait(job, ('CANCELLED', 'FAILED', 'COMPLETED'), timeout=120)
    text = out_file.read_text()
    assert info['JobState'] == 'CANCELLED', (info, text[-4000:])
    assert text.count('resumed from') == 1
    resubmit(cluster, script, data, out, tmp_path / 'again.out', reference)
    assert not [n for n in os.listdir(out / 'snapshots') if n.startswith('.partial')]


def slurm_earliest(cluster):
    """Seconds from a node's end to the earliest moment Slurm could set it DOWN and end its
    jobs: ``SlurmdTimeout`` after its last answer, which may precede the end by one ping
    cycle (``SlurmdTimeout``/3 s): 20 s here."""
    return cluster.slurmd_timeout * 2 / 3


def test_a_killed_node_ends_the_job_at_once_and_a_resubmission_resumes(
        cluster, data, script, reference, tmp_path):
    """Node n2 dies (its slurmd and the job's processes there are killed): the
    launcher sees the connections close and ends the job, naming the node; a
    resubmission resumes from the last complete snapshot."""
    out, out_file = tmp_path / 'out', tmp_path / 'job.out'
    job = submit(cluster, script, job_env(data, out), out_file)
    wait_snapshot(out, 2)
    killed = time.time()
    assert cluster.kill_node('n2')
    info = cluster.wait(job, timeout=120, poll=0.2)
    ended = time.time()  # in Slurm: its job ends once n2 is DOWN (SlurmdTimeout)
    text = out_file.read_text()
    cluster.start_node('n2')
    cluster.wait_nodes('idle', timeout=120)
    assert info['JobState'] == 'FAILED', (info, text[-4000:])
    assert re.search(r'Remote daemon: .* on node n2', text), text[-4000:]
    launcher_exit = stamped(text, 'the training did not finish')
    print('\nnode killed -> launcher exited {:.1f} s, Slurm job ended {:.1f} s '
          '(bounds {:.0f} and {:.0f} s)'.format(launcher_exit - killed, ended - killed,
                                               slurm_earliest(cluster),
                                               cluster.node_down_bound()))
    # The killed processes' connections close (n2's kernel lives on), which mpiexec sees
    # at once, with no timer.  Bound: before any timer could end the job, that is before
    # Slurm could set n2 DOWN (20 s: all of it margin for mpiexec's exit); mpiexec's
    # keepalive (NODE_TIMEOUT, 120 s by default) comes later still.
    assert launcher_exit - killed < slurm_earliest(cluster)
    assert ended - killed < cluster.node_down_bound()
    resubmit(cluster, script, data, out, tmp_path / 'again.out')


@pytest.mark.parametrize('bound', ['launcher', 'slurm'])
def test_a_silent_link_ends_the_job_within_its_bound(
        cluster, data, script, reference, tmp_path, bound):
    """Node n2's link drops every packet, silently (no reset): the MPI collective
    would wait forever.  Bound 'launcher': mpiexec's keepalive on its daemons'
    connections ends the job after about NODE_TIMEOUT s, naming n2.  Bound
    'slurm' (the launcher's bound set far away): Slurm's node timeout sets n2
    DOWN and requeues the job, which resumes once n2 is back."""
    out, out_file = tmp_path / 'out', tmp_path / 'job.out'
    node_timeout = 12 if bound == 'launcher' else 3600
    job = submit(cluster, script, job_env(data, out, NODE_TIMEOUT=node_timeout), out_file)
    wait_snapshot(out, 1)
    cut = time.time()
    cluster.cut_link('n2')
    try:
        states = ('FAILED', 'COMPLETED') if bound == 'launcher' else ('PENDING',)
        info = cluster.wait(job, states, timeout=240, poll=0.2)
        ended = time.time()
    finally:
        cluster.restore_link('n2')
        cluster.resume_node('n2')
    text = out_file.read_text()
    if bound == 'launcher':
        assert info['JobState'] == 'FAILED', (info, text[-4000:])
        assert 'lost communication with a remote daemon' in text, text[-4000:]
        assert re.search(r'Remote daemon: .* on node n2', text), text[-4000:]
        launcher_exit = stamped(text, 'the training did not finish')
        print('\nlink cut -> launcher exited {:.1f} s, Slurm job ended {:.1f} s '
              '(bounds {:.0f} and {:.0f} s)'.format(launcher_exit - cut, ended - cut,
                                                   slurm_earliest(cluster),
                                                   cluster.node_down_bound()))
        # mpiexec's keepalive (kernel timers): NODE_TIMEOUT/2 s idle, then 6 probes
        # NODE_TIMEOUT/12 s apart, so n2 is found lost at most 12 s after the cut; then
        # mpiexec ends the ranks and exits.  Bound: before Slurm could set n2 DOWN (20 s),
        # so it was the keepalive; the 8 s beyond its 12 are margin for mpiexec's exit.
        assert node_timeout < slurm_earliest(cluster)
        assert launcher_exit - cut < slurm_earliest(cluster)
        # Slurm's record of the job ends once n2 is DOWN (its epilog never reports)
        assert ended - cut < cluster.node_down_bound()
        cluster.wait_nodes('idle', timeout=60)
        resubmit(cluster, script, data, out, tmp_path / 'again.out')
    else:
        print('\nlink cut -> Slurm requeued the job {:.1f} s (bound {:.0f} s)'.format(
            ended - cut, cluster.node_down_bound()))
        assert info['Restarts'] == '1', info
        assert 'DUE TO NODE FAILURE' in text, text[-4000:]
        # n2 is DOWN once it has not answered for SlurmdTimeout s; the job is requeued then
        assert ended - cut < cluster.node_down_bound()
        iteration, path = newest_complete(out)
        watch = Watch(out_file)
        try:
            watch.wait_for('resumed from {} (iteration {})'.format(path, iteration), 300)
        finally:
            watch.stop()
        cluster.run(['scancel', str(job)])
        cluster.wait(job, timeout=120)


def test_two_submissions_at_once_take_turns(cluster, data, tmp_path):
    """One script submitted twice at once (one node each, one output folder): the
    second waits for the folder's lock, naming the first; the folder holds one
    run's log, each epoch once."""
    script = render(tmp_path, 1, 'job1.sh')
    out = tmp_path / 'out'
    env = job_env(data, out, EPOCH=2)
    jobs = [submit(cluster, script, env, tmp_path / 'job{}.out'.format(i)) for i in (1, 2)]
    infos = [cluster.wait(j, timeout=600) for j in jobs]
    texts = [(tmp_path / 'job{}.out'.format(i)).read_text() for i in (1, 2)]
    for info, text in zip(infos, texts):
        assert (info['JobState'], info['ExitCode']) == ('COMPLETED', '0:0'), text[-4000:]
    waited = [i for i, text in enumerate(texts) if 'waiting up to' in text]
    assert len(waited) == 1, texts
    first = jobs[1 - waited[0]]
    assert 'in use by job {} '.format(first) in texts[waited[0]]
    assert texts[1 - waited[0]].count('train_imagenet.py: finished') == 1
    assert log_epochs(out) == [1, 2]


def test_bad_input_stops_in_seconds_naming_the_variable(cluster, data, script, tmp_path):
    """Wrong node count, a missing list, an unwritable OUT, no venv: the job ends
    within seconds with one line naming what to set."""
    cases = {
        'nodes': ({}, ['-N', '1'], 'the job has 1 nodes but NODES=2'),
        'list': ({'TRAIN_LIST': str(tmp_path / 'none.txt')}, [], 'TRAIN_LIST='),
        'out': ({'OUT': os.path.join(data[0], 'out')}, [], 'OUT='),
        'venv': ({'VENV': str(tmp_path / 'no-venv')}, [], 'VENV='),
    }
    jobs = {name: submit(cluster, script, job_env(data, tmp_path / 'out', **env),
                         tmp_path / (name + '.out'), *options)
            for name, (env, options, _) in cases.items()}
    for name, job in jobs.items():
        info = cluster.wait(job, timeout=120)
        lines = (tmp_path / (name + '.out')).read_text().splitlines()
        assert (info['JobState'], info['ExitCode']) == ('FAILED', '1:0'), lines
        assert len(lines) == 1 and lines[0].startswith('error: ' + cases[name][2]), lines
        h, m, sec = map(int, info['RunTime'].split(':'))
        # The checks are shell tests run before any program that can wait (the venv's
        # Python, the launcher, the lock wait): the run time is Slurm starting the batch
        # step and learning of its end, a message each, retried only after MessageTimeout.
        assert h * 3600 + m * 60 + sec < cluster.message_timeout, info['RunTime']
    assert not (tmp_path / 'out').exists()
