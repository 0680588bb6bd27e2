"""A real single-node SLURM on this machine, for tests of the SLURM profile.

It runs the daemons of a real cluster: ``munged``, MariaDB, ``slurmdbd`` (so that ``sacct``
answers from the accounting database, as on real clusters), ``slurmctld`` and ``slurmd``.
Configuration, state, logs and the database live in one private directory, and the TCP
ports are picked free on 127.0.0.1. No systemd is needed, so it works in containers and CI.
Client commands (``sbatch``, ``sacct``, ``scancel``, and Snakemake's SLURM plugin, which calls
them) find the cluster through ``$SLURM_CONF``: run them with :attr:`SlurmCluster.env`.

Every daemon runs in the foreground as a child of this process and is stopped by its own PID
(:meth:`SlurmCluster.stop`, also on a failed start); the daemons also get SIGTERM if this
process dies (``PR_SET_PDEATHSIG``). Job processes (``slurmstepd``) are cancelled first.
Only one such cluster runs on a machine at a time (a lock in /run/lock; a second test run
waits), because munge's socket and slurmd's configuration cache are machine-wide.

Usage::

    reason = unavailable_reason()      # None when a cluster can be started here
    with SlurmCluster() as cluster:     # ~5 s to start
        cluster.client("sbatch", "-A", cluster.account, "-p", cluster.partition, "--wrap", "true")

Recipe and pitfalls (SLURM 22.05 as packaged by Debian 12, Snakemake SLURM plugin 2.8.0):

* ``munged`` runs as the ``munge`` user on the default socket in ``/run/munge`` (created
  first): 22.05 clients such as ``sacctmgr`` ignore ``AuthInfo=socket=`` for their slurmdbd
  connection and always use the default socket.
* An empty ``SchedulerParameters=`` line makes slurmctld refuse the file: keys without a
  value are left out.
* No cgroups in containers: ``ProctrackType=proctrack/linuxproc``, ``TaskPlugin=task/none``;
  ``SelectType=select/cons_tres`` as on current clusters.
* Without slurmdbd, ``sacct`` has no records and the plugin waits forever unless told to use
  ``squeue``; here slurmdbd runs, so the plugin uses ``sacct`` as on a real cluster.
* The plugin checks the account with ``sacctmgr list user``: the account and the user's
  association are created in the database (``AccountingStorageEnforce=associations`` makes
  sbatch refuse other accounts, as real clusters do).
* sacct shows a scancel'ed job as ``CANCELLED by <uid>``; plugin 2.8.0 only recognises
  ``CANCELLED`` and would wait for such a job forever, so profiles/slurm has the plugin ask
  squeue (which says ``CANCELLED``); sacct stays the record the tests check.
* The jobstep plugin (0.6.1) strips ``$SLURM_CONF`` from the ``srun`` it runs inside each job,
  so a cluster found only through ``$SLURM_CONF`` breaks inside jobs ("fetch_config: DNS SRV
  lookup failed"). slurmd therefore runs configless, like current clusters: it fetches the
  configuration from slurmctld and caches it where ``srun`` looks (``/run/slurm/conf``).
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import fcntl
import getpass
import io
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import psutil

from harness import environment

# What a cluster needs; Debian 12 packages: slurm-wlm slurmdbd munge mariadb-server.
DAEMONS = ("munged", "mariadbd", "mariadb-install-db", "slurmdbd", "slurmctld", "slurmd")
CLIENTS = ("munge", "unmunge", "sbatch", "srun", "sacct", "sacctmgr", "scancel", "squeue", "sinfo", "scontrol")  # fmt: skip
DEBIAN_PACKAGES = ("slurm-wlm", "slurmdbd", "munge", "mariadb-server")
SYSTEM_USERS = ("munge", "mysql")
START_TIMEOUT_S = 120.0
MUNGE_RUN_DIR = Path("/run/munge")
MUNGE_KEY = Path("/etc/munge/munge.key")
SLURMD_CONF_LINK = Path("/run/slurm/conf")  # where configless slurmd caches slurm.conf
# One test cluster per machine: they would share /run/munge and /run/slurm/conf. A second
# one (another checkout's test run) waits for the first to stop.
MACHINE_LOCK = Path("/run/lock/dinsar-slurm-test.lock")
MACHINE_LOCK_WAIT_S = 900.0

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


def _which(name: str) -> str | None:
    # the daemons live in sbin, which a non-login shell may not have on PATH
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")


def _exe(name: str) -> str:
    path = _which(name)
    if path is None:
        raise SlurmError(f"{name} not found")
    return path


def unavailable_reason() -> str | None:
    """Why a SLURM cluster cannot be started here, or None when it can."""
    if os.name != "posix" or os.geteuid() != 0:
        return "starting the SLURM daemons needs root"
    if not Path("/etc/debian_version").is_file():
        return "the SLURM test cluster recipe is for Debian packages"
    missing = [name for name in DAEMONS + CLIENTS if _which(name) is None]
    if missing:
        return (
            f"{', '.join(missing)} not installed; install with "
            f"apt-get install -y --no-install-recommends {' '.join(DEBIAN_PACKAGES)}"
        )
    for user in SYSTEM_USERS:
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"system user {user!r} is missing (reinstall its package)"
    return None


class SlurmError(RuntimeError):
    """The cluster could not be started, or a client command failed."""


def free_port() -> int:
    """A TCP port nobody listens on now (a daemon binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _munge_works() -> bool:
    """A munged answers on the default socket: a credential encodes and decodes."""
    try:
        cred = subprocess.run([_exe("munge"), "-n"], capture_output=True, timeout=5, check=False)
        if cred.returncode != 0:
            return False
        back = subprocess.run(
            [_exe("unmunge")], input=cred.stdout, capture_output=True, timeout=5, check=False
        )
    except (subprocess.TimeoutExpired, SlurmError):
        return False
    return back.returncode == 0


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} not readable)"


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies, so no daemon outlives it."""
    _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@dataclass
class SlurmCluster:
    """A single-node SLURM with accounting; see the module docstring.

    ``cpus`` and ``memory_mb`` describe the compute node to SLURM. They may exceed this
    machine (``SlurmdParameters=config_overrides``), so that a profile written for real
    compute nodes (8 threads and 16 GB for an ISCE job) is accepted unchanged. Jobs only
    reserve these resources: nothing enforces them without cgroups.
    """

    cluster_name: str = "dinsarci"
    partition: str = "ci_compute"
    account: str = "dinsar_ci"
    node_name: str = "cinode1"
    cpus: int = 32
    memory_mb: int = 256_000
    base: Path | None = None
    pids: dict[str, int] = field(default_factory=dict, init=False)
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False)
    _ports: dict[str, int] = field(default_factory=dict, init=False)
    _owns_base: bool = field(default=False, init=False)
    _made_munge_dir: bool = field(default=False, init=False)
    _made_slurm_run_dir: bool = field(default=False, init=False)
    _stopped_pids: list[int] = field(default_factory=list, init=False)
    _lock: io.TextIOWrapper | None = field(default=None, init=False)
    _subreaper_was: int | None = field(default=None, init=False)

    # ------------------------------------------------------------------ paths
    def _dir(self, *parts: str) -> Path:
        if self.base is None:
            raise SlurmError("the cluster is not started")
        return self.base.joinpath(*parts)

    @property
    def slurm_conf(self) -> Path:
        return self._dir("etc", "slurm.conf")

    @property
    def log_dir(self) -> Path:
        return self._dir("log")

    @property
    def env(self) -> dict[str, str]:
        """Environment for client commands and Snakemake: it points them at this cluster."""
        path = os.environ.get("PATH", "/usr/bin:/bin")
        if "/usr/sbin" not in path.split(":"):
            path += ":/usr/sbin:/sbin"
        env = {
            k: v
            for k, v in environment.clean().items()
            if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))
        }
        # a surrounding allocation (the suite itself run in a SLURM job) would redirect sbatch
        env.update(SLURM_CONF=str(self.slurm_conf), PATH=path)
        return env

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> SlurmCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start every daemon and register cluster, account and user; stops all on failure."""
        reason = unavailable_reason()
        if reason:
            raise SlurmError(f"cannot start SLURM here: {reason}")
        self._take_machine_lock()
        deadline = time.monotonic() + timeout
        try:
            if self.base is None:
                # not under pytest's 0700 tree: the munge and mysql users must reach their files
                self.base = Path(tempfile.mkdtemp(prefix="dinsar-slurm-"))
                self._owns_base = True
            self.base.chmod(0o755)
            for sub in ("etc", "log", "state", "spool", "run"):
                self._dir(sub).mkdir(parents=True, exist_ok=True)
            self._made_slurm_run_dir = not SLURMD_CONF_LINK.parent.exists()
            # job processes (slurmstepd) are orphaned by slurmd on purpose; adopt them, so
            # that stop() can find any that outlive a cancel and end them by PID
            flag = ctypes.c_int(0)
            if _libc().prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) == 0:
                self._subreaper_was = flag.value
                _libc().prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
            self._ports = {k: free_port() for k in ("mysql", "dbd", "ctld", "slurmd")}
            self._start_munge(deadline)
            self._start_mariadb(deadline)
            self._write_configs()
            self._start_slurmdbd(deadline)
            self._register_accounts()
            self._start_slurmctld(deadline)
            self._start_slurmd(deadline)
        except BaseException as exc:
            logs = self.describe_logs()
            self.stop()
            if isinstance(exc, Exception):
                raise SlurmError(f"SLURM test cluster failed to start: {exc}\n{logs}") from exc
            raise

    def stop(self) -> None:
        """Cancel the jobs, then stop each daemon by PID, newest first; safe to call twice."""
        if self._alive("slurmctld"):
            with contextlib.suppress(Exception):
                self.client("scancel", "--full", "-u", getpass.getuser(), check=False)
                self.wait_until_no_jobs(timeout=30)
        for name in reversed(list(self._procs)):
            self._terminate(self._procs[name])
            self._stopped_pids.append(self._procs[name].pid)
        self._procs.clear()
        self.pids.clear()
        self._end_orphaned_job_steps()
        if self._subreaper_was is not None:
            _libc().prctl(_PR_SET_CHILD_SUBREAPER, self._subreaper_was, 0, 0, 0)
            self._subreaper_was = None
        if self.base is not None:
            with contextlib.suppress(OSError):
                # the configless cache link would point into the directory removed below
                if SLURMD_CONF_LINK.is_symlink() and str(os.readlink(SLURMD_CONF_LINK)).startswith(
                    str(self.base)
                ):
                    SLURMD_CONF_LINK.unlink()
                if self._made_slurm_run_dir:
                    SLURMD_CONF_LINK.parent.rmdir()  # only if slurmd left it empty
        self._made_slurm_run_dir = False
        if self._made_munge_dir:
            with contextlib.suppress(OSError):
                MUNGE_RUN_DIR.rmdir()  # only if munged left it empty
            self._made_munge_dir = False
        if self._owns_base and self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None
            self._owns_base = False
        if self._lock is not None:
            self._lock.close()  # releases the machine lock
            self._lock = None

    def _take_machine_lock(self) -> None:
        MACHINE_LOCK.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(MACHINE_LOCK, "a")  # noqa: SIM115 - held until stop()
        waited = time.monotonic()
        while True:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() - waited > MACHINE_LOCK_WAIT_S:
                    self._lock.close()
                    self._lock = None
                    raise SlurmError(
                        f"another SLURM test cluster has held {MACHINE_LOCK} for "
                        f"{MACHINE_LOCK_WAIT_S:.0f} s; is a test run stuck?"
                    ) from None
                time.sleep(1)

    def leftover_pids(self) -> list[int]:
        """PIDs of stopped daemons that still exist (none after a clean stop)."""
        return [pid for pid in self._stopped_pids if psutil.pid_exists(pid)]

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def _end_orphaned_job_steps(self) -> None:
        """slurmstepd processes adopted by this process (see start): end them by PID and reap."""
        for child in psutil.Process().children():
            with contextlib.suppress(psutil.Error):
                if child.name() != "slurmstepd":
                    continue
                if child.status() != psutil.STATUS_ZOMBIE:
                    child.terminate()
                    with contextlib.suppress(psutil.TimeoutExpired):
                        child.wait(10)
                    if child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                        child.kill()
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(child.pid, os.WNOHANG)

    def _alive(self, name: str) -> bool:
        proc = self._procs.get(name)
        return proc is not None and proc.poll() is None

    # ------------------------------------------------------------------ helpers
    def _spawn(
        self,
        name: str,
        cmd: Sequence[str],
        user: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        with open(self.log_dir / f"{name}.out", "ab") as log:
            proc = subprocess.Popen(
                list(cmd),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env if env is None else dict(env),
                user=user,
                group=user,
                extra_groups=[] if user else None,
                # own session: a Ctrl-C reaches pytest, whose finalizer stops the daemons
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self._procs[name] = proc
        self.pids[name] = proc.pid

    def _wait(self, name: str, ready: Callable[[], bool], deadline: float, log: Path) -> None:
        while time.monotonic() < deadline:
            if ready():
                return
            if not self._alive(name):
                raise SlurmError(f"{name} exited during start-up:\n{_tail(log)}")
            time.sleep(0.2)
        raise SlurmError(f"{name} was not ready in time:\n{_tail(log)}")

    def client(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run a SLURM client command (``sacct``, ``scancel``, ...) against this cluster."""
        result = subprocess.run(
            list(args), capture_output=True, text=True, env=self.env, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise SlurmError(
                f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        return result

    def describe_logs(self) -> str:
        """The tails of every daemon log, for a failure message."""
        if self.base is None or not self.log_dir.is_dir():
            return ""
        logs = sorted(self.log_dir.iterdir()) + sorted(self._dir("mysql").glob("*.err"))
        return "\n".join(f"--- {log.name}\n{_tail(log)}" for log in logs)

    # ------------------------------------------------------------------ munge
    def _start_munge(self, deadline: float) -> None:
        if _munge_works():
            return  # this host already runs munged (it is a SLURM node): use it
        if not MUNGE_RUN_DIR.exists():
            MUNGE_RUN_DIR.mkdir(mode=0o755, parents=True)
            self._made_munge_dir = True
        shutil.chown(MUNGE_RUN_DIR, "munge", "munge")
        MUNGE_RUN_DIR.chmod(0o755)  # munged refuses a socket directory clients cannot reach
        if not MUNGE_KEY.is_file():
            # what the package's postinst does; missing in images built without it
            MUNGE_KEY.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            subprocess.run(
                [_exe("mungekey"), "--create", f"--keyfile={MUNGE_KEY}"], check=True, timeout=30
            )
            shutil.chown(MUNGE_KEY.parent, "munge", "munge")
            shutil.chown(MUNGE_KEY, "munge", "munge")
            MUNGE_KEY.chmod(0o600)
        munge_dir = self._dir("munge")
        munge_dir.mkdir(mode=0o755, exist_ok=True)
        shutil.chown(munge_dir, "munge", "munge")
        log = munge_dir / "munged.log"
        self._spawn(
            "munged",
            [
                _exe("munged"),
                "--foreground",
                f"--log-file={log}",
                f"--seed-file={munge_dir / 'seed'}",
            ],
            user="munge",
        )
        self._wait("munged", _munge_works, deadline, log)

    # ------------------------------------------------------------------ mariadb
    def _start_mariadb(self, deadline: float) -> None:
        db_dir = self._dir("mysql")
        data = db_dir / "data"
        data.mkdir(parents=True)
        shutil.chown(db_dir, "mysql", "mysql")
        shutil.chown(data, "mysql", "mysql")
        install = subprocess.run(
            [
                _exe("mariadb-install-db"),
                "--no-defaults",
                "--user=mysql",
                f"--datadir={data}",
                "--skip-test-db",
                "--auth-root-authentication-method=normal",
            ],
            capture_output=True,
            text=True,
            timeout=max(10.0, deadline - time.monotonic()),
            check=False,
        )
        if install.returncode != 0:
            raise SlurmError(f"mariadb-install-db failed:\n{install.stdout}{install.stderr}")
        log = db_dir / "mariadb.err"
        self._spawn(
            "mariadbd",
            [
                _exe("mariadbd"),
                "--no-defaults",
                "--user=mysql",
                f"--datadir={data}",
                f"--socket={db_dir / 'mysqld.sock'}",
                f"--pid-file={db_dir / 'mysqld.pid'}",
                f"--log-error={log}",
                "--bind-address=127.0.0.1",
                f"--port={self._ports['mysql']}",
                # a throw-away database on loopback: no accounts to manage
                "--skip-grant-tables",
                # the values slurmdbd checks at start-up (it warns about smaller ones)
                "--innodb-buffer-pool-size=128M",
                "--innodb-lock-wait-timeout=900",
                "--innodb-log-file-size=64M",
            ],
        )
        self._wait("mariadbd", lambda: _port_open(self._ports["mysql"]), deadline, log)

    # ------------------------------------------------------------------ slurm
    def _write_configs(self) -> None:
        host = socket.gethostname().split(".")[0]
        state, spool, log, run = (self._dir(s) for s in ("state", "spool", "log", "run"))
        plugstack = self._dir("etc", "plugstack.conf")
        plugstack.write_text("")  # no SPANK plugins, whatever /etc/slurm holds
        # Keys without a value are left out: an empty `SchedulerParameters=` line is a
        # fatal parse error for slurmctld 22.05.
        self.slurm_conf.write_text(
            f"""# single-node test cluster written by tests/harness/slurm_cluster.py
ClusterName={self.cluster_name}
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={self._ports["ctld"]}
SlurmdPort={self._ports["slurmd"]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
StateSaveLocation={state}
SlurmdSpoolDir={spool}
SlurmctldPidFile={run}/slurmctld.pid
SlurmdPidFile={run}/slurmd.pid
SlurmctldLogFile={log}/slurmctld.log
SlurmdLogFile={log}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig={plugstack}
# no cgroups in containers: track job processes through /proc, no CPU binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
# slurmd fetches this file from slurmctld (configless) and caches it where srun looks
SlurmctldParameters=enable_configless
# accounting in slurmdbd (MariaDB), so sacct works as on real clusters
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={self._ports["dbd"]}
AccountingStorageEnforce=associations
# keep sbatch --comment (the plugin puts the rule and wildcards there) for sacct
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
# the node may claim more CPUs and memory than this machine has
SlurmdParameters=config_overrides
NodeName={self.node_name} NodeHostname={host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN
# not the default partition: a job lands here only when the profile names it
PartitionName={self.partition} Nodes={self.node_name} Default=NO MaxTime=INFINITE State=UP
PartitionName=debug Nodes={self.node_name} Default=YES MaxTime=INFINITE State=UP
"""
        )
        dbd = self._dir("etc", "slurmdbd.conf")  # slurmdbd finds it beside $SLURM_CONF
        dbd.write_text(
            f"""# written by tests/harness/slurm_cluster.py
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={self._ports["dbd"]}
SlurmUser=root
LogFile={log}/slurmdbd.log
PidFile={run}/slurmdbd.pid
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self._ports["mysql"]}
StorageUser=root
StorageLoc=slurm_acct_db
"""
        )
        dbd.chmod(0o600)  # slurmdbd refuses a config others can read (it may hold a password)

    def _start_slurmdbd(self, deadline: float) -> None:
        self._spawn("slurmdbd", [_exe("slurmdbd"), "-D"])
        self._wait(
            "slurmdbd",
            lambda: _port_open(self._ports["dbd"]),
            deadline,
            self.log_dir / "slurmdbd.log",
        )

    def _register_accounts(self) -> None:
        # the cluster must exist before slurmctld registers; then an account and the user's
        # association, which the plugin checks with `sacctmgr list user`
        self.client("sacctmgr", "-i", "add", "cluster", self.cluster_name)
        self.client(
            "sacctmgr", "-i", "add", "account", self.account, f"Cluster={self.cluster_name}",
            "Description=dinsar CI", "Organization=dinsar",
        )  # fmt: skip
        self.client(
            "sacctmgr", "-i", "add", "user", getpass.getuser(), f"Account={self.account}",
            f"Cluster={self.cluster_name}",
        )  # fmt: skip

    def _start_slurmctld(self, deadline: float) -> None:
        self._spawn("slurmctld", [_exe("slurmctld"), "-D", "-i"])
        self._wait(
            "slurmctld",
            lambda: "UP" in self.client("scontrol", "ping", check=False, timeout=10).stdout,
            deadline,
            self.log_dir / "slurmctld.log",
        )

    def _start_slurmd(self, deadline: float) -> None:
        # configless, like current clusters: no $SLURM_CONF, the file comes from slurmctld
        env = {k: v for k, v in self.env.items() if k != "SLURM_CONF"}
        self._spawn(
            "slurmd",
            [
                _exe("slurmd"),
                "-D",
                "-N",
                self.node_name,
                f"--conf-server=127.0.0.1:{self._ports['ctld']}",
            ],
            env=env,
        )

        def idle() -> bool:
            out = self.client(
                "sinfo", "-h", "-n", self.node_name, "-o", "%t", check=False, timeout=10
            )
            return out.stdout.strip().startswith("idle")

        self._wait("slurmd", idle, deadline, self.log_dir / "slurmd.log")

    # ------------------------------------------------------------------ queries
    def queue(self) -> list[dict[str, str]]:
        """Jobs in the queue (pending or running): id, state, name and comment (the rule)."""
        out = self.client("squeue", "-h", "-o", "%i|%T|%j|%k").stdout
        keys = ("JobID", "State", "JobName", "Comment")
        return [
            dict(zip(keys, line.split("|", 3), strict=False)) for line in out.splitlines() if line
        ]

    def wait_until_no_jobs(self, timeout: float = 60.0) -> None:
        """Wait until the queue is empty (jobs finished or cancelled)."""
        if not wait_for(lambda: not self.queue(), timeout):
            raise SlurmError(f"jobs still queued after {timeout} s: {self.queue()}")

    def sacct(self, *extra: str) -> list[dict[str, str]]:
        """Accounting records of this user's jobs (allocations, not steps) from slurmdbd."""
        fields = (
            "JobIDRaw", "JobName", "State", "ExitCode", "Account", "Partition", "AllocCPUS",
            "ReqMem", "Timelimit", "Comment", "Submit", "Start", "End", "ElapsedRaw",
        )  # fmt: skip
        out = self.client(
            "sacct", "-X", "--parsable2", "--noheader", "--starttime", "now-1days",
            f"--format={','.join(fields)}", *extra,
        ).stdout  # fmt: skip
        rows = csv.reader(io.StringIO(out), delimiter="|")
        return [dict(zip(fields, row, strict=False)) for row in rows if row]
