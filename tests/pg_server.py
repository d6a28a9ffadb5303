"""A real, throwaway PostgreSQL server for the tests: its own cluster in a temp dir, on a free loopback port.

Fixtures (load with ``pytest_plugins = ["tests.pg_server"]``):

* ``pg_server`` (session): a running :class:`PgServer`; tests may ``stop()`` and ``start()`` it (same port,
  same data). If a test leaves it stopped, the next ``pg_dsn`` starts it again.
* ``pg_dsn`` (function): the DSN of a fresh, empty database for this test, dropped afterwards.

Without PostgreSQL's binaries the fixtures skip, except under CI (``CI`` set), where they fail: CI skips none.

The superuser is ``mjbot`` with password ``s3cret-pw``. TCP on 127.0.0.1 checks the password (scram-sha-256),
so a wrong one is refused; the unix socket in the temp dir trusts, for the admin commands run with ``psql``.
PostgreSQL refuses to run as root: as root the server runs as the user ``postgres`` (Debian's package makes it),
or ``nobody`` if there is none, and its temp dir belongs to that user.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

USER = "mjbot"
PASSWORD = "s3cret-pw"
HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
# Durability is worth nothing in a throwaway cluster; these make writes, and CREATE DATABASE, cheap.
SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "max_wal_size": "1GB",  # no checkpoints forced by WAL volume mid-test
}
_TOOLS = ("initdb", "postgres", "psql")
_names = itertools.count(1)  # unique database names within the session


class PgUnavailable(RuntimeError):
    """PostgreSQL's binaries, or a user to run them as, are missing on this machine."""


def find_bin_dir() -> Path:
    """The directory holding initdb, postgres and psql: Debian's /usr/lib/postgresql/<highest>/bin, else PATH."""

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", Path(path).parent.parent.name)) or (0,)

    for initdb in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version, reverse=True):
        bin_dir = Path(initdb).parent
        if all(os.access(bin_dir / tool, os.X_OK) for tool in _TOOLS):
            return bin_dir
    found = shutil.which("initdb")
    if found:
        bin_dir = Path(found).resolve().parent  # /usr/local/bin/initdb may be a symlink into the real bin dir
        if all(os.access(bin_dir / tool, os.X_OK) for tool in _TOOLS):
            return bin_dir
    raise PgUnavailable(
        "PostgreSQL server binaries (initdb, postgres, psql) not found in /usr/lib/postgresql/*/bin or on PATH; "
        "install them, e.g. `apt-get install postgresql` (.ci/run does so on CI)"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _run_as_user() -> pwd.struct_passwd | None:
    """The unprivileged user to run the server as, when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PgUnavailable("running as root, and there is no user `postgres` or `nobody` to run PostgreSQL as")


def _die_with_parent() -> None:
    """In the child, before exec: the server gets SIGQUIT (immediate shutdown) if the test process dies
    without stopping it, so a killed test run leaves no server behind. Runs after the switch of user,
    which would otherwise clear the setting."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGQUIT, 0, 0, 0)  # PR_SET_PDEATHSIG


class PgServer:
    """A PostgreSQL cluster of its own in a temp dir, served on 127.0.0.1 at a free port.

    ``start()`` initialises the cluster on first use; ``stop()`` is a fast shutdown; ``start()`` again (or
    ``restart()``) serves the same data on the same port. ``cleanup()`` stops it and removes the temp dir.
    Usable as a context manager.
    """

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir or find_bin_dir()
        self.run_as = _run_as_user()
        self.user, self.password, self.host = USER, PASSWORD, HOST
        self.port: int | None = None
        self.base_dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- paths ----------------------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        assert self.base_dir is not None, "server not initialised: call start()"
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.base_dir is not None, "server not initialised: call start()"
        return self.base_dir / "sock"

    @property
    def log_path(self) -> Path:
        assert self.base_dir is not None, "server not initialised: call start()"
        return self.base_dir / "postgres.log"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except (OSError, AssertionError):
            return "(no log)"

    # -- lifecycle --------------------------------------------------------------------------------------

    def _child_kwargs(self) -> dict:
        kwargs: dict = {"cwd": self.base_dir, "env": {**os.environ, "LC_ALL": "C"}}
        if self.run_as is not None:
            kwargs.update(user=self.run_as.pw_uid, group=self.run_as.pw_gid, extra_groups=[])
            kwargs["env"]["HOME"] = str(self.base_dir)
        return kwargs

    def _make_base_dir(self) -> Path:
        if self.run_as is None:
            return Path(tempfile.mkdtemp(prefix="mjbot-pg-"))
        # The server's user must reach its dir: not below root's private dirs (e.g. a TMPDIR in /root).
        parent = Path(tempfile.gettempdir())
        if not all(os.stat(p).st_mode & 0o001 for p in (parent, *parent.parents)):
            parent = Path("/tmp")
        base = Path(tempfile.mkdtemp(prefix="mjbot-pg-", dir=parent))
        os.chown(base, self.run_as.pw_uid, self.run_as.pw_gid)
        return base

    def _initdb(self) -> None:
        self.base_dir = self._make_base_dir()
        pwfile = self.base_dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.run_as is not None:
            os.chown(pwfile, self.run_as.pw_uid, self.run_as.pw_gid)
        cmd = [
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            self.user,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",  # a throwaway cluster: its files need not reach the disk
        ]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **self._child_kwargs())
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        self.socket_dir.mkdir()
        if self.run_as is not None:
            os.chown(self.socket_dir, self.run_as.pw_uid, self.run_as.pw_gid)

    def start(self) -> PgServer:
        """Start the server (initialising the cluster on first call) and return when it accepts connections."""
        if self.running:
            return self
        if self.base_dir is None:
            self._initdb()
        first = self.port is None
        for _attempt in range(3 if first else 1):
            if first:
                self.port = free_port()
            try:
                self._spawn_and_wait()
                return self
            except _PortTaken:
                continue  # another process took the port between free_port() and bind: pick another
        if first:
            raise RuntimeError(f"PostgreSQL could not bind a free port on {self.host}:\n{self.log_tail()}")
        raise RuntimeError(
            f"PostgreSQL could not listen on {self.host}:{self.port} again (taken by another process?):\n"
            + self.log_tail()
        )

    def _spawn_and_wait(self) -> None:
        cmd = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir)]
        settings = {
            **SERVER_SETTINGS,
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
        }
        for key, value in settings.items():
            cmd += ["-c", f"{key}={value}"]
        with open(self.log_path, "ab") as log:
            start_offset = log.tell()
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal is for pytest, not for the server
                preexec_fn=_die_with_parent,
                **self._child_kwargs(),
            )
        self._wait_ready(start_offset)

    def _wait_ready(self, log_offset: int) -> None:
        """Wait until postmaster.pid says "ready" (what pg_ctl -w waits for), the process exits, or the deadline."""
        assert self._proc is not None
        pid_file = self.data_dir / "postmaster.pid"
        deadline = time.monotonic() + START_TIMEOUT_S
        delay = 0.005
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                with open(self.log_path, "rb") as f:
                    f.seek(log_offset)
                    log = f.read().decode(errors="replace")
                if "could not bind" in log or "Address already in use" in log:
                    raise _PortTaken
                raise RuntimeError(f"PostgreSQL exited while starting:\n{log[-4000:]}")
            with contextlib.suppress(OSError):
                lines = pid_file.read_text().splitlines()
                if len(lines) >= 8 and lines[0].strip() == str(self._proc.pid) and lines[7].strip() == "ready":
                    return
            time.sleep(delay)  # polling interval of the condition above, not a synchronisation
            delay = min(delay * 2, 0.05)
        self._kill()
        raise RuntimeError(f"PostgreSQL not ready within {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Fast shutdown (SIGINT: clients are disconnected, data is kept); returns once the server has exited."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._kill()
        self._proc = None

    def restart(self) -> PgServer:
        self.stop()
        return self.start()

    def _kill(self) -> None:
        """Immediate shutdown, then SIGKILL: for a server that would not stop or start."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        for sig in (signal.SIGQUIT, signal.SIGKILL):
            proc.send_signal(sig)
            try:
                proc.wait(timeout=10)
                return
            except subprocess.TimeoutExpired:
                continue

    def cleanup(self) -> None:
        """Stop the server and remove its temp dir (the data goes with it)."""
        try:
            self.stop()
        finally:
            self._kill()
            if self.base_dir is not None:
                shutil.rmtree(self.base_dir, ignore_errors=True)
                self.base_dir = None

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # -- databases ------------------------------------------------------------------------------------

    def dsn(self, database: str = "postgres", *, password: str | None = None) -> str:
        """postgresql://mjbot:s3cret-pw@127.0.0.1:PORT/DATABASE (the password can be overridden, e.g. a wrong one)."""
        assert self.port is not None, "server not started"
        return f"postgresql://{self.user}:{password or self.password}@{self.host}:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser over the trusted unix socket; returns psql's unaligned, tuples-only output."""
        if not self.running:
            raise RuntimeError("PostgreSQL is not running")
        cmd = [
            str(self.bin_dir / "psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.socket_dir),
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-d",
            database,
            "-c",
            sql,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env={**os.environ, "LC_ALL": "C"})
        if done.returncode != 0:
            raise RuntimeError(f"psql failed ({done.returncode}) running {sql!r}:\n{done.stderr}")
        return done.stdout

    def create_database(self, name: str | None = None) -> str:
        """Create a fresh, empty database (a unique name if none given) and return its name."""
        name = name or f"db_{next(_names)}"
        self.psql(f"CREATE DATABASE {_ident(name)}")
        return name

    def drop_database(self, name: str) -> None:
        """Drop it, disconnecting whoever is still connected to it."""
        self.psql(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")


class _PortTaken(Exception):
    pass


def _ident(name: str) -> str:
    if len(name.encode()) > 63:
        raise ValueError(f"database name longer than 63 bytes: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def _on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


# -- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A running PostgreSQL server for the whole session; cleaned up (process and temp dir) at the end."""
    try:
        server = PgServer()
    except PgUnavailable as e:
        if _on_ci():
            pytest.fail(f"PostgreSQL is required under CI (CI={os.environ['CI']!r}): {e}", pytrace=False)
        pytest.skip(f"no PostgreSQL server here: {e}")
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def pg_dsn(pg_server: PgServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """The DSN of a fresh, empty database for this test (with the password); the database is dropped after."""
    pg_server.start()  # a no-op, unless an earlier test left the server stopped
    slug = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:40]
    name = pg_server.create_database(f"t{next(_names)}_{slug}")
    yield pg_server.dsn(name)
    if pg_server.running:
        pg_server.drop_database(name)
