"""Value tiers (客户分级). Pure functions, no I/O.

The walking skeleton grades in *absolute* mode (DESIGN §4's alternative to percentile cut points):
net contribution ≥ ``vip`` → vip, ≥ ``key`` → key, ≥ ``normal`` → normal, else small; a customer with
no net orders is a prospect.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

TIERS = ("vip", "key", "normal", "small", "prospect")


@dataclass(frozen=True)
class AbsoluteTierPolicy:
    vip: Decimal = Decimal("50000")
    key: Decimal = Decimal("10000")
    normal: Decimal = Decimal("500")
    version: str = "absolute-v1"

    def cut_points(self) -> dict[str, str]:
        return {"vip": str(self.vip), "key": str(self.key), "normal": str(self.normal)}


def value_tier(net_contribution: Decimal, live_orders: int, policy: AbsoluteTierPolicy) -> str:
    if live_orders <= 0:
        return "prospect"
    if net_contribution >= policy.vip:
        return "vip"
    if net_contribution >= policy.key:
        return "key"
    if net_contribution >= policy.normal:
        return "normal"
    return "small"
