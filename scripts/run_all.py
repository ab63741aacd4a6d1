"""Start the fakes and the four services as processes; stop them all together.

Each service migrates its own schema on start (`python -m services.<name>`); logs go to
`$RUN_LOG_DIR/<name>.log` (default `.run/`), one JSON event per line.

Hosts and ports come from the environment: HOST (services, default 127.0.0.1) with
INGEST_PORT, BUNDLER_PORT, ARVO_ADAPTER_PORT, SENDER_PORT (8001-8004); FAKE_HOST with
FAKE_ARVO_PORT, FAKE_SMS_PORT, FAKE_SMTP_PORT, FAKE_SMTP_VIEW_PORT (8090, 8091, 1025,
8092). Every port is checked free before anything starts, and a service counts as ready
only when the process we started is the one listening, so another server's health is
never mistaken for ours.

Exit status: 0 after Ctrl-C or SIGTERM (everything stopped); 1 when a child exits or
does not get ready; 2 when a port is taken or the configuration is wrong.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import NoReturn

ROOT = Path(__file__).resolve().parent.parent
SERVICES = {"ingest": 8001, "bundler": 8002, "arvo_adapter": 8003, "sender": 8004}
FAKES = {"arvo": 8090, "sms": 8091, "smtp": 1025, "smtp_view": 8092}
EXTERNALS = ("ARVO_URL", "SMTP_HOST", "SMS_GATEWAY_URL")
READY_TIMEOUT = float(os.environ.get("RUN_READY_TIMEOUT", "90"))


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: stop everything and exit 0."""


class Failed(Exception):
    """A child exited, or a port or setting is wrong: stop everything and exit non-zero."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Listener:
    """One port a child will listen on, and the variable that sets it."""

    owner: str
    variable: str
    host: str
    port: int


def _port(env: dict[str, str], variable: str, default: int) -> int:
    raw = env.get(variable, str(default))
    try:
        port = int(raw)
    except ValueError:
        raise Failed(f"error: {variable}={raw!r} is not a port number", 2) from None
    if not 0 < port < 65536:
        raise Failed(f"error: {variable}={port} is not a port number (1-65535)", 2)
    return port


def plan(env: dict[str, str], with_fakes: bool) -> list[Listener]:
    host = env.get("HOST", "127.0.0.1")
    listeners = [
        Listener(name, f"{name.upper()}_PORT", host, _port(env, f"{name.upper()}_PORT", port))
        for name, port in SERVICES.items()
    ]
    if with_fakes:
        fake_host = env.get("FAKE_HOST", "127.0.0.1")
        for name, port in FAKES.items():
            variable = f"FAKE_{name.upper()}_PORT"
            listeners.append(Listener("fakes", variable, fake_host, _port(env, variable, port)))
    return listeners


def check_ports(listeners: Iterable[Listener]) -> None:
    """Every port must be free before anything starts: bind each as uvicorn will, then let
    it go. A port taken by another program is named with the variable that moves it."""
    seen: dict[int, Listener] = {}
    problems = []
    for listener in listeners:
        if listener.port in seen:
            other = seen[listener.port]
            problems.append(
                f"error: port {listener.port} is set for both {other.variable} and "
                f"{listener.variable}"
            )
            continue
        seen[listener.port] = listener
        family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((listener.host, listener.port))
            except OSError as exc:
                problems.append(
                    f"error: port {listener.port} on {listener.host} ({listener.owner}) is "
                    f"not free: {exc.strerror}. Stop what uses it, or set {listener.variable} "
                    "to another port."
                )
    if problems:
        raise Failed("\n".join(problems) + "\nnothing was started", 2)


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def listens(pid: int, port: int) -> bool:
    """Is `port` held by process `pid`? (Linux: its sockets against the listening table.)

    Without /proc we cannot tell who answers, so any listener counts; the free-port check
    before start still keeps another program off our ports.
    """
    if not Path("/proc/net/tcp").exists():
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0
    inodes = _listening_inodes(port)
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


class Supervisor:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, module: str, env: dict[str, str]) -> None:
        with (self.logs / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", module],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            code = proc.poll()
            if code is not None:
                tail = self._log_tail(name)
                raise Failed(
                    f"error: {name} exited with status {code}; stopping everything. "
                    f"Its log, {self.logs / name}.log, ends:\n{tail}"
                )

    def _log_tail(self, name: str, lines: int = 8) -> str:
        try:
            text = (self.logs / f"{name}.log").read_text(errors="replace")
        except OSError:
            return "  (no log)"
        return "\n".join(f"  {line}" for line in text.splitlines()[-lines:])

    def wait_ready(self, listeners: list[Listener]) -> None:
        """Each child listens on its ports itself, and each service's /health/ready is 200."""
        deadline = time.monotonic() + READY_TIMEOUT
        waiting = list(listeners)
        while waiting:
            self.check_alive()
            listener = waiting[0]
            if self._ready(listener):
                waiting.pop(0)
                continue
            if time.monotonic() > deadline:
                raise Failed(
                    f"error: {listener.owner} not ready after {READY_TIMEOUT:.0f}s "
                    f"(RUN_READY_TIMEOUT); see {self.logs / listener.owner}.log"
                )
            time.sleep(0.2)

    def _ready(self, listener: Listener) -> bool:
        if not listens(self.procs[listener.owner].pid, listener.port):
            return False
        if listener.owner == "fakes":
            return True
        host = "127.0.0.1" if listener.host in ("0.0.0.0", "::", "") else listener.host
        if ":" in host:
            host = f"[{host}]"
        try:
            with urllib.request.urlopen(
                f"http://{host}:{listener.port}/health/ready", timeout=2
            ) as answer:
                return bool(answer.status == 200)
        except (OSError, urllib.error.HTTPError):
            return False

    def watch(self) -> NoReturn:
        while True:
            self.check_alive()
            time.sleep(0.5)

    def stop(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def service_env(env: dict[str, str], listeners: list[Listener], with_fakes: bool) -> dict[str, str]:
    """What every service gets: development mode (dev credentials allowed, the sender's
    token for the arvo_adapter), the fakes' and the arvo_adapter's addresses as
    configured."""
    env = {**env, "DEVELOPMENT_MODE": env.get("DEVELOPMENT_MODE", "true")}
    ports = {(entry.owner, entry.variable): entry for entry in listeners}
    adapter = ports[("arvo_adapter", "ARVO_ADAPTER_PORT")]
    env.setdefault("ARVO_ADAPTER_URL", f"http://{_client_host(adapter.host)}:{adapter.port}")
    if env["DEVELOPMENT_MODE"].lower() == "true":
        # The sender reads link statuses from the arvo_adapter (scope palaute:read).
        env.setdefault("ARVO_ADAPTER_TOKEN", "dev-reader-token")
    if with_fakes:
        fake_host = _client_host(env.get("FAKE_HOST", "127.0.0.1"))
        arvo, sms, smtp = (ports[("fakes", f"FAKE_{n}_PORT")] for n in ("ARVO", "SMS", "SMTP"))
        env.setdefault("ARVO_URL", f"http://{fake_host}:{arvo.port}/api/")
        env.setdefault("SMS_GATEWAY_URL", f"http://{fake_host}:{sms.port}")
        if "SMTP_HOST" not in env:
            env["SMTP_HOST"] = fake_host
            env["SMTP_PORT"] = str(smtp.port)
    return env


def fake_views(env: dict[str, str], listeners: list[Listener], pid: int) -> list[str]:
    """Where to look at what the fakes received: Arvo's state (links, answers), the SMS
    gateway's messages, the mails the SMTP server took (JSON views, no auth)."""
    host = _client_host(env.get("FAKE_HOST", "127.0.0.1"))
    port = {entry.variable: entry.port for entry in listeners if entry.owner == "fakes"}
    arvo = f"http://{host}:{port['FAKE_ARVO_PORT']}"
    return [
        f"  fakes         Arvo, SMS gateway, SMTP server  (pid {pid})",
        f"    Arvo        API {arvo}/api/  state (links, answers): {arvo}/_fake/state",
        f"    SMS gateway sent: http://{host}:{port['FAKE_SMS_PORT']}/_fake/messages",
        f"    SMTP        {host}:{port['FAKE_SMTP_PORT']}  received: "
        f"http://{host}:{port['FAKE_SMTP_VIEW_PORT']}/_fake/messages",
    ]


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def main() -> int:
    env = dict(os.environ)
    logs = Path(env.get("RUN_LOG_DIR", ROOT / ".run"))
    with_fakes = not all(env.get(name) for name in EXTERNALS)
    try:
        listeners = plan(env, with_fakes)
        check_ports(listeners)
    except Failed as exc:
        print(exc, file=sys.stderr)
        return exc.code
    logs.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(env, logs)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        services = service_env(env, listeners, with_fakes)
        if with_fakes:
            supervisor.start("fakes", "tests.fakes", {**env, "DEVELOPMENT_MODE": "true"})
        for entry in listeners:
            if entry.owner in SERVICES:
                child = {**services, "HOST": entry.host, "PORT": str(entry.port)}
                supervisor.start(entry.owner, f"services.{entry.owner}", child)
        supervisor.wait_ready(listeners)
        print("työelämäpalaute is running:", flush=True)
        for entry in listeners:
            if entry.owner in SERVICES:
                pid = supervisor.procs[entry.owner].pid
                url = f"http://{_client_host(entry.host)}:{entry.port}/docs"
                print(f"  {entry.owner:<13} {url}  (pid {pid})", flush=True)
        if with_fakes:
            for line in fake_views(env, listeners, supervisor.procs["fakes"].pid):
                print(line, flush=True)
        print(
            f"logs in {logs}/; `scripts/demo` loads a generated data set and walks it "
            "through a half-year; Ctrl-C stops everything",
            flush=True,
        )
        supervisor.watch()
    except Interrupted:
        print("stopping everything", file=sys.stderr, flush=True)
        supervisor.stop()
        return 0
    except Failed as exc:
        print(exc, file=sys.stderr, flush=True)
        supervisor.stop()
        return exc.code
    except BaseException:
        supervisor.stop()
        raise


if __name__ == "__main__":
    sys.exit(main())
