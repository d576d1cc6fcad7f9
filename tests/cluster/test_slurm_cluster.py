"""The private test cluster itself: its nodes are separate hosts to Slurm and MPI,
it leaves the machine's own network alone, and it is gone after any exit."""
import ipaddress
import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest

from cluster import slurm_cluster
from cluster.conftest import skip_without_cluster
from conftest import REPO_ROOT


def host_network():
    """This machine's own interfaces and routes (the namespace the tests run in)."""
    links = subprocess.run(['ip', '-o', 'link'], capture_output=True, text=True).stdout
    routes = subprocess.run(['ip', 'route'], capture_output=True, text=True).stdout
    return sorted(l.split(':')[1].strip() for l in links.splitlines()), routes


def test_nodes_are_hosts_of_their_own(cluster):
    out = cluster.run(['srun', '-N', str(cluster.n_nodes), '--ntasks-per-node=1', 'sh', '-c',
                       'echo "$(hostname) $(ip -4 -o addr show eth0 | '
                       'awk \'{print $4}\') $SLURM_CONF"']).stdout
    seen = sorted(line.split() for line in out.splitlines() if line.strip())
    assert [s[0] for s in seen] == cluster.node_names
    subnet = ipaddress.ip_network(cluster.net)
    for name, address, conf in seen:
        assert ipaddress.ip_interface(address).ip == ipaddress.ip_address(
            cluster.node_addr[name]) and ipaddress.ip_interface(address).ip in subnet
        assert conf == cluster.conf and conf.startswith(cluster.base)
    with open(cluster.conf) as f:
        conf = f.read()
    assert '/etc/slurm' not in conf and 'AuthInfo=socket=' + cluster.base in conf


def test_a_killed_owner_leaves_nothing_behind():
    """The process holding a cluster is SIGKILLed: its reaper kills the daemons and
    every process in the namespaces (by PID), removes the namespaces and the folder;
    the machine's own interfaces and routes never changed."""
    skip_without_cluster()
    before = host_network()
    code = (
        'import json, sys, time\n'
        'sys.path.insert(0, {tests!r})\n'
        'from cluster.slurm_cluster import SlurmCluster\n'
        'c = SlurmCluster(nodes=2).start()\n'
        'c.wait(c.sbatch(["-N2", "-o", "/dev/null", "--wrap", "srun sleep 600"]), "RUNNING")\n'
        'time.sleep(1)\n'
        'print(json.dumps(c.state), flush=True)\n'
        'time.sleep(600)\n').format(tests=os.path.join(REPO_ROOT, 'tests'))
    owner = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True)
    ready, _, _ = select.select([owner.stdout], [], [], 120)
    if not ready:
        owner.kill()
        pytest.fail('the cluster did not start within 120 s')
    state = json.loads(owner.stdout.readline())
    during = host_network()
    pids = {pid for pid, _ in state['pids']}
    for ns in state['namespaces']:
        pids.update(slurm_cluster.netns_pids(ns))
    assert len(pids) >= 2 + 2 * 3, pids  # munged, slurmctld, and per node slurmd + the job
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    deadline = time.time() + 30
    while time.time() < deadline and (os.path.exists(state['base'])
                                      or any(os.path.exists('/proc/{}'.format(p))
                                             for p in pids)):
        time.sleep(0.2)
    alive = [p for p in pids if os.path.exists('/proc/{}'.format(p))]
    assert not alive and not os.path.exists(state['base']), alive
    namespaces = subprocess.run(['ip', 'netns', 'list'], capture_output=True,
                                text=True).stdout
    assert not any(ns in namespaces for ns in state['namespaces'])
    assert before == during == host_network()
