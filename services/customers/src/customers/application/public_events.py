"""Private → public: what the customers service publishes for each event it stores.

Personal data never leaves the service: a contact is published as a reference
(``pii://customers/<customer_id>/contacts/<contact_id>``) with flags saying which fields are on file.
Every other stored event is a contract payload and is published as it is; anything that is not a
contract payload is withheld, so a private event added later cannot leak by default.
"""

from __future__ import annotations

from pydantic import BaseModel

from customers.domain.events import CustomerContactAdded
from shared.events import customers as contract
from shared.events.envelope import EventPayload
from shared.events.registry import REGISTRY, InvalidEvent
from shared.eventsourcing.aggregate import Aggregate


def personal_data_ref(customer_id: str, contact_id: str) -> str:
    return f"pii://customers/{customer_id}/contacts/{contact_id}"


def to_public(aggregate: Aggregate, event: BaseModel) -> EventPayload | None:
    if isinstance(event, CustomerContactAdded):
        return contract.CustomerContactAdded(
            contact_id=event.contact_id,
            role=event.role,
            personal_data_ref=personal_data_ref(aggregate.customer_id, event.contact_id),
            has_phone=event.has_phone,
            has_email=event.has_email,
        )
    if isinstance(event, EventPayload) and _is_contract_payload(event):
        return event
    return None


def _is_contract_payload(event: EventPayload) -> bool:
    try:
        return REGISTRY.model_for(event.event_type, event.schema_version) is type(event)
    except InvalidEvent:
        return False
