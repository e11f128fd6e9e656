"""The local stack: PostgreSQL + Kafka from the project's scripts, and the four services.

State lives in ``<repo>/.build`` (pid files, logs), so ``up`` is idempotent and ``down`` stops exactly
what ``up`` started, by PID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shared.db.engine import to_asyncpg_url
from shared.settings import DEV_KAFKA_PORT, DEV_PG_PORT

SERVICES = ("customers", "orders", "feedback", "segmentation")
#: Bearer token the CLI, loader and tests send; the local stack accepts the documented dev tokens.
TOKEN_ENV = "TIERSTREAM_TOKEN"
DEFAULT_TOKEN = "dev-admin"
DEFAULT_PORTS = {"customers": 8001, "orders": 8002, "feedback": 8003, "segmentation": 8004}
#: The read-only development token the printed dashboard URL carries (docs/api.md).
DASHBOARD_TOKEN = "dev-dashboard"


def api_token() -> str:
    return os.environ.get(TOKEN_ENV) or DEFAULT_TOKEN


def auth_headers() -> dict[str, str]:
    """``Authorization: Bearer $TIERSTREAM_TOKEN`` (default ``dev-admin``): every API requires a token."""
    return {"Authorization": f"Bearer {api_token()}"}


class StackError(RuntimeError):
    """Something the user must fix; the message says what."""


def repo_root() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "deploy" / "local" / "kafka-local.sh").exists():
            return parent
    raise StackError("cannot find the repository (deploy/local/kafka-local.sh) above " + str(here))


@dataclass
class StackConfig:
    root: Path = field(default_factory=repo_root)
    kafka_port: int = DEV_KAFKA_PORT
    pg_port: int = DEV_PG_PORT
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    partitions: int = 3
    namespace: str = ""
    database_prefix: str = "tierstream_"
    state_dir: Path | None = None  # pid files and logs; default <repo>/.build
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. the demo's SEGMENTATION_CLOCK_START

    @property
    def build(self) -> Path:
        return self.state_dir or self.root / ".build"

    @property
    def run_dir(self) -> Path:
        return self.build / "run"

    @property
    def log_dir(self) -> Path:
        return self.build / "logs"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def dashboard_url(self) -> str:
        """The web dashboard, signed in with the read-only dev token through the URL fragment (which the
        browser keeps to itself); without it when tokens are configured, so the page asks for one."""
        fragment = "" if os.environ.get("TIERSTREAM_API_TOKENS") else f"#token={DASHBOARD_TOKEN}"
        return f"{self.url('segmentation')}/dashboard/{fragment}"


@dataclass
class Infra:
    bootstrap_servers: str
    pg_url: str  # server URL (postgres database)


def _script(config: StackConfig, name: str, *args: str, env: dict[str, str]) -> str:
    path = config.root / "deploy" / "local" / name
    result = subprocess.run(
        ["bash", str(path), *args], env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise StackError(f"{name} {' '.join(args)} failed:\n{result.stderr.strip()[-3000:]}")
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def start_infra(config: StackConfig) -> Infra:
    pg_url = _script(config, "pg-local.sh", "start", env={"PG_PORT": str(config.pg_port)})
    bootstrap = _script(
        config,
        "kafka-local.sh",
        "start",
        env={
            "KAFKA_PORT": str(config.kafka_port),
            "KAFKA_KEEP_DATA": "1",
            "KAFKA_NUM_PARTITIONS": str(config.partitions),
        },
    )
    return Infra(bootstrap_servers=bootstrap, pg_url=pg_url)


def stop_infra(config: StackConfig) -> None:
    _script(config, "kafka-local.sh", "stop", env={})
    _script(config, "pg-local.sh", "stop", env={})


def service_env(config: StackConfig, infra: Infra, service: str) -> dict[str, str]:
    base = to_asyncpg_url(infra.pg_url).rsplit("/", 1)[0]
    prefix = service.upper()
    return {
        f"{prefix}_DATABASE_URL": f"{base}/{config.database_prefix}{service}",
        f"{prefix}_HTTP_PORT": str(config.ports[service]),
        f"{prefix}_HTTP_HOST": "127.0.0.1",
        "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap_servers,
        "TIERSTREAM_TOPIC_PARTITIONS": str(config.partitions),
        "TIERSTREAM_TOPIC_NAMESPACE": config.namespace,
        "TIERSTREAM_ENV": "development",
        **config.extra_env,
    }


def _pid_file(config: StackConfig, service: str) -> Path:
    return config.run_dir / f"{service}.pid"


def service_pid(config: StackConfig, service: str) -> int | None:
    """The PID of our running service process, or None (stale pid files are ignored)."""
    path = _pid_file(config, service)
    if not path.exists():
        return None
    pid = int(path.read_text().strip() or 0)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return pid if service.encode() in cmdline and b"-m" in cmdline else None


def start_service(config: StackConfig, infra: Infra, service: str) -> int:
    existing = service_pid(config, service)
    if existing:
        return existing
    config.run_dir.mkdir(parents=True, exist_ok=True)
    config.log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **service_env(config, infra, service)}
    # `dev` migrates before it serves, so the four services migrate in parallel.
    log = (config.log_dir / f"{service}.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", service, "dev"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    _pid_file(config, service).write_text(str(process.pid))
    return process.pid


def wait_ready(config: StackConfig, service: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    pid_file = _pid_file(config, service)
    # The process we just started: alive or not (its command line may not name the service yet).
    pid = int(pid_file.read_text().strip() or 0) if pid_file.exists() else 0
    while time.monotonic() < deadline:
        if not pid or not _alive(pid):
            log = config.log_dir / f"{service}.log"
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-12:]) if log.exists() else ""
            raise StackError(f"{service} exited during start-up; the end of {log}:\n{tail}")
        try:
            response = httpx.get(f"{config.url(service)}/health/ready", timeout=3)
            if response.status_code == 200:
                return
            last = response.text
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.3)
    raise StackError(f"{service} not ready after {timeout_s:.0f}s ({last}); see {config.log_dir}")


def stop_service(config: StackConfig, service: str, timeout_s: float = 20) -> bool:
    pid = service_pid(config, service)
    _pid_file(config, service).unlink(missing_ok=True)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return True


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; reaps it if it is our child, and treats a zombie as gone."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def up(config: StackConfig) -> Infra:
    infra = start_infra(config)
    for service in SERVICES:
        start_service(config, infra, service)
    for service in SERVICES:
        wait_ready(config, service)
    return infra


def down(config: StackConfig) -> list[str]:
    stopped = [s for s in SERVICES if stop_service(config, s)]
    stop_infra(config)
    return stopped


def listening(port: int, host: str = "127.0.0.1", timeout_s: float = 2.0) -> bool:
    """Whether something accepts TCP connections on ``host:port`` (is Kafka / PostgreSQL up at all?)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
