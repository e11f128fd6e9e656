"""Topic names of the public contract (DESIGN §3).

Every topic is keyed by ``customer_id``. A *namespace* prefixes every name so that tests (and
side-by-side environments) can run on one broker without seeing each other's events; production
uses the empty namespace, i.e. exactly the contract names.
"""

from __future__ import annotations

from dataclasses import dataclass

CUSTOMERS = "crm.customers.v1"
ORDERS = "crm.orders.v1"
FEEDBACK = "crm.feedback.v1"
SEGMENTATION = "crm.segmentation.v1"
DEADLETTER = "crm.deadletter.v1"

CONTRACT_TOPICS: tuple[str, ...] = (CUSTOMERS, ORDERS, FEEDBACK, SEGMENTATION, DEADLETTER)


@dataclass(frozen=True, slots=True)
class Topics:
    """The contract topics as seen from one namespace (``""`` = the real names)."""

    namespace: str = ""

    def name(self, contract_topic: str) -> str:
        if contract_topic not in CONTRACT_TOPICS:
            raise ValueError(f"{contract_topic!r} is not a contract topic")
        return f"{self.namespace}{contract_topic}"

    def contract_name(self, topic: str) -> str:
        """Map a namespaced topic back to its contract name."""
        if not topic.startswith(self.namespace):
            raise ValueError(f"topic {topic!r} is outside namespace {self.namespace!r}")
        name = topic[len(self.namespace) :]
        if name not in CONTRACT_TOPICS:
            raise ValueError(f"{topic!r} is not a contract topic")
        return name

    @property
    def customers(self) -> str:
        return self.name(CUSTOMERS)

    @property
    def orders(self) -> str:
        return self.name(ORDERS)

    @property
    def feedback(self) -> str:
        return self.name(FEEDBACK)

    @property
    def segmentation(self) -> str:
        return self.name(SEGMENTATION)

    @property
    def deadletter(self) -> str:
        return self.name(DEADLETTER)

    def all(self) -> tuple[str, ...]:
        return tuple(self.name(t) for t in CONTRACT_TOPICS)
