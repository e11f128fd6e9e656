"""Customer aggregate, in given-events / when-command / then-events form."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pydantic import BaseModel

from customers.domain import commands as cmd
from customers.domain.customer import Customer, Profile
from customers.domain.events import CustomerContactAdded, PersonalData
from shared.events import customers as contract
from shared.events.envelope import Money
from shared.events.vocabulary import ContactRole, CreditRating, ProfileField, SalesStage
from shared.eventsourcing.aggregate import DomainError

pytestmark = pytest.mark.unit

CID = "c-1"
REGISTERED = contract.CustomerRegistered(customer_id=CID, company_name="Acme Trading", region="East", industry="retail")
ALICE = PersonalData(name="Alice Wang", phone="+86-138-0000-0001", email="alice@example.com", birthday=date(1990, 5, 1))


def contact_added(contact_id: str = "k1", role: ContactRole = ContactRole.PURCHASING) -> CustomerContactAdded:
    return CustomerContactAdded(contact_id=contact_id, role=role, has_phone=True, has_email=True, personal_data=ALICE)


def given(*events: BaseModel) -> Customer:
    return Customer.replay(CID, events)


def when(customer: Customer, command: cmd.CustomerCommand) -> list[BaseModel]:
    customer.execute(command)
    return customer.pending_events


# -- registration ---------------------------------------------------------------------------------
def test_registering_records_the_profile_without_personal_data() -> None:
    customer = Customer.register(CID, Profile(company_name="Acme Trading", region="East", industry="retail"))
    assert customer.pending_events == [REGISTERED]
    assert customer.profile is not None and customer.profile.industry == "retail"


def test_a_blank_company_name_is_refused() -> None:
    with pytest.raises(DomainError, match="company name"):
        Customer.register(CID, Profile(company_name="   ", region="East"))


def test_replay_restores_the_registered_profile() -> None:
    events = Customer.register(CID, Profile(company_name="Acme", region="East"), SalesStage.LEAD).pending_events
    customer = Customer.replay(CID, events)
    assert customer.stage == "lead" and customer.version == 1 and not customer.pending_events


# -- profile --------------------------------------------------------------------------------------
def test_updating_the_profile_records_only_the_fields_that_change() -> None:
    changes = {ProfileField.INDUSTRY: "retail", ProfileField.REGION: "North", ProfileField.COUNTRY: "CN"}
    assert when(given(REGISTERED), cmd.UpdateProfile(CID, changes)) == [
        contract.CustomerProfileUpdated(changed_fields=["country", "region"], region="North", country="CN")
    ]


def test_clearing_an_optional_profile_field_records_it_as_null() -> None:
    events = when(given(REGISTERED), cmd.UpdateProfile(CID, {ProfileField.INDUSTRY: None}))
    assert events == [contract.CustomerProfileUpdated(changed_fields=["industry"])]
    customer = given(REGISTERED, *events)
    assert customer.profile is not None and customer.profile.industry is None


def test_an_update_that_changes_nothing_records_nothing() -> None:
    assert when(given(REGISTERED), cmd.UpdateProfile(CID, {ProfileField.COMPANY_NAME: "Acme Trading"})) == []


def test_company_name_and_region_cannot_be_cleared() -> None:
    with pytest.raises(DomainError, match="company_name, region cannot be cleared"):
        when(given(REGISTERED), cmd.UpdateProfile(CID, {ProfileField.REGION: None, ProfileField.COMPANY_NAME: " "}))


# -- contacts -------------------------------------------------------------------------------------
def test_adding_a_contact_records_its_personal_data_in_the_private_event() -> None:
    command = cmd.AddContact(
        CID, "k1", ContactRole.PURCHASING, "Alice Wang", "+86-138-0000-0001", "alice@example.com", date(1990, 5, 1)
    )
    assert when(given(REGISTERED), command) == [contact_added()]


def test_a_contact_without_phone_or_email_says_so() -> None:
    [event] = when(given(REGISTERED), cmd.AddContact(CID, "k2", ContactRole.USER, "Bo"))
    assert isinstance(event, CustomerContactAdded) and (event.has_phone, event.has_email) == (False, False)


def test_a_contact_id_is_never_reused_even_after_removal() -> None:
    removed = contract.CustomerContactRemoved(contact_id="k1")
    with pytest.raises(DomainError, match="already exists"):
        when(given(REGISTERED, contact_added(), removed), cmd.AddContact(CID, "k1", ContactRole.USER, "Bo"))


def test_removing_a_contact_records_it_and_drops_it_from_the_file() -> None:
    customer = given(REGISTERED, contact_added())
    assert when(customer, cmd.RemoveContact(CID, "k1", "left the company")) == [
        contract.CustomerContactRemoved(contact_id="k1", reason="left the company")
    ]
    assert customer.contacts == {}


def test_removing_an_unknown_contact_is_refused() -> None:
    with pytest.raises(DomainError, match="no contact k9"):
        when(given(REGISTERED), cmd.RemoveContact(CID, "k9"))


# -- stage ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("start", "target"),
    [(SalesStage.PROSPECT, SalesStage.LEAD), (SalesStage.LEAD, SalesStage.CUSTOMER), ("prospect", "customer")],
)
def test_the_stage_moves_forward(start: SalesStage, target: SalesStage) -> None:
    registered = REGISTERED.model_copy(update={"stage": SalesStage(start)})
    assert when(given(registered), cmd.AdvanceStage(CID, SalesStage(target))) == [
        contract.CustomerStageAdvanced(previous_stage=start, new_stage=target)
    ]


@pytest.mark.parametrize("target", [SalesStage.PROSPECT, SalesStage.LEAD])
def test_the_stage_never_moves_back_or_stays(target: SalesStage) -> None:
    advanced = contract.CustomerStageAdvanced(previous_stage="prospect", new_stage="lead")
    with pytest.raises(DomainError, match="only moves forward"):
        when(given(REGISTERED, advanced), cmd.AdvanceStage(CID, target))


# -- credit terms ---------------------------------------------------------------------------------
def test_setting_credit_terms_records_them_and_the_same_terms_again_record_nothing() -> None:
    limit = Money(amount=Decimal("50000.00"), currency="CNY")
    command = cmd.SetCreditTerms(CID, limit, 45, CreditRating.B)
    events = when(given(REGISTERED), command)
    assert events == [contract.CustomerCreditTermsSet(credit_limit=limit, payment_days=45, rating="B")]
    same = cmd.SetCreditTerms(CID, Money(amount=Decimal("50000"), currency="CNY"), 45, CreditRating.B)
    assert when(given(REGISTERED, *events), same) == []


def test_a_negative_credit_limit_is_refused() -> None:
    with pytest.raises(DomainError, match="negative"):
        when(given(REGISTERED), cmd.SetCreditTerms(CID, Money(amount=Decimal("-1")), 30, CreditRating.A))


# -- activation -----------------------------------------------------------------------------------
def test_deactivating_then_reactivating() -> None:
    deactivated = contract.CustomerDeactivated(reason="closed down")
    assert when(given(REGISTERED), cmd.DeactivateCustomer(CID, "closed down")) == [deactivated]
    customer = given(REGISTERED, deactivated)
    assert not customer.active and customer.deactivation_reason == "closed down"
    assert when(customer, cmd.ReactivateCustomer(CID, "reopened")) == [contract.CustomerReactivated(reason="reopened")]
    assert customer.active and customer.deactivation_reason is None


def test_deactivating_twice_is_refused() -> None:
    with pytest.raises(DomainError, match="already deactivated"):
        when(given(REGISTERED, contract.CustomerDeactivated(reason="x")), cmd.DeactivateCustomer(CID, "y"))


def test_reactivating_an_active_customer_is_refused() -> None:
    with pytest.raises(DomainError, match="is active"):
        when(given(REGISTERED), cmd.ReactivateCustomer(CID, "y"))


# -- erasure --------------------------------------------------------------------------------------
def test_erasure_lists_every_contact_that_held_personal_data_including_removed_ones() -> None:
    customer = given(
        REGISTERED,
        contact_added("k1"),
        contact_added("k2", ContactRole.DECISION_MAKER),
        contract.CustomerContactRemoved(contact_id="k1"),
    )
    assert when(customer, cmd.ErasePersonalData(CID, "dpo", "PIPL request #7")) == [
        contract.CustomerPersonalDataErased(
            erased_contact_ids=["k1", "k2"], requested_by="dpo", reason="PIPL request #7"
        )
    ]
    [contact] = customer.contacts.values()
    assert contact.erased and contact.role == "decision_maker" and contact.personal_data is None
    assert not customer.holds_personal_data


def test_erasure_keeps_everything_but_personal_data() -> None:
    terms = contract.CustomerCreditTermsSet(credit_limit=Money(amount=Decimal("10")), payment_days=30, rating="A")
    stage = contract.CustomerStageAdvanced(previous_stage="prospect", new_stage="customer")
    erased = contract.CustomerPersonalDataErased(erased_contact_ids=["k1"])
    customer = given(REGISTERED, contact_added(), terms, stage, erased)
    assert customer.profile is not None and customer.profile.company_name == "Acme Trading"
    assert customer.stage == "customer" and customer.credit_terms is not None
    assert customer.credit_terms.rating == "A" and customer.contacts["k1"].role == "purchasing"


def test_a_contact_loaded_after_its_key_was_shredded_is_erased() -> None:
    shredded = contact_added().model_copy(update={"personal_data": None})
    customer = given(REGISTERED, shredded)
    assert customer.contacts["k1"].erased and not customer.holds_personal_data


def test_erasing_without_personal_data_is_refused() -> None:
    erased = contract.CustomerPersonalDataErased(erased_contact_ids=["k1"])
    with pytest.raises(DomainError, match="no personal data"):
        when(given(REGISTERED, contact_added(), erased), cmd.ErasePersonalData(CID))
    with pytest.raises(DomainError, match="no personal data"):
        when(given(REGISTERED), cmd.ErasePersonalData(CID))


def test_contacts_added_after_an_erasure_can_be_erased_again() -> None:
    erased = contract.CustomerPersonalDataErased(erased_contact_ids=["k1"])
    customer = given(REGISTERED, contact_added("k1"), erased, contact_added("k2"))
    assert customer.contacts["k1"].erased and customer.contacts["k2"].personal_data == ALICE
    assert when(customer, cmd.ErasePersonalData(CID)) == [
        contract.CustomerPersonalDataErased(erased_contact_ids=["k2"])
    ]
