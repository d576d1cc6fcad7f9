"""chainer_ext.job.output_lock across machines, containers and PID namespaces with one host name."""
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap

import pytest

from chainer_ext.job import output_lock

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _plant(out, holder, age=0.0):
    path = os.path.join(str(out), output_lock.LOCK)
    with open(path, 'w') as f:
        json.dump(holder, f)
    if age:
        st = os.stat(path)
        os.utime(path, (st.st_atime, st.st_mtime - age))
    return path


def _here(**changes):
    """A holder recorded by a process of this machine, with ``changes``."""
    holder = output_lock._me()
    holder.update(changes)
    return holder


def _refused(out):
    with pytest.raises(output_lock.LockHeld):
        output_lock.acquire(str(out))
    assert os.path.exists(os.path.join(str(out), output_lock.LOCK))


def _taken_over(out):
    taken = []
    lock = output_lock.acquire(str(out), on_stale=taken.append)
    lock.release()
    return taken


def _dead_pid():
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def test_another_machine_with_this_host_name_and_a_fresh_heartbeat_keeps_its_lock(tmp_path):
    # its pid is alive here (this process), but on another machine (another boot) it
    # names something else: a live job there, judged by its heartbeat
    _plant(tmp_path, _here(boot_id='0c3a5a52-another-machine'))
    _refused(tmp_path)


def test_another_pid_namespace_with_a_fresh_heartbeat_keeps_its_lock(tmp_path):
    # a container on this host with this host name: its pid is no process here
    _plant(tmp_path, _here(pid=_dead_pid(), pid_namespace='pid:[4026599999]'))
    _refused(tmp_path)


@pytest.mark.parametrize('changes', [{'boot_id': '0c3a5a52-another-machine'},
                                     {'pid_namespace': 'pid:[4026599999]'},
                                     {'host': 'node7', 'boot_id': None, 'pid_namespace': None}])
def test_elsewhere_a_lock_is_stale_when_its_heartbeat_is(tmp_path, changes):
    _plant(tmp_path, _here(pid=_dead_pid(), **changes),
           age=output_lock.STALE_AFTER - 30)
    _refused(tmp_path)
    _plant(tmp_path, _here(pid=_dead_pid(), **changes),
           age=output_lock.STALE_AFTER + 30)
    assert len(_taken_over(tmp_path)) == 1


def test_here_a_lock_is_stale_when_its_process_is_gone_or_its_pid_reused(tmp_path):
    _plant(tmp_path, _here(pid=_dead_pid()))
    assert len(_taken_over(tmp_path)) == 1
    # this pid is alive, but it is not the process that took the lock
    _plant(tmp_path, _here(pid_start=output_lock._me()['pid_start'] - 1000))
    assert len(_taken_over(tmp_path)) == 1
    _plant(tmp_path, _here())  # the live holder itself
    _refused(tmp_path)


def test_private_names_are_unique_across_machines(tmp_path):
    """Another machine with this host name and pid writes its private file at the same
    time: neither may overwrite or remove the other's."""
    me = output_lock._me()
    others = [os.path.join(str(tmp_path), '{}.{}-{}'.format(output_lock.LOCK, me['host'],
                                                            me['pid'])),
              os.path.join(str(tmp_path), '{}.new-{}-{}'.format(output_lock.LOCK, me['host'],
                                                               me['pid']))]
    for path in others:
        with open(path, 'w') as f:
            f.write('theirs')
    lock = output_lock.acquire(str(tmp_path))
    for path in others:
        with open(path) as f:
            assert f.read() == 'theirs'
    lock.release()
    assert sorted(os.listdir(str(tmp_path))) == sorted(os.path.basename(p) for p in others)


_HOLD = textwrap.dedent('''
    import sys, time
    sys.path.insert(0, {repo!r})
    from chainer_ext.job import output_lock
    lock = output_lock.acquire({out!r})
    print('HELD', flush=True)
    time.sleep(60)
''')


def test_a_holder_in_another_pid_namespace_of_this_host(tmp_path):
    """A real PID namespace (unshare, root): a live holder inside whose pid is no process
    out here keeps its lock."""
    unshare = shutil.which('unshare')
    if unshare is None or os.geteuid() != 0:
        pytest.skip('needs root and unshare(1) for a PID namespace')
    probe = subprocess.run([unshare, '--pid', '--fork', 'true'], stderr=subprocess.PIPE)
    if probe.returncode != 0:
        pytest.skip('no PID namespace here: {}'.format(probe.stderr.decode().strip()))
    # the holder's pid inside: the first one above 2 that names no process out here
    pid = next(p for p in range(3, 1000) if not os.path.exists('/proc/{}'.format(p)))
    script = os.path.join(str(tmp_path), 'hold.py')
    with open(script, 'w') as f:
        f.write(_HOLD.format(repo=REPO, out=str(tmp_path / 'out')))
    os.mkdir(str(tmp_path / 'out'))
    # the namespace's shell is pid 1; each /bin/true takes the next pid, python the last
    shell = 'i=2; while [ $i -lt {} ]; do /bin/true; i=$((i+1)); done; "$0" "$1"'.format(pid)
    holder = subprocess.Popen([unshare, '--pid', '--fork', '--kill-child', 'sh', '-c', shell,
                               sys.executable, script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'HELD'
        with open(str(tmp_path / 'out' / output_lock.LOCK)) as f:
            recorded = json.load(f)
        assert recorded['host'] == socket.gethostname()
        assert recorded['pid_namespace'] != output_lock._me()['pid_namespace']
        assert recorded['pid'] == pid and not os.path.exists('/proc/{}'.format(pid))
        _refused(tmp_path / 'out')
    finally:
        holder.kill()
        holder.wait()
