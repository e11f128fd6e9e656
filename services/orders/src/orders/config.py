"""Settings of the orders service (env prefix ``ORDERS_``); credit numbers documented in docs/orders.md."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from pydantic import AwareDatetime, Field
from pydantic_settings import SettingsConfigDict

from orders.domain.credit import CreditPolicy
from shared.settings import SimulatedClockSettings


class OrdersSettings(SimulatedClockSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore")
    service_name: ClassVar[str] = "orders"
    http_port: int = 8002
    default_payment_days: int = Field(default=30, ge=0, le=365, description="for customers without credit terms")
    default_credit_limit: Decimal | None = Field(
        default=None,
        ge=0,
        description="limit for customers without credit terms; unset = such customers are not credit-controlled",
    )
    default_credit_currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    overdue_hold_days: int = Field(default=60, ge=0, description="hold orders of customers this many days overdue")
    overdue_sweep_interval_s: float = Field(default=60, gt=0, description="seconds between overdue sweeps")
    overdue_sweep_batch_size: int = Field(default=500, ge=1, le=10_000)
    clock_start: AwareDatetime | None = Field(
        default=None,
        description="run the service's business clock (orders placed without placed_at, the overdue sweep) from "
        "this instant onwards (demos of historical data such as the Online Retail set, 2010–2011); refused in "
        "production",
    )

    def credit_policy(self) -> CreditPolicy:
        return CreditPolicy(
            overdue_hold_days=self.overdue_hold_days,
            default_payment_days=self.default_payment_days,
            default_credit_limit=self.default_credit_limit,
            default_credit_currency=self.default_credit_currency,
        )
