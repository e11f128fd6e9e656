"""Typed settings shared by every service role (pydantic-settings, validated at start).

Each service subclasses :class:`ServiceSettings` with its own ``env_prefix`` (``CUSTOMERS_`` …), so its
database URL and HTTP port are ``CUSTOMERS_DATABASE_URL`` / ``CUSTOMERS_HTTP_PORT``; settings that the
whole stack shares (Kafka, environment, topic namespace, API tokens) have one unprefixed name.

:class:`ApiSettings` is the part every HTTP API needs (environment, bearer tokens, idempotency) on its own, so
:func:`shared.api.create_app` can read it from the environment when a service does not pass its settings.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import (
    AliasChoices,
    AwareDatetime,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from shared.clock import CLOCK_SKEW, iso

DEV_DB_USER = "tierstream"
DEV_DB_PASSWORD = "tierstream"
DEV_PG_PORT = 55432
DEV_KAFKA_PORT = 9092

#: Documented development tokens (docs/api.md), used only when ``TIERSTREAM_API_TOKENS`` is unset outside
#: production; a production process refuses to start with any of them configured.
DEV_API_TOKENS: dict[str, list[str]] = {
    "dev-admin": ["*"],
    "dev-dashboard": ["*:read"],
}
#: ``*`` (everything), ``*:read`` / ``*:write`` (every service), ``orders:read``, ``orders:write`` …
SCOPE_PATTERN = re.compile(r"^(\*|(\*|[a-z][a-z0-9_-]*):(read|write))$")
#: Fault-injection points (tests only, see :mod:`shared.faults`); refused in production.
FAULT_INJECT_ENV = "TIERSTREAM_FAULT_INJECT"


def dev_database_url(service: str) -> str:
    return f"postgresql+asyncpg://{DEV_DB_USER}:{DEV_DB_PASSWORD}@127.0.0.1:{DEV_PG_PORT}/tierstream_{service}"


def field_alias(field: FieldInfo) -> str | None:
    """The environment variable a field with an alias is read from (its first alias), else None."""
    alias = field.validation_alias
    choices = [alias] if isinstance(alias, str) else alias.choices if isinstance(alias, AliasChoices) else []
    return next((c for c in choices if isinstance(c, str)), None)


def keywords_by_alias(settings_cls: type[BaseSettings], keywords: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of a settings class with every field that has an environment alias keyed by that
    alias, as pydantic reads them: ``kafka_bootstrap_servers=…`` → ``KAFKA_BOOTSTRAP_SERVERS=…``.

    A keyword that names no field (nor an alias) is a :class:`TypeError`, as is a field given by both its
    name and its alias: without this, both would be dropped without a word (``extra="ignore"``)."""
    aliases: dict[str, str] = {}
    accepted: set[str] = set()
    for name, field in settings_cls.model_fields.items():
        accepted.add(name)
        alias = field.validation_alias
        choices = [alias] if isinstance(alias, str) else alias.choices if isinstance(alias, AliasChoices) else []
        accepted.update(c for c in choices if isinstance(c, str))
        first = field_alias(field)
        if first is not None:
            aliases[name] = first
    unknown = sorted(k for k in keywords if k not in accepted)
    if unknown:
        raise TypeError(f"{settings_cls.__name__}() got unexpected keyword arguments {unknown}")
    by_alias = {aliases.get(k, k): v for k, v in keywords.items()}
    twice = sorted(k for k in keywords if k in aliases and aliases[k] in keywords)
    if twice:
        raise TypeError(f"{settings_cls.__name__}(): {twice} given both by field name and by alias")
    return by_alias


class ApiSettings(BaseSettings):
    """What every HTTP API needs: the environment, bearer tokens (token → scopes), idempotency retention.

    Outside production, an unset ``TIERSTREAM_API_TOKENS`` means the documented :data:`DEV_API_TOKENS`.
    In production the tokens must be set and must not contain a development token; fault injection is
    refused there too. Both are validation errors at start-up, naming the variable."""

    # No populate_by_name: pydantic-settings would then also read <PREFIX>_API_TOKENS, <PREFIX>_ENVIRONMENT…
    # from the environment. Keyword arguments may still name a field either way (ApiSettings(api_tokens=…)
    # or ApiSettings(TIERSTREAM_API_TOKENS=…)): settings_customise_sources maps field names to aliases for
    # them alone, and refuses a name that is no field (extra="ignore" otherwise drops it silently).
    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        if isinstance(init_settings, InitSettingsSource):  # what BaseSettings passes: keep its other options
            init_settings.init_kwargs = keywords_by_alias(settings_cls, init_settings.init_kwargs)
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    environment: Literal["development", "test", "production"] = Field(
        default="development", validation_alias=AliasChoices("TIERSTREAM_ENV")
    )
    api_tokens: dict[str, list[str]] | None = Field(
        default=None,
        validation_alias=AliasChoices("TIERSTREAM_API_TOKENS"),
        description='JSON object token → scopes, e.g. {"tok-erp": ["orders:write", "customers:read"]}',
    )
    fault_inject: str | None = Field(
        default=None,
        validation_alias=AliasChoices(FAULT_INJECT_ENV),
        description="a fault-injection point to trigger (tests only; refused in production)",
    )
    idempotency_retention_hours: float = Field(
        default=24,
        gt=0,
        validation_alias=AliasChoices("TIERSTREAM_IDEMPOTENCY_RETENTION_HOURS"),
        description="how long an Idempotency-Key and its stored response are kept",
    )

    @field_validator("api_tokens")
    @classmethod
    def _tokens_are_well_formed(cls, tokens: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        if tokens is None:
            return None
        for token, scopes in tokens.items():
            if len(token) < 8:
                raise ValueError("TIERSTREAM_API_TOKENS: every token needs at least 8 characters")
            if not token.isprintable() or any(c.isspace() for c in token):
                raise ValueError("TIERSTREAM_API_TOKENS: tokens must be printable, without spaces")
            bad = [s for s in scopes if not SCOPE_PATTERN.match(s)]
            if bad:
                raise ValueError(
                    f"TIERSTREAM_API_TOKENS: invalid scopes {bad} (use '<service>:read', '<service>:write', "
                    "'*:read', '*:write' or '*')"
                )
        return tokens

    @model_validator(mode="after")
    def _production_refuses_dev_tokens(self) -> ApiSettings:
        if self.environment == "production":
            if not self.api_tokens:
                raise ValueError("TIERSTREAM_API_TOKENS must be set in production (JSON object token → scopes)")
            dev = sorted(set(self.api_tokens) & set(DEV_API_TOKENS))
            if dev:
                raise ValueError(f"TIERSTREAM_API_TOKENS contains development tokens {dev}; refused in production")
            placeholders = sorted(t for t in self.api_tokens if "change-me" in t.lower())
            if placeholders:
                raise ValueError(
                    f"TIERSTREAM_API_TOKENS contains the placeholder tokens {placeholders} of .env.example; "
                    "set real secrets in production"
                )
            if self.fault_inject:
                raise ValueError(f"{FAULT_INJECT_ENV} is for tests only; refused in production")
        return self

    def effective_api_tokens(self) -> dict[str, list[str]]:
        """The configured tokens, or the development defaults when none are configured."""
        if self.api_tokens is not None:
            return self.api_tokens
        return DEV_API_TOKENS


class ServiceSettings(ApiSettings):
    """Settings of one service; subclasses set ``service_name``, ``env_prefix`` and defaults."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    service_name: ClassVar[str] = "service"

    database_url: str = Field(default="", description="SQLAlchemy URL of this service's own database")
    db_pool_size: int = Field(
        default=20,
        ge=1,
        le=200,
        description="connections kept open (as many again may open under bursts, closed when returned); "
        "a command holds one for its whole transaction",
    )
    kafka_bootstrap_servers: str = Field(
        default=f"127.0.0.1:{DEV_KAFKA_PORT}", validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS")
    )
    topic_namespace: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]*$",
        validation_alias=AliasChoices("TIERSTREAM_TOPIC_NAMESPACE"),
        description="prefix of every topic name; empty in production (the contract names)",
    )
    topic_partitions: int = Field(
        default=3, ge=1, le=1000, validation_alias=AliasChoices("TIERSTREAM_TOPIC_PARTITIONS")
    )
    topic_replication_factor: int = Field(
        default=1,
        ge=-1,
        le=10,
        validation_alias=AliasChoices("TIERSTREAM_TOPIC_REPLICATION_FACTOR"),
        description="replication of the contract topics (-1 = the broker's default.replication.factor)",
    )
    http_host: str = Field(default="127.0.0.1", description="bind address of the api role's HTTP listener")
    http_port: int = Field(default=8000, ge=1, le=65535, description="port of the api role's HTTP listener")
    metrics_host: str = Field(
        default="127.0.0.1",
        description="bind address of the worker roles' (relay, consume, sweep) HTTP listener: /metrics, /health/*",
    )
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="port of the worker roles' HTTP listener; 0 = none. The api and dev roles ignore it: they "
        "serve the same endpoints on the HTTP port",
    )
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("LOG_LEVEL"))
    log_format: Literal["json", "console"] = Field(default="json", validation_alias=AliasChoices("LOG_FORMAT"))
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_idle_interval_s: float = Field(default=0.05, gt=0, le=10)
    outbox_retention_hours: float = Field(default=72, gt=0)
    consumer_batch_size: int = Field(default=500, ge=1, le=10_000)
    consumer_session_timeout_ms: int = Field(
        default=10_000,
        ge=1_000,
        le=300_000,
        description="how long the group coordinator waits for a silent consumer (killed, partitioned) before "
        "handing its partitions to the others; heartbeats go every min(1 s, a third of it). Must lie within "
        "the brokers' group.min/max.session.timeout.ms (Kafka's defaults: 6 s – 30 min)",
    )

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable a field is read from: ``metrics_port`` → ``ORDERS_METRICS_PORT``,
        ``kafka_bootstrap_servers`` → ``KAFKA_BOOTSTRAP_SERVERS`` (fields with an alias)."""
        return field_alias(cls.model_fields[field]) or f"{cls.model_config.get('env_prefix', '')}{field}".upper()

    @model_validator(mode="after")
    def _defaults_and_production_guard(self) -> ServiceSettings:
        if not self.database_url:
            self.database_url = dev_database_url(self.service_name)
        if self.environment == "production" and f":{DEV_DB_PASSWORD}@" in self.database_url:
            raise ValueError(
                f"{self.model_config.get('env_prefix', '')}DATABASE_URL uses the development password; "
                "set real credentials in production"
            )
        return self


class SimulatedClockSettings(ServiceSettings):
    """Settings of a service whose time-driven work can run on a clock that starts in the past
    (``<SERVICE>_CLOCK_START``: demos of historical data, tests; see :func:`shared.clock.running_from`).
    Each service redeclares ``clock_start`` to say which of its clocks it moves; none is allowed in
    production, where time is the wall clock's.

    ``<SERVICE>_CLOCK_ANCHOR`` (optional) is the real instant at which that clock read its start: business
    time = start + (now − anchor), the same in every process given the same pair, so a restarted service
    continues on the timeline of the others. Without it the clock reads its start when the process starts
    (as before the anchor existed). An anchor needs a start, may not lie in the future, and is refused in
    production too; each is a validation error at start-up naming the variable."""

    clock_start: AwareDatetime | None = Field(default=None, description="start a simulated clock at this instant")
    clock_anchor: AwareDatetime | None = Field(
        default=None,
        description="the real instant at which the simulated clock read clock_start (shared by every service "
        "of a demo, so restarts do not rewind it); unset = when the process starts",
    )

    @field_validator("clock_anchor", mode="wrap")
    @classmethod
    def _anchor_named(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """Pydantic's error names the field; the operator set the variable."""
        try:
            return handler(value)
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"]
            raise ValueError(
                f"{cls.env_name('clock_anchor')} {value!r} is not an instant with its UTC offset "
                f"(e.g. 2026-11-24T07:53:32+00:00): {reason}"
            ) from None

    @model_validator(mode="after")
    def _no_simulated_clock_in_production(self) -> SimulatedClockSettings:
        for name in ("clock_start", "clock_anchor"):
            if self.environment == "production" and getattr(self, name) is not None:
                raise ValueError(f"{self.env_name(name)} is for demos and tests; refused in production")
        if self.clock_anchor is not None:
            if self.clock_start is None:
                raise ValueError(
                    f"{self.env_name('clock_anchor')} is set but {self.env_name('clock_start')} is not: an anchor "
                    "says when the simulated clock read its start, so it needs one"
                )
            if self.clock_anchor > datetime.now(UTC) + CLOCK_SKEW:
                raise ValueError(
                    f"{self.env_name('clock_anchor')} {iso(self.clock_anchor)} is in the future: it is the real "
                    f"instant at which the clock read {self.env_name('clock_start')}, so it has passed"
                )
        return self
