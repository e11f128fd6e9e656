"""Settings of the customers service (env prefix ``CUSTOMERS_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class CustomersSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CUSTOMERS_", extra="ignore")
    service_name: ClassVar[str] = "customers"
    http_port: int = 8001
