"""Typed settings shared by every service role (pydantic-settings, validated at start).

Each service subclasses :class:`ServiceSettings` with its own ``env_prefix`` (``CUSTOMERS_`` …), so its
database URL and HTTP port are ``CUSTOMERS_DATABASE_URL`` / ``CUSTOMERS_HTTP_PORT``; settings that the
whole stack shares (Kafka, environment, topic namespace) have one unprefixed name.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_DB_USER = "tierstream"
DEV_DB_PASSWORD = "tierstream"
DEV_PG_PORT = 55432
DEV_KAFKA_PORT = 9092


def dev_database_url(service: str) -> str:
    return f"postgresql+asyncpg://{DEV_DB_USER}:{DEV_DB_PASSWORD}@127.0.0.1:{DEV_PG_PORT}/tierstream_{service}"


class ServiceSettings(BaseSettings):
    """Settings of one service; subclasses set ``service_name``, ``env_prefix`` and defaults."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    service_name: ClassVar[str] = "service"

    environment: Literal["development", "test", "production"] = Field(
        default="development", validation_alias=AliasChoices("TIERSTREAM_ENV")
    )
    database_url: str = Field(default="", description="SQLAlchemy URL of this service's own database")
    db_pool_size: int = Field(default=10, ge=1, le=200)
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
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("LOG_LEVEL"))
    log_format: Literal["json", "console"] = Field(default="json", validation_alias=AliasChoices("LOG_FORMAT"))
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_idle_interval_s: float = Field(default=0.05, gt=0, le=10)
    outbox_retention_hours: float = Field(default=72, gt=0)
    consumer_batch_size: int = Field(default=500, ge=1, le=10_000)

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
