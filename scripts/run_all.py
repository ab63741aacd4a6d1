"""Start the fakes and the four services as processes; stop them all together.

Each service migrates its own schema on start (`python -m services.<name>`); logs go to
`.run/<name>.log`, one JSON event per line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / ".run"
SERVICES = {"ingest": 8001, "bundler": 8002, "arvo_adapter": 8003, "sender": 8004}
EXTERNALS = ("ARVO_URL", "SMTP_HOST", "SMS_GATEWAY_URL")


def start(name: str, module: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = (LOGS / f"{name}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", module], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )


def wait_ready(name: str, port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode}; see {LOGS / name}.log")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{name} not ready after {timeout}s; see {LOGS / name}.log")


def main() -> int:
    LOGS.mkdir(exist_ok=True)
    env = {"DEVELOPMENT_MODE": "true", **os.environ}
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def stop(*_: object) -> None:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if not all(env.get(name) for name in EXTERNALS):
        procs["fakes"] = start("fakes", "tests.fakes", env)
    for name, port in SERVICES.items():
        procs[name] = start(name, f"services.{name}", {**env, "PORT": str(port)})
    for name, port in SERVICES.items():
        wait_ready(name, port, procs[name])
    print("työelämäpalaute is running:")
    for name, port in SERVICES.items():
        print(f"  {name:<13} http://127.0.0.1:{port}/docs")
    if "fakes" in procs:
        print("  fakes         Arvo :8090, SMS gateway :8091, SMTP :1025 (mails at :8092)")
    print(f"logs in {LOGS}/; Ctrl-C stops everything")
    while True:
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; stopping", file=sys.stderr)
                stop()
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
