"""The container deployment, checked without a Docker engine.

docker-compose.yml and deploy/compose.prod.yml are validated against the official Compose
Specification JSON schema (vendored as deploy/schema/compose-spec.json, taken unchanged from the PyPI
package check-jsonschema, ``check_jsonschema/builtin_schemas/vendor/compose-spec.json``, Apache-2.0),
then against what the schema cannot know: the project's role-per-container layout, dependency
order, loopback-only ports, health checks, the variables .env.example must document, the production
override's Kafka durability settings, and the Dockerfile's contract (``python -m`` entrypoint).

Where a Docker Compose v2 binary is on PATH, ``docker compose config`` also has to accept both files.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from packaging.specifiers import SpecifierSet
from packaging.version import Version

pytestmark = pytest.mark.contract

REPO = Path(__file__).resolve().parents[2]
BASE_FILE = REPO / "docker-compose.yml"
PROD_FILE = REPO / "deploy" / "compose.prod.yml"
SCHEMA_FILE = REPO / "deploy" / "schema" / "compose-spec.json"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
ENV_EXAMPLE = REPO / ".env.example"

INFRA = {"kafka", "postgres"}
#: role → the settings (after the service prefix) of the HTTP listener it serves /health/ready on: the
#: api role's API, and the worker roles' own listener (/health/*, /metrics; shared.runtime)
LISTENER_SETTINGS = {
    "api": ("HTTP_HOST", "HTTP_PORT"),
    "relay": ("METRICS_HOST", "METRICS_PORT"),
    "consume": ("METRICS_HOST", "METRICS_PORT"),
    "sweep": ("METRICS_HOST", "METRICS_PORT"),
}
#: FastStream / uvicorn style graceful shutdowns wait up to 15 s; the grace period must be longer.
MIN_GRACE_S = 20.0


# --- loading ---------------------------------------------------------------------------------------
class Reset(list[Any]):
    """``!reset`` (compose >= 2.24): drop what the earlier file set for this key."""


class Override:
    """``!override VALUE`` (compose >= 2.24.4): replace instead of merge."""

    def __init__(self, value: Any) -> None:
        self.value = value


class ComposeLoader(yaml.SafeLoader):
    """YAML 1.1 safe loader (merge keys ``<<`` included) plus compose's ``!reset`` / ``!override``."""


def _reset(loader: yaml.SafeLoader, node: yaml.Node) -> Reset:
    return Reset()


def _override(loader: yaml.SafeLoader, node: yaml.Node) -> Override:
    if isinstance(node, yaml.MappingNode):
        return Override(loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return Override(loader.construct_sequence(node, deep=True))
    return Override(loader.construct_scalar(node))


ComposeLoader.add_constructor("!reset", _reset)
ComposeLoader.add_constructor("!override", _override)


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=ComposeLoader)
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


def plain(value: Any) -> Any:
    """The document as the schema sees it (tags resolved to their values)."""
    if isinstance(value, Override):
        return plain(value.value)
    if isinstance(value, Reset):
        return []
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


@cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def schema_errors(document: Mapping[str, Any]) -> list[str]:
    validator = Draft202012Validator(schema())
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(plain(document)), key=lambda e: list(map(str, e.absolute_path)))
    ]


# --- interpolation (the subset of compose's rules these files use) ----------------------------------
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


def _closing_brace(text: str, start: int) -> int:
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError(f"unbalanced ${{ in {text!r}")


def interpolate(text: str, env: Mapping[str, str], seen: set[str] | None = None) -> str:
    """Resolve ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-d}``, ``${VAR:?err}``, ``${VAR:+alt}``
    and ``$$`` like compose does; defaults may nest. Every variable name met is added to ``seen``."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            end = _closing_brace(text, i + 1)
            out.append(_resolve(text[i + 2 : end], env, seen))
            i = end + 1
        elif text[i] == "$" and (m := _NAME.match(text, i + 1)):
            if seen is not None:
                seen.add(m.group())
            out.append(env.get(m.group(), ""))
            i = m.end()
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _resolve(expr: str, env: Mapping[str, str], seen: set[str] | None) -> str:
    m = _NAME.match(expr)
    if not m:
        raise ValueError(f"bad variable expression ${{{expr}}}")
    name, rest = m.group(), expr[m.end() :]
    if seen is not None:
        seen.add(name)
    value = env.get(name)
    if not rest:
        return value or ""
    op = next((o for o in _OPERATORS if rest.startswith(o)), None)
    if op is None:
        raise ValueError(f"bad variable expression ${{{expr}}}")
    arg = interpolate(rest[len(op) :], env, seen)
    unset_or_empty = not value if op.startswith(":") else value is None
    if op in (":-", "-"):
        return arg if unset_or_empty else value or ""
    if op in (":?", "?"):
        if unset_or_empty:
            raise LookupError(f"{name}: {arg}")
        return value or ""
    return "" if unset_or_empty else arg  # :+ and +


def walk_strings(value: Any) -> Iterator[str]:
    if isinstance(value, Override):
        yield from walk_strings(value.value)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from walk_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_strings(v)
    elif isinstance(value, str):
        yield value


def referenced_variables(document: Any) -> set[str]:
    seen: set[str] = set()
    for text in walk_strings(document):
        # ${VAR:?message} with VAR unset raises; the name is recorded all the same.
        with contextlib.suppress(LookupError):
            interpolate(text, {}, seen)
    return seen


def interpolated(document: Any, env: Mapping[str, str]) -> Any:
    if isinstance(document, Override):
        return Override(interpolated(document.value, env))
    if isinstance(document, Reset):
        return Reset()
    if isinstance(document, dict):
        return {k: interpolated(v, env) for k, v in document.items()}
    if isinstance(document, list):
        return [interpolated(v, env) for v in document]
    if isinstance(document, str):
        return interpolate(document, env)
    return document


def env_example() -> dict[str, str]:
    """``.env.example`` as compose would read it; commented-out ``# NAME=value`` lines count as
    documented (their value is the default the compose files fall back to)."""
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\s*#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if m:
            values.setdefault(m.group(1), m.group(2).strip())
    return values


def active_env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if m:
            values[m.group(1)] = m.group(2)
    return values


# Production needs POSTGRES_PASSWORD (``${POSTGRES_PASSWORD:?…}``); an operator sets it in .env.
def prod_env() -> dict[str, str]:
    return {**active_env_example(), "POSTGRES_PASSWORD": "not-the-dev-password"}


# --- merging an override the way compose does (for what these files use) ---------------------------
_APPENDED_LISTS = {"ports", "expose", "dns", "dns_search", "tmpfs", "cap_add", "cap_drop", "env_file"}


def _volume_target(entry: Any) -> str:
    if isinstance(entry, dict):
        return str(entry.get("target"))
    parts = str(entry).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def merge(base: Any, override: Any, key: str = "") -> Any:
    if isinstance(override, Reset):
        return []
    if isinstance(override, Override):
        return copy.deepcopy(override.value)
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for k, v in override.items():
            merged[k] = merge(base[k], v, k) if k in base else plain(v)
        return merged
    if isinstance(base, list) and isinstance(override, list):
        if key in _APPENDED_LISTS:
            return base + [v for v in override if v not in base]
        if key == "volumes":
            targets = {_volume_target(v) for v in override}
            return [v for v in base if _volume_target(v) not in targets] + override
    return plain(override)


@cache
def base_compose() -> dict[str, Any]:
    return load_yaml(BASE_FILE)


@cache
def prod_compose() -> dict[str, Any]:
    return load_yaml(PROD_FILE)


def resolved_base() -> dict[str, Any]:
    return interpolated(base_compose(), {})


def resolved_prod() -> dict[str, Any]:
    return merge(interpolated(base_compose(), prod_env()), interpolated(prod_compose(), prod_env()))


STACKS = {"base": resolved_base, "prod": resolved_prod}


# --- the project's services and roles, read from the source (no imports: no runtime needed) --------
@cache
def project_services() -> dict[str, set[str]]:
    """module name → the roles ``python -m <module>`` offers (shared.runtime.build_cli)."""
    services: dict[str, set[str]] = {}
    for pyproject in sorted((REPO / "services").glob("*/pyproject.toml")):
        meta = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        module = meta.get("tool", {}).get("uv", {}).get("build-backend", {}).get("module-name", pyproject.parent.name)
        main = pyproject.parent / "src" / module / "__main__.py"
        roles = {"migrate", "api", "relay", "dev"}
        for node in ast.walk(ast.parse(main.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ServiceDefinition":
                for kw in node.keywords:
                    empty = isinstance(kw.value, ast.Constant) and kw.value.value is None
                    empty = empty or (isinstance(kw.value, ast.List) and not kw.value.elts)
                    if kw.arg == "consumer" and not empty:
                        roles.add("consume")
                    if kw.arg == "background" and not empty:
                        roles.add("sweep")
        services[module] = roles
    return services


def required_containers() -> dict[str, tuple[str, str]]:
    """container name → (service, role): a one-shot migrate and every long-running role but ``dev``."""
    return {
        f"{service}-{role}": (service, role)
        for service, roles in project_services().items()
        for role in roles - {"dev"}
    }


def app_containers(stack: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in stack["services"].items() if name not in INFRA and _is_tierstream(svc)}


def _is_tierstream(svc: Mapping[str, Any]) -> bool:
    build = svc.get("build")
    return isinstance(build, dict) and build.get("dockerfile") == "deploy/Dockerfile"


def duration_s(text: str) -> float:
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(text))
    assert parts and "".join(n + u for n, u in parts) == str(text), f"not a compose duration: {text!r}"
    return sum(float(n) * units[u] for n, u in parts)


# --- semantic checks, as functions returning problems (so they can be shown to fail) ---------------
def layout_problems(stack: Mapping[str, Any]) -> list[str]:
    services = stack["services"]
    problems = [f"no {name} service" for name in sorted(INFRA) if name not in services]
    for name, (service, role) in sorted(required_containers().items()):
        svc = services.get(name)
        if svc is None:
            problems.append(f"{name}: missing (python -m {service} {role})")
            continue
        if svc.get("command") != [service, role]:
            problems.append(f"{name}: command {svc.get('command')!r}, expected {[service, role]!r}")
        if not _is_tierstream(svc):
            problems.append(f"{name}: not built from deploy/Dockerfile")
    for name, svc in app_containers(stack).items():
        command = svc.get("command")
        if not (isinstance(command, list) and len(command) == 2):
            problems.append(f"{name}: command must be [<service>, <role>], got {command!r}")
            continue
        service, role = command
        if role not in project_services().get(service, set()):
            problems.append(f"{name}: `python -m {service} {role}` is not a role of a service")
    return problems


def dependency_problems(stack: Mapping[str, Any]) -> list[str]:
    services = stack["services"]
    problems: list[str] = []
    for name, svc in services.items():
        depends = svc.get("depends_on") or {}
        targets = depends if isinstance(depends, dict) else {target: {} for target in depends}
        problems += [f"{name}: depends on unknown service {t!r}" for t in targets if t not in services]
    for name, (service, role) in required_containers().items():
        depends = (services.get(name) or {}).get("depends_on") or {}
        if not isinstance(depends, dict):
            problems.append(f"{name}: depends_on must use the long syntax with conditions")
            continue
        if role == "migrate":
            for infra in sorted(INFRA):
                if (depends.get(infra) or {}).get("condition") != "service_healthy":
                    problems.append(f"{name}: must wait for {infra} to be service_healthy")
            if (services.get(name) or {}).get("restart") != "no":
                problems.append(f"{name}: a one-shot migrate needs restart: 'no'")
        else:
            migrate = (depends.get(f"{service}-migrate") or {}).get("condition")
            if migrate != "service_completed_successfully":
                problems.append(f"{name}: must depend on {service}-migrate with service_completed_successfully")
    return problems


def _published(entry: Any) -> tuple[str, str | None]:
    """(host ip, published port) of one ``ports`` entry; host ip '' = all interfaces."""
    if isinstance(entry, dict):
        return str(entry.get("host_ip", "")), None if entry.get("published") is None else str(entry["published"])
    text = str(entry).split("/")[0]
    if text.startswith("["):  # [ipv6]:published:target
        host, _, rest = text[1:].partition("]:")
        published = rest.split(":")[0] if ":" in rest else None
        return host, published
    parts = text.split(":")
    if len(parts) == 3:
        return parts[0], parts[1]
    if len(parts) == 2:
        return "", parts[0]
    return "", None  # container port only: docker picks an ephemeral host port on all interfaces


def port_problems(stack: Mapping[str, Any]) -> list[str]:
    problems = []
    for name, svc in stack["services"].items():
        for entry in svc.get("ports") or []:
            host, _ = _published(entry)
            if host not in ("127.0.0.1", "::1", "localhost"):
                problems.append(f"{name}: port {entry!r} is published beyond the loopback interface")
    return problems


def healthcheck_problems(stack: Mapping[str, Any]) -> list[str]:
    problems = []
    services = stack["services"]
    for name, (service, role) in required_containers().items():
        svc = services.get(name) or {}
        if role not in LISTENER_SETTINGS:
            continue
        env = svc.get("environment") or {}
        host_var, port_var = (f"{service.upper()}_{s}" for s in LISTENER_SETTINGS[role])
        port = str(env.get(port_var, ""))
        host = str(env.get(host_var, ""))
        if not port.isdigit() or not 0 < int(port) < 65536:
            problems.append(f"{name}: {port_var} must be set to a port (0 or unset = no listener), has {port!r}")
        test = " ".join(map(str, (svc.get("healthcheck") or {}).get("test") or []))
        if f"127.0.0.1:{port}/health/ready" not in test:
            problems.append(f"{name}: healthcheck must probe http://127.0.0.1:{port}/health/ready, has {test!r}")
        if "urllib" not in test:
            problems.append(f"{name}: healthcheck must use python's urllib (no curl in the slim image)")
        if host != "0.0.0.0":
            problems.append(f"{name}: {host_var} must be 0.0.0.0 inside the container")
        targets = {
            str(p.get("target")) if isinstance(p, dict) else str(p).split(":")[-1] for p in svc.get("ports") or []
        }
        if svc.get("ports") and port not in targets:
            problems.append(f"{name}: publishes {sorted(targets)} but listens on {port}")
    kafka_test = " ".join(map(str, (services.get("kafka", {}).get("healthcheck") or {}).get("test") or []))
    if "kafka-broker-api-versions.sh" not in kafka_test and "kafka-topics.sh" not in kafka_test:
        problems.append("kafka: healthcheck must ask the broker (kafka-broker-api-versions.sh / kafka-topics.sh)")
    pg_test = " ".join(map(str, (services.get("postgres", {}).get("healthcheck") or {}).get("test") or []))
    if "pg_isready" not in pg_test:
        problems.append("postgres: healthcheck must use pg_isready")
    return problems


# --- tests: schema -----------------------------------------------------------------------------------
def test_the_vendored_schema_is_the_compose_specification() -> None:
    spec = schema()
    Draft202012Validator.check_schema(spec)
    assert spec["title"] == "Compose Specification"
    assert {"services", "volumes", "networks"} <= set(spec["properties"])


@pytest.mark.parametrize("path", [BASE_FILE, PROD_FILE], ids=["docker-compose.yml", "compose.prod.yml"])
def test_compose_files_conform_to_the_compose_spec(path: Path) -> None:
    document = load_yaml(path)
    assert schema_errors(document) == []
    env = prod_env() if path == PROD_FILE else {}
    assert schema_errors(interpolated(document, env)) == [], "after interpolation"


@pytest.mark.parametrize("stack", STACKS, ids=list(STACKS))
def test_the_merged_stack_conforms_to_the_compose_spec(stack: str) -> None:
    assert schema_errors(STACKS[stack]()) == []


def test_the_validator_reports_a_broken_file() -> None:
    broken = copy.deepcopy(resolved_base())
    broken["services"]["kafka"]["helthcheck"] = broken["services"]["kafka"].pop("healthcheck")
    broken["services"]["customers-api"]["ports"] = "127.0.0.1:8001:8001"
    broken["services"]["customers-relay"]["depends_on"]["customers-migrate"]["condition"] = "service_done"
    errors = schema_errors(broken)
    assert any(e.startswith("services/kafka") and "helthcheck" in e for e in errors), errors
    assert any(e.startswith("services/customers-api/ports") for e in errors), errors
    assert any("services/customers-relay/depends_on" in e for e in errors), errors


def test_the_semantic_checks_report_a_broken_stack() -> None:
    broken = copy.deepcopy(resolved_base())
    services = broken["services"]
    del services["orders-migrate"]
    services["feedback-relay"]["depends_on"] = {"feedback-migrate": {"condition": "service_started"}}
    services["segmentation-api"]["ports"] = ["8004:8004"]
    services["customers-api"]["healthcheck"]["test"] = ["CMD", "true"]
    services["customers-relay"]["command"] = ["customers", "consume"]
    del services["orders-consume"]["healthcheck"]
    services["feedback-sweep"]["environment"] = {
        **services["feedback-sweep"]["environment"],
        "FEEDBACK_METRICS_PORT": "0",
    }
    assert any("orders-migrate: missing" in p for p in layout_problems(broken))
    assert any("customers-relay" in p for p in layout_problems(broken))
    problems = dependency_problems(broken)
    assert any("unknown service 'orders-migrate'" in p for p in problems), problems
    assert any(p.startswith("feedback-relay: must depend on feedback-migrate") for p in problems), problems
    assert port_problems(broken) == ["segmentation-api: port '8004:8004' is published beyond the loopback interface"]
    health = healthcheck_problems(broken)
    assert any(p.startswith("customers-api: healthcheck must probe") for p in health), health
    assert any(p.startswith("orders-consume: healthcheck must probe http://127.0.0.1:9100/") for p in health), health
    assert any(p.startswith("feedback-sweep: FEEDBACK_METRICS_PORT must be set") for p in health), health


# --- tests: layout, order, ports, health -------------------------------------------------------------
def test_the_project_services_are_known() -> None:
    services = project_services()
    assert {"customers", "orders", "feedback", "segmentation"} <= set(services)
    assert "consume" in services["segmentation"]


@pytest.mark.parametrize("stack", STACKS, ids=list(STACKS))
def test_every_service_runs_each_role_in_its_own_container(stack: str) -> None:
    assert layout_problems(STACKS[stack]()) == []


@pytest.mark.parametrize("stack", STACKS, ids=list(STACKS))
def test_dependencies_exist_and_roles_wait_for_their_migrate(stack: str) -> None:
    assert dependency_problems(STACKS[stack]()) == []


@pytest.mark.parametrize("stack", STACKS, ids=list(STACKS))
def test_published_ports_bind_loopback_only(stack: str) -> None:
    assert port_problems(STACKS[stack]()) == []


def test_each_api_is_published_on_its_own_port() -> None:
    services = resolved_base()["services"]
    for service in project_services():
        env = services[f"{service}-api"]["environment"]
        port = env[f"{service.upper()}_HTTP_PORT"]
        assert services[f"{service}-api"]["ports"] == [f"127.0.0.1:{port}:{port}"]
    ports = [services[f"{s}-api"]["environment"][f"{s.upper()}_HTTP_PORT"] for s in project_services()]
    assert len(set(ports)) == len(ports)


@pytest.mark.parametrize("stack", STACKS, ids=list(STACKS))
def test_healthchecks_probe_readiness(stack: str) -> None:
    assert healthcheck_problems(STACKS[stack]()) == []


@pytest.mark.parametrize("stack", STACKS, ids=list(STACKS))
def test_worker_listeners_are_reached_on_the_compose_network_only(stack: str) -> None:
    """Relay, consume and sweep containers publish no host port: consume replicas could not share one."""
    roles = {"relay", "consume", "sweep"}
    workers = {name: svc for name, svc in app_containers(STACKS[stack]()).items() if svc["command"][1] in roles}
    assert {svc["command"][1] for svc in workers.values()} == roles
    assert {name: svc["ports"] for name, svc in workers.items() if svc.get("ports")} == {}


@pytest.mark.parametrize("stack", STACKS, ids=list(STACKS))
def test_app_containers_stop_gracefully_and_read_the_env_file(stack: str) -> None:
    for name, svc in app_containers(STACKS[stack]()).items():
        assert duration_s(svc["stop_grace_period"]) >= MIN_GRACE_S, name
        assert svc.get("init") is True, f"{name}: init: true forwards SIGTERM"
        env_files = svc.get("env_file") or []
        assert {"path": ".env", "required": False} in env_files, f"{name}: env_file .env (optional)"
        expected_restart = "no" if name.endswith("-migrate") else "unless-stopped"
        assert svc.get("restart") == expected_restart, name


def test_every_container_of_a_service_uses_that_service_database_only() -> None:
    services = resolved_base()["services"]
    for name, svc in app_containers(resolved_base()).items():
        service = svc["command"][0]
        urls = {k for k in svc["environment"] if k.endswith("_DATABASE_URL")}
        assert urls == {f"{service.upper()}_DATABASE_URL"}, name
        assert svc["environment"][f"{service.upper()}_DATABASE_URL"].endswith(f"@postgres:5432/tierstream_{service}")
    assert services["postgres"]["environment"]["POSTGRES_USER"] == "tierstream"


def test_kafka_single_node_settings() -> None:
    env = {k: str(v) for k, v in resolved_base()["services"]["kafka"]["environment"].items()}
    assert resolved_base()["services"]["kafka"]["image"] == "apache/kafka:4.1.1"
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "INTERNAL://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_LOG_RETENTION_MS"] == "-1"
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
        "KAFKA_DEFAULT_REPLICATION_FACTOR",
    ):
        assert env[key] == "1", key
    app_env = resolved_base()["services"]["customers-api"]["environment"]
    assert app_env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


# --- tests: variables --------------------------------------------------------------------------------
def test_every_variable_the_compose_files_use_is_in_env_example() -> None:
    used = referenced_variables(base_compose()) | referenced_variables(prod_compose())
    assert used, "the compose files interpolate no variables? the parser is broken"
    missing = sorted(used - set(env_example()))
    assert missing == [], f"add to .env.example: {missing}"


def test_env_example_documents_the_service_settings() -> None:
    documented = set(env_example())
    settings = {
        "KAFKA_BOOTSTRAP_SERVERS",
        "TIERSTREAM_ENV",
        "TIERSTREAM_TOPIC_PARTITIONS",
        "TIERSTREAM_TOPIC_NAMESPACE",
    }
    settings |= {"LOG_LEVEL", "LOG_FORMAT"}
    for service in project_services():
        prefix = service.upper()
        settings |= {f"{prefix}_DATABASE_URL", f"{prefix}_HTTP_HOST", f"{prefix}_HTTP_PORT"}
        settings |= {f"{prefix}_METRICS_HOST", f"{prefix}_METRICS_PORT"}
    assert sorted(settings - documented) == []


def test_env_example_values_are_the_compose_defaults() -> None:
    """Copying .env.example to .env changes nothing: the files' defaults are the example's values."""
    assert resolved_base() == interpolated(base_compose(), active_env_example())


def test_interpolation_follows_compose_rules() -> None:
    env = {"SET": "v", "EMPTY": ""}
    assert interpolate("${SET:-d}|${EMPTY:-d}|${EMPTY-d}|${UNSET-d}|$$SET|$SET", env) == "v|d||d|$SET|v"
    assert interpolate("${UNSET:-a${SET}b}", env) == "avb"
    with pytest.raises(LookupError):
        interpolate("${EMPTY:?needed}", env)
    assert referenced_variables({"a": "$${NOT_A_VAR} ${X:-${Y}}"}) == {"X", "Y"}


# --- tests: production override ----------------------------------------------------------------------
def test_prod_override_needs_a_real_database_password() -> None:
    with pytest.raises(LookupError, match="POSTGRES_PASSWORD"):
        interpolated(prod_compose(), {k: v for k, v in active_env_example().items() if k != "POSTGRES_PASSWORD"})


def test_prod_runs_three_kraft_brokers_with_replication_three() -> None:
    services = resolved_prod()["services"]
    brokers = {name: svc for name, svc in services.items() if str(svc.get("image", "")).startswith("apache/kafka")}
    nodes = {
        name: {k: str(v) for k, v in svc["environment"].items()}
        for name, svc in brokers.items()
        if "KAFKA_NODE_ID" in svc["environment"]
    }
    assert len(nodes) == 3
    assert sorted(env["KAFKA_NODE_ID"] for env in nodes.values()) == ["1", "2", "3"]
    voters = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in nodes.values()}
    assert len(voters) == 1 and len(voters.pop().split(",")) == 3
    assert len({env["CLUSTER_ID"] for env in nodes.values()}) == 1
    for name, env in nodes.items():
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller", name
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3", name
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2", name
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3", name
        assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "3", name
        assert env["KAFKA_LOG_RETENTION_MS"] == "-1", name
        assert f"INTERNAL://{name}:9092" in env["KAFKA_ADVERTISED_LISTENERS"], name
        assert brokers[name].get("healthcheck"), name
    volumes = {v for svc in nodes for v in map(str, brokers[svc].get("volumes") or [])}
    assert len(volumes) == 3, "each broker needs its own data volume"


def test_prod_topics_are_created_replicated_before_any_migrate() -> None:
    services = resolved_prod()["services"]
    script = " ".join(services["kafka-topics"]["command"])
    assert "--replication-factor 3" in script
    for topic in ("crm.customers.v1", "crm.orders.v1", "crm.feedback.v1", "crm.segmentation.v1", "crm.deadletter.v1"):
        assert topic in script
    assert services["kafka-topics"]["environment"]["PARTITIONS"] == "12"
    for name, (_service, role) in required_containers().items():
        if role == "migrate":
            depends = services[name]["depends_on"]
            assert depends["kafka-topics"]["condition"] == "service_completed_successfully", name
            assert all(depends[b]["condition"] == "service_healthy" for b in ("kafka", "kafka-2", "kafka-3")), name


def test_prod_settings_and_replicas() -> None:
    stack = resolved_prod()
    partitions = 12
    for name, svc in app_containers(stack).items():
        env = svc["environment"]
        assert env["TIERSTREAM_ENV"] == "production", name
        assert env["TIERSTREAM_TOPIC_PARTITIONS"] == str(partitions), name
        assert env["TIERSTREAM_TOPIC_NAMESPACE"] == "", name
        assert len(env["KAFKA_BOOTSTRAP_SERVERS"].split(",")) == 3, name
        replicas = (svc.get("deploy") or {}).get("replicas", 1)
        role = svc["command"][1]
        if role == "relay":
            assert replicas == 1, f"{name}: relays are single-active (advisory lock)"
        elif role == "api":
            assert replicas >= 2, name
            assert not svc.get("ports"), f"{name}: N replicas cannot share one host port"
        elif role == "consume":
            assert 2 <= replicas <= partitions, name


# --- tests: Dockerfile -------------------------------------------------------------------------------
def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_dockerfile_runs_python_m_as_a_non_root_user() -> None:
    assert DOCKERFILE.is_file()
    instructions = dockerfile_instructions()
    entrypoints = [arg for op, arg in instructions if op == "ENTRYPOINT"]
    assert entrypoints and json.loads(entrypoints[-1]) == ["python", "-m"]
    assert ("STOPSIGNAL", "SIGTERM") in instructions
    users = [arg for op, arg in instructions if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    froms = [arg for op, arg in instructions if op == "FROM"]
    assert len(froms) >= 2, "multi-stage build"
    args = dict(arg.split("=", 1) for op, arg in instructions if op == "ARG" and "=" in arg)
    assert args.get("PYTHON_IMAGE") == "python:3.11-slim"


def test_dockerfile_installs_the_locked_environment_with_a_pinned_uv() -> None:
    runs = " ".join(arg for op, arg in dockerfile_instructions() if op == "RUN")
    pin = re.search(r"pip install uv==(\S+)", runs)
    assert pin, "uv must be pinned"
    build_requires = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]["requires"]
    uv_build = next(r for r in build_requires if r.startswith("uv_build"))
    assert Version(pin.group(1)) in SpecifierSet(uv_build.removeprefix("uv_build")), (pin.group(1), uv_build)
    assert "uv sync --frozen --no-dev" in runs
    assert "--no-editable" not in runs, "services find their migrations next to their sources"


def test_dockerfile_copies_every_workspace_member() -> None:
    copies = [arg for op, arg in dockerfile_instructions() if op == "COPY"]
    workspace = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["uv"]["workspace"]
    members = sorted(
        {p.parent.relative_to(REPO).as_posix() for m in workspace["members"] for p in REPO.glob(f"{m}/pyproject.toml")}
    )
    assert members
    for member in members:
        assert any(f"{member}/pyproject.toml" in c for c in copies), f"deps stage misses {member}/pyproject.toml"
    for needed in ("pyproject.toml", "uv.lock", "README.md", "shared/", "services/", "src/"):
        assert any(needed in c.split() for c in copies), needed


# --- the real thing, where available -----------------------------------------------------------------
def compose_command() -> list[str] | None:
    """A Docker Compose v2 (>= 2.24.4) CLI, if this machine has one (it needs no engine for ``config``)."""
    candidates = [["docker", "compose"], ["docker-compose"]]
    for command in candidates:
        if not shutil.which(command[0]):
            continue
        try:
            out = subprocess.run(
                [*command, "version", "--short"], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        m = re.match(r"v?(\d+\.\d+\.\d+)", out.stdout.strip())
        if out.returncode == 0 and m and Version(m.group(1)) >= Version("2.24.4"):
            return command
    return None


@pytest.mark.parametrize("files", [[BASE_FILE], [BASE_FILE, PROD_FILE]], ids=["base", "prod"])
def test_docker_compose_accepts_the_files(files: list[Path], tmp_path: Path) -> None:
    command = compose_command()
    if command is None:
        pytest.skip("no Docker Compose v2.24.4+ CLI on this machine")
    env_file = tmp_path / "env"
    env_file.write_text("\n".join(f"{k}={v}" for k, v in prod_env().items()) + "\n", encoding="utf-8")
    args = [*command, "--project-directory", str(REPO), "--env-file", str(env_file)]
    for f in files:
        args += ["-f", str(f)]
    out = subprocess.run([*args, "config", "--format", "json"], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    config = json.loads(out.stdout)
    assert set(required_containers()) <= set(config["services"])
