"""Where Tierstream's test / dev infrastructure comes from — the one place that decides.

Kafka (:func:`kafka_bootstrap`), first match wins:

1. ``KAFKA_BOOTSTRAP_SERVERS`` in the environment (an externally managed broker; never stopped here);
2. a ``apache/kafka`` container via testcontainers, if a Docker engine answers (:func:`docker_available`);
   any error on this path falls through to 3;
3. ``deploy/local/kafka-local.sh start`` — a real broker from jars out of Maven Central, no Docker.

PostgreSQL (:func:`postgres_server`), likewise:

1. ``DATABASE_URL`` (a server URL whose role may ``CREATE DATABASE``; ``postgresql://`` or
   ``postgresql+asyncpg://``);
2. a ``postgres`` container via testcontainers;
3. ``deploy/local/pg-local.sh start`` — a project-owned cluster run as the ``postgres`` OS user.

Every handle has ``stop()``, which stops only what that handle started: an environment-provided server
is never touched, and a local script server that was already running before the handle was made is left
running (so a developer can keep one up between test runs). Handles are context managers and are also
stopped at interpreter exit as a safety net.

Local script servers run from ``<repo>/.build/test/{kafka,pg}`` (not the dev stack's ``.build/kafka`` /
``.build/pg``), so tests never write into ``tierstream up``'s data; ``KAFKA_RUN_DIR`` / ``PG_RUN_DIR``
in the environment or the ``run_dir`` argument override that.

``TIERSTREAM_USE_DOCKER=0`` skips the Docker probe; ``TIERSTREAM_KAFKA_IMAGE`` /
``TIERSTREAM_PG_IMAGE`` choose the container images.

Dependency-light on purpose: stdlib only; testcontainers is imported lazily on the Docker path.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

__all__ = [
    "DEFAULT_KAFKA_IMAGE",
    "DEFAULT_PG_IMAGE",
    "InfraError",
    "KafkaHandle",
    "PostgresHandle",
    "PrivateKafka",
    "asyncpg_url",
    "docker_available",
    "kafka_bootstrap",
    "plain_url",
    "postgres_server",
    "repo_root",
    "unique_name",
    "wait_for_kafka",
    "with_database",
]

DEFAULT_KAFKA_IMAGE = "apache/kafka:4.1.1"
DEFAULT_PG_IMAGE = "postgres:15-alpine"

_FALSY = {"0", "false", "no", "off"}


class InfraError(RuntimeError):
    """A piece of infrastructure could not be started or reached."""


# --------------------------------------------------------------------------------------------- handles


class _Handle:
    source: str  # "env" | "docker" | "local"
    started_here: bool

    def __init__(self, *, source: str, started_here: bool, stopper: Callable[[], None] | None) -> None:
        self.source = source
        self.started_here = started_here
        self._stopper = stopper
        self._lock = threading.Lock()
        if stopper is not None:
            atexit.register(self.stop)

    def stop(self) -> None:
        """Stop what this handle started (nothing for env-provided or pre-existing servers). Idempotent."""
        with self._lock:
            stopper, self._stopper = self._stopper, None
        if stopper is not None:
            atexit.unregister(self.stop)
            stopper()

    def __enter__(self) -> _Handle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class KafkaHandle(_Handle):
    """A reachable Kafka broker: ``bootstrap_servers`` (``host:port[,host:port]``)."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        source: str,
        started_here: bool,
        stopper: Callable[[], None] | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        super().__init__(source=source, started_here=started_here, stopper=stopper)

    def __enter__(self) -> KafkaHandle:
        return self

    def __repr__(self) -> str:
        return f"KafkaHandle({self.bootstrap_servers!r}, source={self.source!r}, started_here={self.started_here})"


class PostgresHandle(_Handle):
    """A reachable PostgreSQL server: ``url`` is a plain ``postgresql://user:pw@host:port/postgres`` URL."""

    def __init__(
        self,
        url: str,
        *,
        source: str,
        started_here: bool,
        stopper: Callable[[], None] | None = None,
    ) -> None:
        self.url = url
        super().__init__(source=source, started_here=started_here, stopper=stopper)

    @property
    def asyncpg_url(self) -> str:
        """The same server as a SQLAlchemy ``postgresql+asyncpg://`` URL."""
        return asyncpg_url(self.url)

    def __enter__(self) -> PostgresHandle:
        return self

    def __repr__(self) -> str:
        safe = urlsplit(self.url)._replace(netloc=_netloc_without_password(self.url))
        return f"PostgresHandle({urlunsplit(safe)!r}, source={self.source!r}, started_here={self.started_here})"


# --------------------------------------------------------------------------------------------- URLs

_PG_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg", "postgresql+psycopg2")


def _split_pg(url: str) -> SplitResult:
    parts = urlsplit(url)
    if parts.scheme not in _PG_SCHEMES:
        raise ValueError(f"not a PostgreSQL URL (scheme {parts.scheme!r}): {url!r}")
    return parts


def plain_url(url: str) -> str:
    """``postgresql+asyncpg://…`` / ``postgres://…`` → ``postgresql://…`` (what asyncpg / psql accept)."""
    return urlunsplit(_split_pg(url)._replace(scheme="postgresql"))


def asyncpg_url(url: str) -> str:
    """Any PostgreSQL URL → the SQLAlchemy ``postgresql+asyncpg://…`` form."""
    return urlunsplit(_split_pg(url)._replace(scheme="postgresql+asyncpg"))


def with_database(url: str, dbname: str) -> str:
    """The same server and credentials, another database (scheme and query string are kept)."""
    if not dbname:
        raise ValueError("empty database name")
    return urlunsplit(_split_pg(url)._replace(path="/" + quote(dbname, safe="")))


def _netloc_without_password(url: str) -> str:
    p = urlsplit(url)
    if p.password is None:
        return p.netloc
    return p.netloc.replace(f":{p.password}@", ":***@", 1)


# --------------------------------------------------------------------------------------------- repo


def repo_root() -> Path:
    """The checkout this module lives in: the nearest ancestor containing ``deploy/local``."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "deploy" / "local").is_dir():
            return parent
    raise InfraError(f"no deploy/local directory above {here}; is this a Tierstream checkout?")


# --------------------------------------------------------------------------------------------- docker


def _docker_disabled() -> bool:
    return os.environ.get("TIERSTREAM_USE_DOCKER", "").strip().lower() in _FALSY


def _http_ping(sock: socket.socket, deadline: float) -> bool:
    sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
    buf = b""
    while b"\r\n" not in buf and len(buf) < 4096:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        sock.settimeout(remaining)
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    status = buf.split(b"\r\n", 1)[0].split()
    return len(status) >= 2 and status[1] == b"200"


def _ping_unix(path: str, deadline: float) -> bool:
    if not os.path.exists(path):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        s.connect(path)
        return _http_ping(s, deadline)


def _ping_tcp(host: str, port: int, deadline: float) -> bool:
    with socket.create_connection((host, port), timeout=max(0.05, deadline - time.monotonic())) as s:
        return _http_ping(s, deadline)


def _ping_sdk(deadline: float) -> bool:
    """ssh://, npipe:// or TLS engines: ask the docker SDK in a worker thread bounded by the deadline."""
    result: list[bool] = []

    def probe() -> None:
        try:
            import docker  # lazy; comes with testcontainers

            client = docker.from_env(timeout=max(1, int(deadline - time.monotonic())))
            try:
                result.append(bool(client.ping()))
            finally:
                client.close()
        except Exception:
            result.append(False)

    t = threading.Thread(target=probe, name="docker-ping", daemon=True)
    t.start()
    t.join(max(0.0, deadline - time.monotonic()))
    return bool(result and result[0])


def _testcontainers_docker_host() -> str | None:
    """``docker.host`` from ~/.testcontainers.properties, which testcontainers honours too."""
    with contextlib.suppress(OSError):
        for line in (Path.home() / ".testcontainers.properties").read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() == "docker.host" and value.strip():
                return value.strip()
    return None


def docker_available(timeout: float = 2.0) -> bool:
    """True if a Docker engine answers ``/_ping`` within ``timeout`` (≤ 2 s is plenty). Never raises."""
    try:
        if _docker_disabled():
            return False
        deadline = time.monotonic() + min(max(timeout, 0.1), 10.0)
        host = os.environ.get("DOCKER_HOST") or _testcontainers_docker_host()
        if not host:
            candidates = [
                "/var/run/docker.sock",
                str(Path.home() / ".docker" / "run" / "docker.sock"),  # Docker Desktop
                str(Path.home() / ".docker" / "desktop" / "docker.sock"),
                str(Path.home() / ".colima" / "default" / "docker.sock"),
            ]
            if xdg := os.environ.get("XDG_RUNTIME_DIR"):
                candidates.append(os.path.join(xdg, "docker.sock"))  # rootless
            for path in candidates:
                with contextlib.suppress(OSError):
                    if _ping_unix(path, deadline):
                        return True
            return False
        if host.startswith("unix://"):
            return _ping_unix(host[len("unix://") :], deadline)
        tls = os.environ.get("DOCKER_TLS_VERIFY") or os.environ.get("DOCKER_CERT_PATH")
        if host.startswith("tcp://") and not tls:
            parts = urlsplit(host)
            return _ping_tcp(parts.hostname or "127.0.0.1", parts.port or 2375, deadline)
        return _ping_sdk(deadline)
    except Exception:
        return False


def _use_docker(use_docker: bool | None) -> bool:
    if use_docker is False:
        return False
    return docker_available()


# --------------------------------------------------------------------------------------------- kafka probe


def _kafka_metadata_ok(host: str, port: int, timeout: float) -> bool:
    """One Kafka-protocol round trip: ApiVersions v0 OK and Metadata v1 listing >= 1 broker."""

    def recvn(s: socket.socket, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise OSError("connection closed")
            buf += chunk
        return buf

    def call(s: socket.socket, api_key: int, version: int, corr: int, body: bytes = b"") -> bytes:
        client = b"tierstream-infra-probe"
        msg = struct.pack(">hhih", api_key, version, corr, len(client)) + client + body
        s.sendall(struct.pack(">i", len(msg)) + msg)
        return recvn(s, struct.unpack(">i", recvn(s, 4))[0])

    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            r = call(s, 18, 0, 1)  # ApiVersions v0
            if struct.unpack(">ih", r[:6])[1] != 0:
                return False
            r = call(s, 3, 1, 2, struct.pack(">i", 0))  # Metadata v1, no topics
            return struct.unpack(">ii", r[:8])[1] >= 1
    except (OSError, struct.error):
        return False


def wait_for_kafka(bootstrap_servers: str, timeout: float = 60.0) -> None:
    """Block until one of the bootstrap servers answers Metadata with >= 1 broker; raise InfraError."""
    deadline = time.monotonic() + timeout
    addrs: list[tuple[str, int]] = []
    for item in bootstrap_servers.split(","):
        host_part, _, port_part = item.strip().rpartition(":")
        if not port_part.isdigit():
            raise ValueError(f"bad bootstrap address {item!r} in {bootstrap_servers!r}")
        addrs.append((host_part.strip("[]") or "127.0.0.1", int(port_part)))
    while True:
        for host, port in addrs:
            if _kafka_metadata_ok(host, port, 2.0):
                return
        if time.monotonic() >= deadline:
            raise InfraError(f"Kafka at {bootstrap_servers} did not answer Metadata within {timeout:.0f}s")
        time.sleep(0.25)


def _wait_tcp(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=2.0):
                return
        except OSError as e:
            if time.monotonic() >= deadline:
                raise InfraError(f"nothing answers on {host}:{port} after {timeout:.0f}s: {e}") from e
            time.sleep(0.25)


# --------------------------------------------------------------------------------------------- local scripts


def _script(name: str) -> Path:
    path = repo_root() / "deploy" / "local" / name
    if not path.is_file():
        raise InfraError(f"{path} is missing")
    return path


def _run_script(script: Path, command: str, env: Mapping[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["bash", str(script), command],
            env=dict(env),
            cwd=str(script.parent),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise InfraError(f"{script.name} {command} timed out after {timeout:.0f}s") from e


def _script_failed(script: Path, command: str, proc: subprocess.CompletedProcess[str]) -> InfraError:
    tail = "\n".join((proc.stderr or "").strip().splitlines()[-30:])
    return InfraError(f"{script.name} {command} failed (exit {proc.returncode}):\n{tail}")


def _local_env(run_dir_var: str, run_dir: str | os.PathLike[str] | None, default_sub: str) -> dict[str, str]:
    env = dict(os.environ)
    if run_dir is not None:
        env[run_dir_var] = str(Path(run_dir).resolve())
    elif not env.get(run_dir_var):
        env[run_dir_var] = str(repo_root() / ".build" / "test" / default_sub)
    return env


def _start_local(script_name: str, env: dict[str, str], timeout: float) -> tuple[str, bool, Callable[[], None]]:
    """Run ``<script> start``; return (stdout line, started_here, stopper)."""
    script = _script(script_name)
    was_running = _run_script(script, "status", env, 30).returncode == 0
    proc = _run_script(script, "start", env, timeout)
    if proc.returncode != 0:
        raise _script_failed(script, "start", proc)
    lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]
    if not lines:
        raise InfraError(f"{script.name} start printed nothing on stdout:\n{proc.stderr}")

    def stopper() -> None:
        if was_running:
            return
        stop = _run_script(script, "stop", env, 90)
        if stop.returncode != 0:
            raise _script_failed(script, "stop", stop)

    return lines[-1], not was_running, stopper


# --------------------------------------------------------------------------------------------- kafka


def _start_kafka_container(partitions: int, timeout: float) -> KafkaHandle:
    """apache/kafka in KRaft combined mode. testcontainers' KafkaContainer only drives Confluent images
    (it runs /etc/confluent/docker/*), so this uses a plain DockerContainer the same way: the container
    waits for a file naming its advertised listener, which is only known once the port is mapped."""
    from testcontainers.core.container import DockerContainer  # lazy

    image = os.environ.get("TIERSTREAM_KAFKA_IMAGE", DEFAULT_KAFKA_IMAGE)
    marker = "/tmp/tierstream-advertised-listeners"
    boot = (
        f"while [ ! -s {marker} ]; do sleep 0.1; done; "
        f'export KAFKA_ADVERTISED_LISTENERS="$(cat {marker})"; exec /etc/kafka/docker/run'
    )
    container = DockerContainer(image)
    settings = {
        "CLUSTER_ID": "dGllcnN0cmVhbS10ZXN0Cg",
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": "PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
        "KAFKA_MIN_INSYNC_REPLICAS": "1",
        "KAFKA_DEFAULT_REPLICATION_FACTOR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "true",
        "KAFKA_NUM_PARTITIONS": str(partitions),
        "KAFKA_LOG_RETENTION_MS": "-1",
    }
    for key, value in settings.items():
        container.with_env(key, value)
    container.with_exposed_ports(9092)
    container.with_command(["bash", "-c", boot])
    container.start()
    try:
        host = container.get_container_host_ip()
        port = int(container.get_exposed_port(9092))
        _put_file(container, marker, f"PLAINTEXT://{host}:{port}".encode())
        bootstrap = f"{host}:{port}"
        wait_for_kafka(bootstrap, timeout)
    except BaseException:
        with contextlib.suppress(Exception):
            container.stop()
        raise
    return KafkaHandle(bootstrap, source="docker", started_here=True, stopper=container.stop)


def _put_file(container: Any, path: str, content: bytes) -> None:
    import io
    import tarfile

    with io.BytesIO() as archive:
        with tarfile.open(fileobj=archive, mode="w") as tar:
            info = tarfile.TarInfo(name=path.lstrip("/"))
            info.size = len(content)
            info.mtime = int(time.time())
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
        archive.seek(0)
        container.get_wrapped_container().put_archive("/", archive.getvalue())


def kafka_bootstrap(
    *,
    use_docker: bool | None = None,
    run_dir: str | os.PathLike[str] | None = None,
    port: int | None = None,
    keep_data: bool = False,
    partitions: int | None = None,
    timeout: float = 180.0,
) -> KafkaHandle:
    """A running Kafka broker: ``KAFKA_BOOTSTRAP_SERVERS`` → Docker (testcontainers) → kafka-local.sh.

    ``use_docker=False`` skips Docker, ``None`` (default) uses it when an engine answers. ``run_dir``,
    ``port`` and ``keep_data`` only apply to the local script (KAFKA_RUN_DIR / KAFKA_PORT /
    KAFKA_KEEP_DATA); ``partitions`` (default ``KAFKA_NUM_PARTITIONS`` or 3) to Docker and the script.
    """
    env_bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if env_bootstrap:
        wait_for_kafka(env_bootstrap, min(timeout, 60.0))
        return KafkaHandle(env_bootstrap, source="env", started_here=False)

    if partitions is None:
        partitions = int(os.environ.get("KAFKA_NUM_PARTITIONS", "3"))

    if _use_docker(use_docker):
        try:
            return _start_kafka_container(partitions, timeout)
        except Exception:  # any Docker trouble: fall through to the local broker
            pass

    env = _local_env("KAFKA_RUN_DIR", run_dir, "kafka")
    env["KAFKA_NUM_PARTITIONS"] = str(partitions)
    if port is not None:
        env["KAFKA_PORT"] = str(port)
    env["KAFKA_KEEP_DATA"] = "1" if keep_data else env.get("KAFKA_KEEP_DATA", "0")
    bootstrap, started_here, stopper = _start_local("kafka-local.sh", env, timeout)
    return KafkaHandle(bootstrap, source="local", started_here=started_here, stopper=stopper)


class PrivateKafka:
    """A broker of its own, for a fault test or benchmark that stops, freezes or restarts it: kafka-local.sh
    with its own run directory (under /tmp) and a port below the ephemeral range (a client retrying a closed
    port in that range can end up connected to itself on it, and the broker could not start there again).
    The shared test broker is never touched. ``remove`` stops it and deletes its run directory.
    ``auto_create_topics=False``: a metadata request for a missing topic does not create it."""

    def __init__(self, *, auto_create_topics: bool = True) -> None:
        self.auto_create_topics = auto_create_topics
        self.base = Path(tempfile.mkdtemp(prefix="tierstream-private-kafka-"))
        self.run_dir = self.base / "kafka"
        self.port = port_below_ephemeral_range()
        self.bootstrap = f"127.0.0.1:{self.port}"

    def _script(self, command: str, *, keep_data: bool = False, timeout: float = 180.0) -> None:
        env = {
            **os.environ,
            "KAFKA_RUN_DIR": str(self.run_dir),
            "KAFKA_PORT": str(self.port),
            "KAFKA_KEEP_DATA": "1" if keep_data else "0",
            "KAFKA_AUTO_CREATE_TOPICS": "true" if self.auto_create_topics else "false",
        }
        proc = _run_script(_script("kafka-local.sh"), command, env, timeout)
        if proc.returncode != 0:
            raise _script_failed(_script("kafka-local.sh"), command, proc)

    def start(self, *, keep_data: bool = False) -> str:
        """Start the broker (again, on its data, with ``keep_data``); its bootstrap address."""
        self._script("start", keep_data=keep_data)
        return self.bootstrap

    @property
    def pid(self) -> int:
        return int((self.run_dir / "kafka.pid").read_text())

    def stop(self) -> None:
        with contextlib.suppress(InfraError):
            self._script("stop", timeout=90.0)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def port_below_ephemeral_range() -> int:
    """A free TCP port on 127.0.0.1 between 20000 and 30000 (see :class:`PrivateKafka`)."""
    for _ in range(200):
        port = random.randint(20_000, 30_000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise InfraError("no free port in 20000-30000")


# --------------------------------------------------------------------------------------------- postgres


def _start_pg_container(timeout: float) -> PostgresHandle:
    try:
        from testcontainers.community.postgres import PostgresContainer  # lazy
    except ImportError:  # older testcontainers layout
        from testcontainers.postgres import PostgresContainer

    image = os.environ.get("TIERSTREAM_PG_IMAGE", DEFAULT_PG_IMAGE)
    container = PostgresContainer(image, username="tierstream", password="tierstream", dbname="postgres", driver=None)
    container.with_command("postgres -c max_connections=300 -c shared_buffers=256MB")
    container.start()
    try:
        url = plain_url(container.get_connection_url())
        parts = urlsplit(url)
        _wait_tcp(parts.hostname or "127.0.0.1", parts.port or 5432, timeout)
    except BaseException:
        with contextlib.suppress(Exception):
            container.stop()
        raise
    return PostgresHandle(url, source="docker", started_here=True, stopper=container.stop)


def postgres_server(
    *,
    use_docker: bool | None = None,
    run_dir: str | os.PathLike[str] | None = None,
    port: int | None = None,
    timeout: float = 120.0,
) -> PostgresHandle:
    """A running PostgreSQL server: ``DATABASE_URL`` → Docker (testcontainers) → pg-local.sh.

    The handle's ``url`` is a plain ``postgresql://`` URL of a role that may CREATE DATABASE.
    ``run_dir`` / ``port`` only apply to the local script (PG_RUN_DIR / PG_PORT).
    """
    env_url = os.environ.get("DATABASE_URL", "").strip()
    if env_url:
        url = plain_url(env_url)
        parts = urlsplit(url)
        if parts.hostname:
            _wait_tcp(parts.hostname, parts.port or 5432, min(timeout, 30.0))
        return PostgresHandle(url, source="env", started_here=False)

    if _use_docker(use_docker):
        try:
            return _start_pg_container(timeout)
        except Exception:  # any Docker trouble: fall through to the local cluster
            pass

    env = _local_env("PG_RUN_DIR", run_dir, "pg")
    if port is not None:
        env["PG_PORT"] = str(port)
    url, started_here, stopper = _start_local("pg-local.sh", env, timeout)
    return PostgresHandle(plain_url(url), source="local", started_here=started_here, stopper=stopper)


def unique_name(prefix: str = "t") -> str:
    """A short unique identifier usable as a topic, group or database name."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"
