"""A private Slurm cluster on one machine: nodes are network namespaces on a bridge.

For testing and measuring the job scripts of ``jobs/`` under a real scheduler::

    with SlurmCluster(nodes=2) as cluster:
        job = cluster.sbatch(['jobs/slurm_cpu_2nodes.sh'], env={...})
        cluster.wait(job, 'COMPLETED')

Layout.  A controller namespace holds a bridge (``br0``, the subnet's first
address) and ``slurmctld``; each node ``nI`` is a namespace whose ``eth0`` (the
job scripts' default interface) is a veth into that bridge, running its own
``slurmd -N nI`` with its own hostname (a UTS namespace).  Nothing is added to
the machine's own network namespace, so the subnet and the ports cannot collide
with a Slurm or a network the machine already has; client commands (``sbatch``,
``squeue``...) run inside the controller's namespace (:meth:`SlurmCluster.run`).
``munged`` listens on a socket in the cluster's folder (``AuthInfo=socket=``).
Every file (``SLURM_CONF``, munge key and socket, spool, state, logs) lives under
one temporary folder; ``/etc/slurm`` is never read.

Teardown kills the processes the cluster started, found by their PIDs (the
daemons it launched, and every process inside its namespaces), never by name;
it runs on :meth:`stop`, on leaving the ``with`` block, and, should the owning
process die without cleaning up (``SIGKILL``, a crash), from a small reaper
process that notices the end of its pipe.

Slurm is Debian's ``slurm-wlm`` (22.05) with ``munge``: the nodes run without
cgroups (``ProctrackType=proctrack/linuxproc``, ``TaskPlugin=task/none``) and
each ``slurmd`` is started with ``nsenter --net`` (``ip netns exec`` remounts
``/sys``, which breaks slurmd's start-up).  Needs root and ``ip netns``;
:func:`unavailable_reason` says in one line why a cluster cannot run here.

Run ``python tests/cluster/slurm_cluster.py --nodes 2`` for a shell inside a
cluster (``sinfo``, ``sbatch`` work there); leaving the shell tears it down.
"""
import argparse
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

#: The private subnet of the cluster's bridge; only its addresses are used.
#: It exists only inside the cluster's own namespaces.
DEFAULT_SUBNET = os.environ.get('AKIBA_CLUSTER_SUBNET', '10.213.0.0/24')
DAEMONS = ('slurmctld', 'slurmd', 'munged', 'sbatch', 'scontrol', 'squeue', 'sinfo',
           'scancel', 'srun')
SBIN = ('/usr/sbin', '/usr/local/sbin', '/sbin')


class ClusterUnavailable(RuntimeError):
    """Why a cluster cannot start here, in one line."""


def _which(name):
    return shutil.which(name, path=os.pathsep.join(
        [os.environ.get('PATH', '')] + list(SBIN)))


def unavailable_reason():
    """One line saying why no cluster can run on this machine, or ``None``."""
    if not hasattr(os, 'geteuid') or os.geteuid() != 0:
        return 'needs root (network namespaces, slurmd)'
    for tool in ('ip', 'tc', 'nsenter', 'unshare'):
        if _which(tool) is None:
            return 'no `{}` command (iproute2 / util-linux)'.format(tool)
    missing = [d for d in DAEMONS if _which(d) is None]
    if missing:
        return ('Slurm is not installed ({} missing): apt-get install slurm-wlm munge, '
                'or make test-cluster'.format(', '.join(missing)))
    probe = 'akprobe{}'.format(os.getpid())
    made = subprocess.run(['ip', 'netns', 'add', probe], capture_output=True, text=True)
    if made.returncode != 0:
        return 'cannot create a network namespace (`ip netns add`: {})'.format(
            (made.stderr or made.stdout).strip() or made.returncode)
    subprocess.run(['ip', 'netns', 'del', probe], capture_output=True)
    return None


def parse_rate(rate):
    """``'2gbit'`` -> 2e9 bits/s (tc's units)."""
    units = {'gbit': 1e9, 'mbit': 1e6, 'kbit': 1e3, 'bit': 1.0}
    for unit, factor in units.items():
        if rate.endswith(unit):
            return float(rate[:-len(unit)]) * factor
    raise ValueError('rate must end with one of {}: {!r}'.format(', '.join(units), rate))


def _sh(*argv, check=True, **kw):
    proc = subprocess.run([str(a) for a in argv], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kw)
    if check and proc.returncode != 0:
        raise RuntimeError('{} exited {}: {}'.format(' '.join(map(str, argv)),
                                                      proc.returncode, proc.stdout.strip()))
    return proc


def _kill_pids(pids, sig=signal.SIGKILL):
    for pid in pids:
        try:
            os.kill(int(pid), sig)
        except (ProcessLookupError, ValueError):
            pass


def start_ticks(pid):
    """When process ``pid`` started (clock ticks since boot), or None if it is gone:
    with the PID, it names one process even after the PID is reused."""
    try:
        with open('/proc/{}/stat'.format(int(pid))) as f:
            return int(f.read().rsplit(')', 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def netns_pids(netns):
    """PIDs of the processes inside network namespace ``netns``."""
    proc = subprocess.run(['ip', 'netns', 'pids', netns], capture_output=True, text=True)
    return [int(p) for p in proc.stdout.split()] if proc.returncode == 0 else []


def teardown(state):
    """Kill what ``state`` (the cluster's JSON record) started; remove its namespaces
    and folder.  Safe to call twice and from another process (the reaper)."""
    namespaces = state.get('namespaces', [])
    for _ in range(3):  # processes in the namespaces may fork while we kill
        pids = {pid for pid, ticks in state.get('pids', []) if start_ticks(pid) == ticks}
        for ns in namespaces:
            pids.update(netns_pids(ns))
        pids.discard(os.getpid())
        if not pids:
            break
        _kill_pids(pids)
        time.sleep(0.2)
    for ns in namespaces:
        subprocess.run(['ip', 'netns', 'del', ns], capture_output=True)
    base = state.get('base')
    if base and os.path.isdir(base) and not state.get('keep'):
        shutil.rmtree(base, ignore_errors=True)


def _reaper(state_path):
    """Wait for the owner's pipe to close, then tear down what the state file records."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        sys.stdin.buffer.read()
    finally:
        try:
            with open(state_path) as f:
                state = json.load(f)
        except (OSError, ValueError):
            return
        teardown(state)


class SlurmCluster(object):
    """``nodes`` Slurm nodes (network namespaces) and a controller; see the module doc.

    Args:
        nodes: number of compute nodes (``n1`` ... ``nN``).
        cpus_per_node: CPUs each node declares (Slurm schedules by them; the
            namespaces all share this machine's cores).
        subnet: private IPv4 subnet of the bridge (``AKIBA_CLUSTER_SUBNET``).
        slurmd_timeout: seconds without an answer after which Slurm sets a node
            DOWN and ends (or requeues) its jobs (``SlurmdTimeout``).
        kill_wait: seconds between SIGTERM and SIGKILL at a job's end (``KillWait``).
        cred_expire: lifetime of a job credential, which is also how long a
            requeued job waits before it may start again (Slurm's default: 120 s).
        keep: keep the folder (logs) after teardown.
        base: the folder to create the cluster's folder in (default ``/tmp``); it
            must be short, as the cluster's Unix sockets live there.
    """

    def __init__(self, nodes=2, cpus_per_node=2, subnet=DEFAULT_SUBNET, slurmd_timeout=30,
                 kill_wait=10, cred_expire=20, keep=False, base=None):
        if not 1 <= int(nodes) <= 64:
            raise ValueError('nodes must be 1..64, got {}'.format(nodes))
        self.n_nodes = int(nodes)
        self.cpus_per_node = int(cpus_per_node)
        self.net = ipaddress.ip_network(subnet)
        if self.net.num_addresses < self.n_nodes + 12:
            raise ValueError('subnet {} is too small for {} nodes'.format(subnet, nodes))
        self.slurmd_timeout = int(slurmd_timeout)
        self.kill_wait = int(kill_wait)
        self.cred_expire = int(cred_expire)
        self.message_timeout = 10
        self.keep = keep
        self._base_parent = base
        tag = '{:x}'.format(os.getpid())[-6:]
        self.ctl_ns = 'ak{}-ctl'.format(tag)
        self.node_names = ['n{}'.format(i + 1) for i in range(self.n_nodes)]
        self.node_ns = {n: 'ak{}-{}'.format(tag, n) for n in self.node_names}
        hosts = list(self.net.hosts())
        self.ctl_addr = str(hosts[0])
        self.node_addr = {n: str(hosts[10 + i]) for i, n in enumerate(self.node_names)}
        self.base = None
        self.ctl_started = None
        self._procs = {}
        self._reaper = None
        self.state = None

    # ---- paths ----------------------------------------------------------------
    def path(self, *parts):
        return os.path.join(self.base, *parts)

    @property
    def conf(self):
        return self.path('etc', 'slurm.conf')

    def env(self, extra=None):
        """Environment of client commands and jobs: ``SLURM_CONF`` of this cluster."""
        env = dict(os.environ)
        for key in list(env):
            if key.startswith(('SLURM_', 'SBATCH_', 'SRUN_', 'SALLOC_')):
                del env[key]
        env['SLURM_CONF'] = self.conf
        env['PATH'] = os.pathsep.join([env.get('PATH', '')] + list(SBIN))
        env.update(extra or {})
        return env

    # ---- start ------------------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, timeout=60):
        reason = unavailable_reason()
        if reason:
            raise ClusterUnavailable(reason)
        self.base = tempfile.mkdtemp(prefix='akiba-slurm-', dir=self._base_parent or '/tmp')
        # slurmd and slurmstepd put Unix sockets (at most 107 bytes of path) in the
        # spool folder, named NODE_JOB.STEP: a long folder makes every job fail.
        longest = len(self.path('spool', 'n99', 'n99_4294967294.4294967291'))
        if longest > 107:
            shutil.rmtree(self.base, ignore_errors=True)
            raise ValueError('{} is too long a folder for the cluster: its sockets would '
                             'have {} bytes of path (at most 107)'.format(self.base, longest))
        for sub in ('etc', 'munge', 'log', 'state', 'spool', 'run'):
            os.makedirs(self.path(sub))
        os.chmod(self.base, 0o755)
        os.chmod(self.path('munge'), 0o700)
        self.state = {'base': self.base, 'keep': self.keep, 'pids': [],
                      'namespaces': [self.ctl_ns] + list(self.node_ns.values())}
        self._save_state()
        self._reaper = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), '--reap', self.path('state.json')],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        try:
            self._start_munge()
            self._make_network()
            self._write_conf()
            self._start_daemons()
            self.wait_nodes('idle', timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _save_state(self):
        tmp = self.path('state.json.tmp')
        with open(tmp, 'w') as f:
            json.dump(self.state, f)
        os.replace(tmp, self.path('state.json'))

    def _spawn(self, name, argv, log):
        out = open(self.path('log', log), 'ab')
        proc = subprocess.Popen([str(a) for a in argv], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=self.env(),
                                start_new_session=True)
        out.close()
        self._procs[name] = proc
        self.state['pids'].append([proc.pid, start_ticks(proc.pid)])
        self._save_state()
        return proc

    def _start_munge(self):
        key = self.path('munge', 'munge.key')
        with open(key, 'wb') as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        self.munge_socket = self.path('munge', 'munge.socket')
        self._spawn('munged', [_which('munged'), '-F', '--force', '--socket', self.munge_socket,
                               '--key-file', key, '--log-file', self.path('log', 'munged.log'),
                               '--pid-file', self.path('munge', 'munged.pid'),
                               '--seed-file', self.path('munge', 'munged.seed')],
                    'munged.out')
        self._wait_for(lambda: os.path.exists(self.munge_socket), 10,
                       'munged did not create its socket', 'munged.log')

    def _make_network(self):
        ctl = self.ctl_ns
        prefix = self.net.prefixlen
        _sh('ip', 'netns', 'add', ctl)
        _sh('ip', '-n', ctl, 'link', 'set', 'lo', 'up')
        _sh('ip', '-n', ctl, 'link', 'add', 'br0', 'type', 'bridge')
        _sh('ip', '-n', ctl, 'addr', 'add', '{}/{}'.format(self.ctl_addr, prefix), 'dev', 'br0')
        _sh('ip', '-n', ctl, 'link', 'set', 'br0', 'up')
        for name in self.node_names:
            ns = self.node_ns[name]
            _sh('ip', 'netns', 'add', ns)
            _sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
            _sh('ip', '-n', ctl, 'link', 'add', 'v-' + name, 'type', 'veth',
                'peer', 'name', 'eth0', 'netns', ns)
            _sh('ip', '-n', ctl, 'link', 'set', 'v-' + name, 'master', 'br0', 'up')
            _sh('ip', '-n', ns, 'addr', 'add', '{}/{}'.format(self.node_addr[name], prefix),
                'dev', 'eth0')
            _sh('ip', '-n', ns, 'link', 'set', 'eth0', 'up')

    def _write_conf(self):
        p = self.path
        nodes = '\n'.join(
            'NodeName={} NodeAddr={} NodeHostname={} CPUs={} State=UNKNOWN'.format(
                n, self.node_addr[n], n, self.cpus_per_node) for n in self.node_names)
        text = CONF.format(
            cluster='akiba{}'.format(os.getpid()), ctl_addr=self.ctl_addr,
            munge=self.munge_socket, state=p('state'), spool=p('spool', '%n'),
            log=p('log'), run=p('run'), slurmd_timeout=self.slurmd_timeout,
            kill_wait=self.kill_wait, cred_expire=self.cred_expire,
            message_timeout=self.message_timeout, nodes=nodes, names=','.join(self.node_names))
        with open(self.conf, 'w') as f:
            f.write(text)

    def _in_ns(self, ns, hostname, argv):
        """argv run in network namespace ``ns`` with its own hostname (UTS namespace)."""
        return ([_which('nsenter'), '--net=/run/netns/' + ns, '--', _which('unshare'), '--uts',
                 '--', 'sh', '-c', 'hostname "$0" && exec "$@"', hostname] + list(argv))

    def _start_daemons(self):
        self.ctl_started = time.time()
        self._spawn('slurmctld', self._in_ns(self.ctl_ns, 'akctl', [
            _which('slurmctld'), '-D', '-c', '-f', self.conf]), 'slurmctld.out')
        self._wait_for(lambda: self.run(['scontrol', 'ping'], check=False).returncode == 0,
                       20, 'slurmctld did not answer', 'slurmctld.log')
        for name in self.node_names:
            self.start_node(name)

    def start_node(self, name):
        """(Re)start the ``slurmd`` of node ``name``."""
        self._spawn('slurmd-' + name, self._in_ns(self.node_ns[name], name, [
            _which('slurmd'), '-D', '-N', name, '-f', self.conf]), 'slurmd-{}.out'.format(name))

    def _wait_for(self, ready, timeout, what, log):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if ready():
                return
            for name, proc in self._procs.items():
                if proc.poll() is not None and name != 'reaper':
                    raise RuntimeError('{} exited {} ({}):\n{}'.format(
                        name, proc.returncode, what, self.log_tail(name + '.out')
                        + self.log_tail(log)))
            time.sleep(0.2)
        raise RuntimeError('{} within {} s:\n{}'.format(what, timeout, self.log_tail(log)))

    def log_tail(self, name, lines=30):
        try:
            with open(self.path('log', name), errors='replace') as f:
                return ''.join(f.readlines()[-lines:])
        except OSError:
            return ''

    # ---- stop -------------------------------------------------------------------
    def stop(self):
        if self.state is not None:
            teardown(self.state)
        if self._reaper is not None:
            self._reaper.stdin.close()
            try:
                self._reaper.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._reaper.kill()
            self._reaper = None
        for proc in self._procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._procs = {}
        self.state = None

    # ---- client commands ----------------------------------------------------------
    def run(self, argv, env=None, check=True, timeout=60, **kw):
        """Run a command in the controller's namespace with this cluster's SLURM_CONF."""
        proc = subprocess.run(['nsenter', '--net=/run/netns/' + self.ctl_ns, '--']
                              + [str(a) for a in argv], env=self.env(env),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, **kw)
        if check and proc.returncode != 0:
            raise RuntimeError('{} exited {}:\n{}'.format(' '.join(map(str, argv)),
                                                          proc.returncode, proc.stdout))
        return proc

    def sbatch(self, argv, env=None, cwd=None):
        """Submit; returns the job id."""
        out = self.run(['sbatch', '--parsable'] + list(argv), env=env, cwd=cwd).stdout
        return int(out.strip().splitlines()[-1].split(';')[0])

    def job(self, job_id):
        """``scontrol show job`` as a dict (``JobState``, ``Restarts``, ``ExitCode``...)."""
        proc = self.run(['scontrol', '-o', 'show', 'job', str(job_id)], check=False)
        info = {}
        for field in proc.stdout.split():
            key, sep, value = field.partition('=')
            if sep and key not in info:
                info[key] = value
        return info

    def wait(self, job_id, states=('COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL',
                                   'OUT_OF_MEMORY', 'PREEMPTED', 'BOOT_FAIL', 'DEADLINE'),
             timeout=300, poll=0.5):
        """Wait until the job is in one of ``states``; returns its info dict."""
        if isinstance(states, str):
            states = (states,)
        deadline = time.time() + timeout
        info = {}
        while time.time() < deadline:
            info = self.job(job_id)
            if info.get('JobState') in states:
                return info
            time.sleep(poll)
        raise TimeoutError('job {} not in {} after {} s: {}'.format(
            job_id, '/'.join(states), timeout, info))

    def node_states(self):
        out = self.run(['sinfo', '-h', '-N', '-o', '%N %T']).stdout
        return dict(line.split()[:2] for line in out.splitlines() if line.strip())

    def wait_nodes(self, state='idle', timeout=60, nodes=None):
        """Wait until ``nodes`` (all by default) are in ``state`` and answering (sinfo
        marks a node that does not answer with ``*``)."""
        nodes = nodes or self.node_names
        seen = {}

        def ready():
            seen.update(self.node_states())
            return all(seen.get(n) == state for n in nodes)
        try:
            self._wait_for(ready, timeout, 'nodes {} not {}'.format(','.join(nodes), state),
                           'slurmctld.log')
        except RuntimeError as e:
            raise RuntimeError('{}\nnode states: {}'.format(e, seen)) from None

    # ---- faults and links ------------------------------------------------------------
    def kill_node(self, name):
        """SIGKILL every process of node ``name``: its slurmd and the job's ranks."""
        pids = netns_pids(self.node_ns[name])
        _kill_pids(pids)
        return pids

    def cut_link(self, name):
        """Pull node ``name``'s cable: its switch port (the bridge's side of the
        veth) goes down, so every packet to or from the node is lost, silently:
        no reset, no ICMP; TCP on both sides just retransmits."""
        _sh('ip', '-n', self.ctl_ns, 'link', 'set', 'v-' + name, 'down')

    def restore_link(self, name):
        _sh('ip', '-n', self.ctl_ns, 'link', 'set', 'v-' + name, 'up')

    def resume_node(self, name):
        """Return node ``name`` to service once it answers again, as an administrator
        does after a repair (``scontrol update State=RESUME``).  Slurm never pings a
        node it set DOWN for not answering; it only asks it to register again once
        every 20 pings (``SlurmdTimeout``/3 s apart: 200 s here)."""
        self.run(['scontrol', 'update', 'NodeName=' + name, 'State=RESUME'], check=False)

    def node_down_bound(self):
        """Seconds from a node's last answer to Slurm setting it DOWN, at most.
        slurmctld runs a ping cycle every ``SlurmdTimeout``/3 s and sets DOWN a node
        whose last answer is ``SlurmdTimeout`` s older than the previous cycle: within
        ``SlurmdTimeout`` * 4/3 s plus one cycle; 5 s more for this machine's load."""
        return self.slurmd_timeout * 5 / 3 + 5

    def shape_links(self, rate, queue='100ms'):
        """Every node sends and receives at most ``rate`` (``'2gbit'``; ``None``: no
        limit): ``tc tbf`` on each node's eth0 and on the bridge's side of it.  A packet
        waits at most ``queue`` in the shaper, then is dropped.  No latency is added:
        this kernel has no ``netem``."""
        for name in self.node_names:
            for ns, dev in ((self.node_ns[name], 'eth0'), (self.ctl_ns, 'v-' + name)):
                tc = ['nsenter', '--net=/run/netns/' + ns, '--', 'tc', 'qdisc']
                _sh(*(tc + ['del', 'dev', dev, 'root']), check=False)
                if rate:
                    burst = max(2 * 65536, int(parse_rate(rate) / 8 / 250))  # >= 4 ms of traffic
                    _sh(*(tc + ['add', 'dev', dev, 'root', 'tbf', 'rate', rate,
                                'burst', burst, 'latency', queue]))

CONF = """\
# A private test cluster (tests/cluster/slurm_cluster.py); nothing outside this folder.
ClusterName={cluster}
SlurmctldHost=akctl({ctl_addr})
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge},cred_expire={cred_expire}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={state}
SlurmdSpoolDir={spool}
SlurmctldPidFile={run}/slurmctld.pid
SlurmdPidFile={run}/slurmd-%n.pid
SlurmctldLogFile={log}/slurmctld.log
SlurmdLogFile={log}/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
JobRequeue=1
SlurmdTimeout={slurmd_timeout}
SlurmctldTimeout=30
MessageTimeout={message_timeout}
KillWait={kill_wait}
MinJobAge=600
InactiveLimit=0
Waittime=0
{nodes}
PartitionName=test Nodes={names} Default=YES MaxTime=INFINITE State=UP
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--nodes', type=int, default=2)
    ap.add_argument('--subnet', default=DEFAULT_SUBNET)
    ap.add_argument('--reap', help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.reap:
        _reaper(args.reap)
        return 0
    reason = unavailable_reason()
    if reason:
        print('no cluster: ' + reason, file=sys.stderr)
        return 1
    with SlurmCluster(nodes=args.nodes, subnet=args.subnet) as cluster:
        print('cluster up: {} ({}); logs in {}; exit the shell to tear it down'.format(
            ', '.join(cluster.node_names), cluster.net, cluster.path('log')), file=sys.stderr)
        subprocess.call(['nsenter', '--net=/run/netns/' + cluster.ctl_ns, '--',
                         os.environ.get('SHELL', '/bin/bash')], env=cluster.env())
    return 0


if __name__ == '__main__':
    sys.exit(main())
