"""Customer aggregate: registration."""

from __future__ import annotations

import pytest

from customers.domain.customer import Customer, Profile
from shared.events import customers as contract
from shared.eventsourcing.aggregate import DomainError

pytestmark = pytest.mark.unit


def test_registering_records_the_profile_without_personal_data() -> None:
    customer = Customer.register("c-1", Profile(company_name="Acme Trading", region="East", industry="retail"))
    [event] = customer.pending_events
    assert isinstance(event, contract.CustomerRegistered)
    assert (event.customer_id, event.company_name, event.region, str(event.stage)) == (
        "c-1",
        "Acme Trading",
        "East",
        "prospect",
    )
    assert customer.profile is not None and customer.profile.industry == "retail"


def test_a_blank_company_name_is_refused() -> None:
    with pytest.raises(DomainError, match="company name"):
        Customer.register("c-1", Profile(company_name="   ", region="East"))


def test_replay_restores_the_registered_profile() -> None:
    events = Customer.register("c-1", Profile(company_name="Acme", region="East"), "lead").pending_events
    customer = Customer.replay("c-1", events)
    assert customer.stage == "lead" and customer.version == 1 and not customer.pending_events
