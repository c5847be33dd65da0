"""A real, throwaway PostgreSQL server for tests and benches: its own data dir in a temp folder, a free
127.0.0.1 port, trust auth, and no fsync (the data only has to outlive a restart, not a power cut).

PostgreSQL refuses to run as root, so as root the server runs as an unprivileged user (``postgres`` when
the distribution's package created it, else ``nobody``). The postmaster is our child process (in a session
of its own, out of reach of a terminal's Ctrl-C); ``kill()`` SIGKILLs it and every backend, like a crash.

    with PostgresServer() as server:          # or server = PostgresServer().start() ... server.close()
        url = server.create_database()          # postgresql://postgres@127.0.0.1:PORT/test_1_ab12cd

``python tests/pg_server.py`` starts one, prints its URL and keeps it up until Ctrl-C. Benches load this
file by path (it imports nothing from the project).
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

SUPERUSER = "postgres"
# Speed over durability against a power cut (no fsync), but a commit is still written before it is
# acknowledged (synchronous_commit stays on), so kill() loses no committed row, as a real crash would not.
# Byte-wise text rules as SQLite's defaults have them (ORDER BY, lower() on ASCII only), on every machine.
SERVER_OPTIONS = {"fsync": "off", "full_page_writes": "off",
                  "listen_addresses": "127.0.0.1", "max_connections": "200", "shared_buffers": "32MB"}
INITDB_OPTIONS = ["--username", SUPERUSER, "--auth", "trust", "--encoding", "UTF8", "--locale", "C",
                  "--no-sync", "--no-instructions"]
INSTALL_HINT = ("install the PostgreSQL server: the Debian package `postgresql` "
                "(`make system-packages` installs it when missing)")


class PostgresNotInstalled(RuntimeError):
    """No ``postgres``/``initdb`` binaries were found; tests that need a server skip with this message."""


class PostgresServerError(RuntimeError):
    """initdb or the server failed; the message carries the end of the server's log."""


def find_bindir() -> Path:
    """The directory holding ``initdb`` and ``postgres``: ``pg_config --bindir``, else the
    newest ``/usr/lib/postgresql/*/bin`` (Debian keeps them off PATH), else ``postgres`` on PATH."""
    candidates = []
    if pg_config := shutil.which("pg_config"):
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    debian = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted((Path(d) for d in debian), key=lambda d: _version_key(d.parent.name), reverse=True)
    if postgres := shutil.which("postgres"):
        candidates.append(Path(postgres).resolve().parent)
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in ("postgres", "initdb")):
            return bindir
    raise PostgresNotInstalled(f"no PostgreSQL server binaries (initdb, postgres) found: {INSTALL_HINT}")


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (0,)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_account() -> pwd.struct_passwd | None:
    """Who runs the server: nobody else than us, unless we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresServerError("running as root, but neither a `postgres` nor a `nobody` user exists to run the server")


class PostgresServer:
    """One PostgreSQL cluster in a temp dir. ``stop()``/``start()``/``restart()`` keep the data and the
    port (URLs stay valid); ``kill()`` SIGKILLs the server and its backends (``start()`` then recovers);
    ``close()`` stops it and deletes the folder."""

    def __init__(self, port: int | None = None, parent: str | Path | None = None, start_timeout: float = 30.0):
        self.bindir = find_bindir()
        self.account = _server_account()
        # As root the folder goes under /tmp: its parents must be traversable by the server's user.
        parent = parent or ("/tmp" if self.account else None)
        self.base = Path(tempfile.mkdtemp(prefix="clipdesk-pg-", dir=parent))
        self.data_dir = self.base / "data"
        self.socket_dir = self.base           # the unix socket and its lock file live next to the data
        self.log_path = self.base / "postgres.log"
        self.host = "127.0.0.1"
        self._port_given = port is not None
        self.port = port or free_port()
        self.start_timeout = start_timeout
        self.process: subprocess.Popen | None = None
        self._databases = 0
        if self.account:
            os.chown(self.base, self.account.pw_uid, self.account.pw_gid)
        atexit.register(self.close)   # a bench that dies on an exception leaves no server running

    # --- addresses -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The maintenance database ``postgres``; tests should use ``create_database()``."""
        return self.url_for("postgres")

    def url_for(self, dbname: str) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{dbname}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # --- life cycle ------------------------------------------------------------------------------

    def start(self) -> PostgresServer:
        """initdb on first use, then start the server and wait until it accepts connections."""
        if self.running:
            return self
        if not (self.data_dir / "PG_VERSION").exists():
            self._run([str(self.bindir / "initdb"), "--pgdata", str(self.data_dir), *INITDB_OPTIONS], "initdb")
        for attempt in range(3):
            try:
                self._start_postmaster()
                return self
            except PostgresServerError as error:
                # Someone took the free port between our probe and the bind: pick another (first start only).
                if self._port_given or "could not bind" not in str(error) or attempt == 2:
                    raise
                self.port = free_port()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT): open sessions are cut off, the data is written, the server exits."""
        if not self.running:
            self.process = None
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

    def restart(self, down_for: float = 0.0) -> None:
        """Stop, stay down ``down_for`` seconds (an outage clients must ride out), start on the same port."""
        self.stop()
        time.sleep(down_for)
        self.start()

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend, like a crash; the next ``start()`` runs crash recovery."""
        if self.process is None:
            return
        children = _children(self.process.pid)   # each sits in a session of its own: no killpg
        self.process.kill()
        self.process.wait(timeout=30)
        for pid in children:
            _signal(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30   # a backend still attached to shared memory would block start()
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.process = None

    def close(self) -> None:
        """Stop and delete the data dir, socket and log."""
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- databases -------------------------------------------------------------------------------

    def create_database(self, prefix: str = "test") -> str:
        """A fresh, empty database with a unique name; returns its URL."""
        import psycopg
        from psycopg import sql
        self._databases += 1
        name = f"{prefix}_{self._databases}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def drop_database(self, url: str) -> None:
        """Drop a database ``create_database()`` made, closing any session still on it."""
        import psycopg
        from psycopg import sql
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    # --- internals -------------------------------------------------------------------------------

    def _command_user(self) -> dict:
        if not self.account:
            return {}
        return {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []}

    def _environment(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        if self.account:
            env.update(HOME=str(self.base), USER=self.account.pw_name, LOGNAME=self.account.pw_name)
        return env

    def _run(self, command: list[str], what: str) -> None:
        done = subprocess.run(command, cwd=self.base, env=self._environment(), capture_output=True, text=True,
                              timeout=120, **self._command_user())
        if done.returncode != 0:
            raise PostgresServerError(f"{what} failed ({done.returncode}): {(done.stderr or done.stdout).strip()}")

    def _start_postmaster(self) -> None:
        options = dict(SERVER_OPTIONS, port=str(self.port), unix_socket_directories=str(self.socket_dir))
        command = [str(self.bindir / "postgres"), "-D", str(self.data_dir)]
        for name, value in options.items():
            command += ["-c", f"{name}={value}"]
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, cwd=self.base, env=self._environment(), stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                            **self._command_user())
        deadline = time.monotonic() + self.start_timeout
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                failure = "exited" if self.process.poll() is not None else f"not ready after {self.start_timeout} s"
                self.kill()
                raise PostgresServerError(f"PostgreSQL {failure} on port {self.port}: {self._log_since(log_start)}")
            time.sleep(0.02)

    def _ready(self) -> bool:
        """What pg_ctl waits for: postmaster.pid names our process and its status line says ``ready``."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return False
        return len(lines) >= 8 and lines[0].strip() == str(self.process.pid) and lines[7].strip() == "ready"

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace").strip()[-2000:] or "(empty log)"
        except FileNotFoundError:
            return "(no log)"


def _children(pid: int) -> list[int]:
    """Child pids of ``pid`` (Linux /proc; elsewhere none, and they die with their postmaster anyway)."""
    children = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(Path(stat).parent.name))
    return children


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    """Running, not a zombie (a zombie holds no shared memory; its new parent reaps it when it likes)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))   # a bench's terminate() also cleans up
    started = time.monotonic()
    try:
        server = PostgresServer()
    except PostgresNotInstalled as error:
        sys.exit(str(error))
    try:
        server.start()
        print(f"PostgreSQL started in {time.monotonic() - started:.2f} s; data in {server.base}", file=sys.stderr)
        print(server.url, flush=True)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()
