"""Settings of the orders service (env prefix ``ORDERS_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore")
    service_name: ClassVar[str] = "orders"
    http_port: int = 8002
    default_payment_days: int = 30
