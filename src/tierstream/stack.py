"""The local stack: PostgreSQL + Kafka from the project's scripts, and the four services.

State lives in ``<repo>/.build`` (pid files, logs), so ``up`` is idempotent and ``down`` stops exactly
what ``up`` started, by PID. The settings the services were started with beyond the stack's own wiring
(the demo's simulated clocks) are remembered there too (:func:`remember_settings`), so a service that
``up`` starts again gets the same ones; ``down`` forgets them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka.client import AIOKafkaClient

from shared.db.engine import to_asyncpg_url, to_libpq_url
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


#: Starts a service process: (command, environment, log file) → its PID. Tests give a fake one.
Launcher = Callable[[list[str], dict[str, str], Path], int]


def spawn(command: list[str], env: dict[str, str], log_file: Path) -> int:
    """The real launcher: a detached background process writing to ``log_file``."""
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    return process.pid


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
    launch: Launcher = spawn

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


@dataclass(frozen=True)
class InfraState:
    """Kafka or PostgreSQL of the local stack: its process (by the project's script), whether its port
    accepts connections and, if so, why it did not answer a request (None: it answered)."""

    name: str
    pid: int | None
    port: int
    listening: bool
    unanswered: str | None = None

    @property
    def running(self) -> bool:
        return self.pid is not None and self.listening and self.unanswered is None


def infra_states(config: StackConfig) -> list[InfraState]:
    """What ``kafka-local.sh status`` / ``pg-local.sh status`` say, whether their ports accept connections
    and whether the server behind answers a request (a stopped — SIGSTOP — or wedged process still has its
    port accept connections: the kernel does that)."""
    probes: tuple[tuple[str, str, int, Callable[[], str | None]], ...] = (
        ("Kafka", "kafka-local.sh", config.kafka_port, lambda: kafka_unanswered(f"127.0.0.1:{config.kafka_port}")),
        ("PostgreSQL", "pg-local.sh", config.pg_port, lambda: postgres_unanswered(local_pg_url(config))),
    )
    states = []
    for name, script, port, probe in probes:
        pid, up = _infra_pid(config, script), listening(port)
        states.append(InfraState(name, pid, port, up, probe() if pid is not None and up else None))
    return states


def local_pg_url(config: StackConfig) -> str:
    """The local PostgreSQL server's URL (database ``postgres``), as ``pg-local.sh url`` prints it."""
    return _script(config, "pg-local.sh", "url", env={"PG_PORT": str(config.pg_port)})


PROBE_TIMEOUT_S = 3.0


def kafka_unanswered(bootstrap: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None if the broker answers a metadata request within ``timeout_s``, else why not."""

    async def probe() -> None:
        client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
        try:
            await client.bootstrap()
        finally:
            await client.close()

    logger = logging.getLogger("aiokafka")  # its connection errors are the answer, not lines on stderr
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        return _unanswered(probe, timeout_s)
    finally:
        logger.setLevel(level)


def postgres_unanswered(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None if the server accepts a session and answers ``SELECT 1`` within ``timeout_s``, else why not."""

    async def probe() -> None:
        conn = await asyncpg.connect(to_libpq_url(url), timeout=timeout_s)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            conn.terminate()  # no goodbye to wait for: the answer is in

    return _unanswered(probe, timeout_s)


def _unanswered(probe: Callable[[], Coroutine[Any, Any, None]], timeout_s: float) -> str | None:
    """Run ``probe`` with ``timeout_s`` for all of it: None if it ended well, else why not."""
    try:
        asyncio.run(asyncio.wait_for(probe(), timeout_s))
    except TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except Exception as exc:  # any failure is the answer reported
        return f"error: {exc}" if str(exc) else f"error: {type(exc).__name__}"
    return None


def _infra_pid(config: StackConfig, script: str) -> int | None:
    """The PID a script's ``status`` reports (``running pid N at …``; exit 1 when not running), or None."""
    path = config.root / "deploy" / "local" / script
    result = subprocess.run(["bash", str(path), "status"], capture_output=True, text=True, check=False)
    found = re.match(r"running pid (\d+)", result.stdout.strip()) if result.returncode == 0 else None
    return int(found.group(1)) if found else None


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
    remembered = remembered_settings(config)
    # remembered settings < the caller's environment (explicit wins) < the stack's wiring and extra_env
    env = {**(remembered.env if remembered else {}), **os.environ, **service_env(config, infra, service)}
    # `dev` migrates before it serves, so the four services migrate in parallel.
    pid = config.launch([sys.executable, "-m", service, "dev"], env, config.log_dir / f"{service}.log")
    _pid_file(config, service).write_text(str(pid))
    return pid


@dataclass(frozen=True)
class RememberedSettings:
    """Environment a stack's services were started with beyond its wiring, and who chose it (``demo``)."""

    origin: str
    env: dict[str, str]

    def for_service(self, service: str, explicit: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
        """The service's own entries (``<SERVICE>_…``) a restart applies, and those the caller's environment
        (``explicit``) overrides."""
        prefix = f"{service.upper()}_"
        own = {k: v for k, v in self.env.items() if k.startswith(prefix)}
        return {k: v for k, v in own.items() if k not in explicit}, sorted(k for k in own if k in explicit)


def _settings_file(config: StackConfig) -> Path:
    return config.run_dir / "service-settings.json"


def remember_settings(config: StackConfig, origin: str, env: Mapping[str, str]) -> None:
    """Remember ``env`` as what the stack's services run with (written by ``demo`` before it starts them)."""
    config.run_dir.mkdir(parents=True, exist_ok=True)
    _settings_file(config).write_text(json.dumps({"origin": origin, "env": dict(env)}, indent=2) + "\n")


def remembered_settings(config: StackConfig) -> RememberedSettings | None:
    """What :func:`remember_settings` wrote, or None (a stack started by a plain ``up``, or after ``down``)."""
    path = _settings_file(config)
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
        return RememberedSettings(str(saved["origin"]), {str(k): str(v) for k, v in saved["env"].items()})
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StackError(
            f"{path} is not what tierstream wrote ({exc!r}); delete it to start the services without the "
            "settings it held, or run `tierstream down` and the demo again"
        ) from exc


def forget_settings(config: StackConfig) -> None:
    _settings_file(config).unlink(missing_ok=True)


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
    forget_settings(config)  # the next `up` starts a fresh stack, not the demo's
    stop_infra(config)
    return stopped


def listening(port: int, host: str = "127.0.0.1", timeout_s: float = 2.0) -> bool:
    """Whether something accepts TCP connections on ``host:port`` (is Kafka / PostgreSQL up at all?)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
