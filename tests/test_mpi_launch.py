import pytest

from chainer_ext.job.mpiexec import mpiexec_command


def test_command_shape():
    cmd = mpiexec_command(3, ['python', 'x.py'], mca={'btl': 'tcp,self'})
    assert cmd[1:3] == ['-n', '3']
    assert cmd[-2:] == ['python', 'x.py']
    i = cmd.index('--mca')
    assert cmd[i + 1:i + 3] == ['btl', 'tcp,self']


def test_rejects_zero_ranks():
    with pytest.raises(ValueError, match='0'):
        mpiexec_command(0, ['true'])


@pytest.mark.parametrize('n', [2, 3])
def test_real_multiprocess_allreduce(mpirun, n):
    mpirun(n, 'smoke_allreduce.py', timeout=120)


FAKE_MPIEXEC = '''#!/bin/sh
# Stands in for mpiexec: the first $FAILS launches end as Open MPI's does when its PMIx
# server cannot start, each launch is counted in $LAUNCHES, the last one prints $LAST.
echo launch >> "$LAUNCHES"
if [ "$(wc -l < "$LAUNCHES")" -le "$FAILS" ]; then
    printf '%s\\n' "$FIRST"
    exit 213
fi
printf '%s\\n' "$LAST"
exit "$LAST_EXIT"
'''

PMIX_FAILURE = ("--------------------------------------------------------------------------\n"
                "The PMIx server's listener thread failed to start. We cannot\ncontinue.\n"
                "--------------------------------------------------------------------------")


@pytest.fixture
def fake_mpiexec(tmp_path, monkeypatch):
    """``launch(fails, first=..., last=..., last_exit=0)``: run_mpi on a stand-in mpiexec;
    returns (CompletedProcess, number of launches)."""
    from chainer_ext.job import mpiexec
    exe = tmp_path / 'mpiexec'
    exe.write_text(FAKE_MPIEXEC)
    exe.chmod(0o755)
    monkeypatch.setattr(mpiexec, 'find_mpiexec', lambda: str(exe))
    launches = tmp_path / 'launches'

    def launch(fails, first=PMIX_FAILURE, last='ranks ran', last_exit=0):
        proc = mpiexec.run_mpi(2, ['python', 'x.py'], timeout=30, env=dict(
            LAUNCHES=str(launches), FAILS=str(fails), FIRST=first, LAST=last,
            LAST_EXIT=str(last_exit)))
        return proc, len(launches.read_text().splitlines())
    return launch


def test_a_launch_that_never_started_a_rank_is_made_again(fake_mpiexec, capfd):
    proc, launches = fake_mpiexec(2)
    assert (proc.returncode, proc.stdout, launches) == (0, 'ranks ran\n', 3)
    err = capfd.readouterr().err.splitlines()
    assert err == ["mpiexec -n 2 stopped before starting any rank (exit 213: The PMIx server's "
                   "listener thread failed to start); launching again ({} of 3)".format(k)
                   for k in (2, 3)]


def test_launches_stop_after_three_and_the_last_result_is_returned(fake_mpiexec):
    proc, launches = fake_mpiexec(5)
    assert (proc.returncode, launches) == (213, 3)
    assert "listener thread failed to start" in proc.stdout


@pytest.mark.parametrize('last, last_exit', [
    ('Traceback (most recent call last):\nAssertionError', 1),   # the program failed
    ("The PMIx server's listener thread failed to start", 0),   # a program that printed it
])
def test_a_program_that_ran_is_never_launched_again(fake_mpiexec, last, last_exit):
    proc, launches = fake_mpiexec(0, last=last, last_exit=last_exit)
    assert (proc.returncode, proc.stdout, launches) == (last_exit, last + '\n', 1)
