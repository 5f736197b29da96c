"""A one-node Slurm cluster on 127.0.0.1 for tests: Debian's Slurm (22.05 on Debian 12) and munge.

The machine has no systemd, so the daemons are started here, in the foreground, as child processes of the test
(munged as user munge, slurmctld and slurmd as root), with the cluster's state, spool and logs in one folder.
Its slurm.conf is written to /etc/slurm/slurm.conf, where Slurm's commands look by default: the Snakemake
plugin's job step (snakemake-executor-plugin-slurm-jobstep 0.6.1) removes SLURM_CONF, like every SLURM_*
variable but a few, from the environment of the srun it starts inside each job, so a slurm.conf elsewhere is
not found there ("srun: fatal: Could not establish a configuration source"). A slurm.conf that this module did
not write is never replaced. No accounting database: clients must query job states with squeue, not sacct.
Stopping the cluster cancels its jobs, ends the daemons this module started, by their process ids, and removes
its slurm.conf.

    with SlurmCluster(tmp_path / "slurm") as cluster:
        subprocess.run(["sbatch", "--wrap", "true"], env=cluster.env)

``SlurmCluster.unavailable()`` says why a cluster cannot be started here (not root, no apt-get), or None;
``no_cluster(reason)`` turns that into a skip on a developer's machine and a failure in CI (``CI=true``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
DAEMONS = ["slurmctld", "slurmd", "munged", "sbatch", "squeue", "scontrol", "sinfo"]
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
MUNGE_KEY = Path("/etc/munge/munge.key")
SLURM_CONF = Path("/etc/slurm/slurm.conf")
CONF_MARKER = "# A one-node test cluster written by tests/slurm_cluster.py"


def in_ci(environ=None) -> bool:
    """True when the tests run in CI: the CI variable set to true/1/yes (as GitHub, GitLab and .ci/run set it)."""
    environ = os.environ if environ is None else environ
    return environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def no_cluster(reason: str, environ=None) -> None:
    """A Slurm test cluster cannot start: fail in CI (a skip there would pass without testing Slurm), skip elsewhere."""
    import pytest

    message = f"no Slurm test cluster: {reason}"
    if in_ci(environ):
        pytest.fail(f"{message} (CI=true: the Slurm test must run in CI)", pytrace=False)
    pytest.skip(message)


class ClusterError(RuntimeError):
    """The cluster could not be started."""


class ClusterUnavailable(ClusterError):
    """This machine cannot have the test cluster: Slurm cannot be installed, or it has a slurm.conf of its own."""


def _which(name: str) -> str | None:
    return shutil.which(name, path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/sbin")


def missing_binaries() -> list[str]:
    return [name for name in DAEMONS if _which(name) is None]


def install_slurm(log=print) -> float:
    """Install Debian's Slurm and munge with apt-get when their binaries are missing; returns the seconds taken."""
    missing = missing_binaries()
    if not missing:
        return 0.0
    start = time.monotonic()
    log(f"installing {' '.join(PACKAGES)} (missing: {' '.join(missing)})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            raise ClusterUnavailable(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-2000:]}"
                               f"\n{result.stderr[-2000:]}")
    still_missing = missing_binaries()
    if still_missing:
        raise ClusterUnavailable(f"after installing {PACKAGES}, still missing: {still_missing}")
    return time.monotonic() - start


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise ClusterError("no MemTotal in /proc/meminfo")


class SlurmCluster:
    """A one-node cluster (node = this host at 127.0.0.1, partition ``debug``) whose files live in ``root``."""

    def __init__(self, root: str | os.PathLike, cpus: int | None = None, memory_mb: int | None = None,
                 log=print):
        self.root = Path(root).resolve()
        self.cpus = cpus or os.cpu_count() or 1
        # below the node's real memory, or slurmd registers it as drained ("Low RealMemory")
        self.memory_mb = memory_mb or int(_memory_mb() * 0.9)
        self.node = socket.gethostname().split(".")[0]
        self.conf = SLURM_CONF
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self._wrote_conf = False
        self.log = log
        self._processes: dict[str, subprocess.Popen] = {}
        self.setup_seconds: float | None = None
        self.install_seconds: float = 0.0

    @staticmethod
    def unavailable() -> str | None:
        """Why a cluster cannot be started on this machine, or None."""
        if os.name != "posix" or os.geteuid() != 0:
            return "starting Slurm daemons needs root"
        if missing_binaries() and _which("apt-get") is None:
            return f"Slurm is not installed ({', '.join(missing_binaries())} missing) and there is no apt-get"
        return None

    # -- start ------------------------------------------------------------------------------------------

    def __enter__(self) -> "SlurmCluster":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self.install_seconds = install_slurm(self.log)
        start = time.monotonic()
        for folder in ("state", "spool", "log"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        self._start_munge()
        self._write_conf()
        self._spawn("slurmctld", [_which("slurmctld"), "-D", "-c", "-f", str(self.conf)])
        self._wait("slurmctld to answer scontrol ping", self._controller_up, 60)
        self._spawn("slurmd", [_which("slurmd"), "-D", "-f", str(self.conf), "-N", self.node])
        self._wait(f"node {self.node} to be idle", self._node_idle, 60)
        self.setup_seconds = time.monotonic() - start
        self.log(f"slurm cluster up in {self.setup_seconds:.1f} s (install {self.install_seconds:.1f} s), "
                 f"SLURM_CONF={self.conf}")

    def _start_munge(self) -> None:
        if self._munge_works():
            return  # a munged is already running (started by someone else): use it, leave it running
        munge = pwd.getpwnam("munge")
        MUNGE_SOCKET.parent.mkdir(parents=True, exist_ok=True)
        os.chown(MUNGE_SOCKET.parent, munge.pw_uid, munge.pw_gid)
        os.chmod(MUNGE_SOCKET.parent, 0o755)
        if not MUNGE_KEY.exists():
            subprocess.run([_which("mungekey") or "/usr/sbin/mungekey", "--create", "--keyfile", str(MUNGE_KEY)],
                           check=True, capture_output=True)
        os.chown(MUNGE_KEY, munge.pw_uid, munge.pw_gid)
        os.chmod(MUNGE_KEY, 0o600)
        for folder in (Path("/var/lib/munge"), Path("/var/log/munge")):
            folder.mkdir(parents=True, exist_ok=True)
            os.chown(folder, munge.pw_uid, munge.pw_gid)
        # -F: foreground, so that the process id is munged's own; --force: a stale socket from a killed munged
        self._spawn("munged", [_which("munged"), "-F", "--force"], user=munge.pw_uid, group=munge.pw_gid,
                    extra_groups=[])
        self._wait("munged to answer", self._munge_works, 30)

    def _write_conf(self) -> None:
        if self.conf.exists() and not self.conf.read_text(errors="replace").startswith(CONF_MARKER):
            raise ClusterUnavailable(f"{self.conf} exists and was not written by tests/slurm_cluster.py: "
                                     "this machine has a Slurm of its own, which the test leaves alone")
        root = self.root
        self.conf.parent.mkdir(parents=True, exist_ok=True)
        self._wrote_conf = True
        self.conf.write_text(f"""\
{CONF_MARKER} ({root})
ClusterName=cytotrial-test
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
MinJobAge=600
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
StateSaveLocation={root / 'state'}
SlurmdSpoolDir={root / 'spool'}
SlurmctldPidFile={root / 'slurmctld.pid'}
SlurmdPidFile={root / 'slurmd.pid'}
SlurmctldLogFile={root / 'log' / 'slurmctld.log'}
SlurmdLogFile={root / 'log' / 'slurmd.log'}
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN
PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")
        shutil.copy(self.conf, root / "slurm.conf")

    def _spawn(self, name: str, command: list[str], **kwargs) -> None:
        out = open(self.root / "log" / f"{name}.out", "ab")
        self._processes[name] = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                                 stdin=subprocess.DEVNULL, env=self.env, **kwargs)
        out.close()

    def _wait(self, what: str, ready, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for name, process in self._processes.items():
                if process.poll() is not None:
                    raise ClusterError(f"{name} exited ({process.returncode}) while waiting for {what}:\n"
                                       + self.logs())
            if ready():
                return
            time.sleep(0.5)
        raise ClusterError(f"timed out after {seconds} s waiting for {what}:\n" + self.logs())

    def _run(self, *command: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout)

    def _munge_works(self) -> bool:
        if not MUNGE_SOCKET.exists() or _which("munge") is None:
            return False
        try:
            encoded = subprocess.run([_which("munge"), "-n"], capture_output=True, timeout=10)
            decoded = subprocess.run([_which("unmunge")], input=encoded.stdout, capture_output=True, timeout=10)
        except subprocess.TimeoutExpired:
            return False
        return encoded.returncode == 0 and decoded.returncode == 0

    def _controller_up(self) -> bool:
        return "is UP" in self._run("scontrol", "ping").stdout

    def _node_idle(self) -> bool:
        return self._run("sinfo", "-h", "-n", self.node, "-o", "%t").stdout.strip() == "idle"

    # -- use and stop -----------------------------------------------------------------------------------

    def jobs(self) -> list[str]:
        """Lines of squeue for the cluster's pending and running jobs."""
        return [line for line in self._run("squeue", "-h", "-o", "%i %j %T").stdout.splitlines() if line.strip()]

    def logs(self, tail: int = 3000) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancel the cluster's jobs and end the daemons this object started (slurmd, slurmctld, then munged)."""
        if "slurmctld" in self._processes and self._processes["slurmctld"].poll() is None:
            try:
                self._run("scancel", "--full", "--user", "root", timeout=30)
                deadline = time.monotonic() + 30
                while self.jobs() and time.monotonic() < deadline:
                    time.sleep(1)
            except (subprocess.SubprocessError, OSError):
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            process = self._processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
        if self._wrote_conf and self.conf.exists() and self.conf.read_text(errors="replace").startswith(
                f"{CONF_MARKER} ({self.root})"):
            self.conf.unlink()
        self._wrote_conf = False
