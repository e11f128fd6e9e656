"""The Customer aggregate: the customer file (客户档案).

Company profile, contacts with roles, a forward-only sales stage, credit terms, activation, and the
erasure of personal data. Rules live in the command methods; ``_apply`` only folds facts. The aggregate
sees contacts' personal data in clear — it is the codec at the storage boundary that encrypts it — and
after erasure (or when loaded without the shredded key) a contact's ``personal_data`` is None.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel

from customers.domain import commands as cmd
from customers.domain.commands import Profile
from customers.domain.events import STORED_EVENTS, CustomerContactAdded, PersonalData
from shared.events import customers as contract
from shared.events.envelope import Money
from shared.events.vocabulary import ContactRole, CreditRating, ProfileField, SalesStage
from shared.eventsourcing.aggregate import Aggregate, DomainError

__all__ = ["Contact", "CreditTerms", "Customer", "Profile"]

#: Profile fields that can be changed but never cleared.
REQUIRED_PROFILE_FIELDS = frozenset({ProfileField.COMPANY_NAME, ProfileField.REGION})


@dataclass(frozen=True)
class Contact:
    contact_id: str
    role: ContactRole
    has_phone: bool
    has_email: bool
    personal_data: PersonalData | None

    @property
    def erased(self) -> bool:
        return self.personal_data is None


@dataclass(frozen=True)
class CreditTerms:
    credit_limit: Money
    payment_days: int
    rating: CreditRating


class Customer(Aggregate):
    aggregate_type = "customer"
    event_registry = STORED_EVENTS

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.profile: Profile | None = None
        self.stage = SalesStage.PROSPECT
        self.active = True
        self.deactivation_reason: str | None = None
        self.credit_terms: CreditTerms | None = None
        #: current contacts, in the order they were added
        self.contacts: dict[str, Contact] = {}
        #: every contact id ever used (ids are never reused, even after removal)
        self._contact_ids: set[str] = set()
        #: contacts, current or removed, whose personal data is still readable
        self._holding_personal_data: set[str] = set()

    @property
    def customer_id(self) -> str:
        return self.id

    @property
    def holds_personal_data(self) -> bool:
        return bool(self._holding_personal_data)

    # -- commands -------------------------------------------------------------------------------
    @classmethod
    def register(cls, customer_id: str, profile: Profile, stage: SalesStage = SalesStage.PROSPECT) -> Customer:
        if not profile.company_name.strip():
            raise DomainError("a customer needs a company name")
        if not profile.region.strip():
            raise DomainError("a customer needs a region")
        customer = cls(customer_id)
        customer._record(contract.CustomerRegistered(customer_id=customer_id, stage=stage, **vars(profile)))
        return customer

    def execute(self, command: cmd.CustomerCommand) -> None:
        """Carry out one command on this customer (records zero or more events)."""
        match command:
            case cmd.UpdateProfile():
                self.update_profile(command.changes)
            case cmd.AddContact():
                personal = PersonalData(
                    name=command.name, phone=command.phone, email=command.email, birthday=command.birthday
                )
                self.add_contact(command.contact_id, command.role, personal)
            case cmd.RemoveContact():
                self.remove_contact(command.contact_id, command.reason)
            case cmd.AdvanceStage():
                self.advance_stage(command.stage)
            case cmd.SetCreditTerms():
                self.set_credit_terms(CreditTerms(command.credit_limit, command.payment_days, command.rating))
            case cmd.DeactivateCustomer():
                self.deactivate(command.reason)
            case cmd.ReactivateCustomer():
                self.reactivate(command.reason)
            case cmd.ErasePersonalData():
                self.erase_personal_data(command.requested_by, command.reason)
            case _:
                raise TypeError(f"not a customer command: {command!r}")

    def update_profile(self, changes: dict[ProfileField, Any]) -> None:
        """Change the named profile fields; fields whose value is already the same are left out."""
        cleared = sorted(f.value for f in REQUIRED_PROFILE_FIELDS if f in changes and not _present(changes[f]))
        if cleared:
            raise DomainError(f"{', '.join(cleared)} cannot be cleared")
        current = vars(self._profile)
        changed = {f: v for f, v in changes.items() if v != current[f.value]}
        if not changed:
            return
        self._record(
            contract.CustomerProfileUpdated(changed_fields=sorted(changed), **{f.value: v for f, v in changed.items()})
        )

    def add_contact(self, contact_id: str, role: ContactRole, personal: PersonalData) -> None:
        if contact_id in self._contact_ids:
            raise DomainError(f"contact {contact_id} of customer {self.id} already exists (ids are never reused)")
        if not personal.name.strip():
            raise DomainError("a contact needs a name")
        self._record(
            CustomerContactAdded(
                contact_id=contact_id,
                role=role,
                has_phone=personal.phone is not None,
                has_email=personal.email is not None,
                personal_data=personal,
            )
        )

    def remove_contact(self, contact_id: str, reason: str | None = None) -> None:
        if contact_id not in self.contacts:
            raise DomainError(f"customer {self.id} has no contact {contact_id}")
        self._record(contract.CustomerContactRemoved(contact_id=contact_id, reason=reason))

    def advance_stage(self, stage: SalesStage) -> None:
        if stage.rank <= self.stage.rank:
            raise DomainError(f"the sales stage only moves forward: {self.stage} → {stage} refused")
        self._record(contract.CustomerStageAdvanced(previous_stage=self.stage, new_stage=stage))

    def set_credit_terms(self, terms: CreditTerms) -> None:
        if terms.credit_limit.amount < 0:
            raise DomainError("a credit limit cannot be negative")
        if not 0 <= terms.payment_days <= 365:
            raise DomainError("payment days must be between 0 and 365")
        if terms == self.credit_terms:
            return
        self._record(
            contract.CustomerCreditTermsSet(
                credit_limit=terms.credit_limit, payment_days=terms.payment_days, rating=terms.rating
            )
        )

    def deactivate(self, reason: str) -> None:
        if not self.active:
            raise DomainError(f"customer {self.id} is already deactivated")
        self._record(contract.CustomerDeactivated(reason=reason))

    def reactivate(self, reason: str) -> None:
        if self.active:
            raise DomainError(f"customer {self.id} is active; only a deactivated customer can be reactivated")
        self._record(contract.CustomerReactivated(reason=reason))

    def erase_personal_data(self, requested_by: str | None = None, reason: str | None = None) -> None:
        """Erase every contact's personal data (the codec deletes the customer's key with this event)."""
        if not self._holding_personal_data:
            raise DomainError(f"customer {self.id} holds no personal data to erase")
        self._record(
            contract.CustomerPersonalDataErased(
                erased_contact_ids=sorted(self._holding_personal_data), requested_by=requested_by, reason=reason
            )
        )

    # -- state ----------------------------------------------------------------------------------
    @property
    def _profile(self) -> Profile:
        if self.profile is None:
            raise DomainError(f"customer {self.id} is not registered")
        return self.profile

    def _apply(self, event: BaseModel) -> None:
        match event:
            case contract.CustomerRegistered():
                fields = event.model_dump(exclude={"customer_id", "stage"})
                self.profile = Profile(**fields)
                self.stage = event.stage
            case contract.CustomerProfileUpdated():
                self.profile = replace(
                    self._profile, **{f.value: getattr(event, f.value) for f in event.changed_fields}
                )
            case CustomerContactAdded():
                self._contact_ids.add(event.contact_id)
                if event.personal_data is not None:
                    self._holding_personal_data.add(event.contact_id)
                self.contacts[event.contact_id] = Contact(
                    event.contact_id, event.role, event.has_phone, event.has_email, event.personal_data
                )
            case contract.CustomerContactRemoved():
                self.contacts.pop(event.contact_id, None)
            case contract.CustomerStageAdvanced():
                self.stage = event.new_stage
            case contract.CustomerCreditTermsSet():
                self.credit_terms = CreditTerms(event.credit_limit, event.payment_days, event.rating)
            case contract.CustomerDeactivated():
                self.active, self.deactivation_reason = False, event.reason
            case contract.CustomerReactivated():
                self.active, self.deactivation_reason = True, None
            case contract.CustomerPersonalDataErased():
                erased = set(event.erased_contact_ids)
                self._holding_personal_data -= erased
                for contact_id in erased & self.contacts.keys():
                    self.contacts[contact_id] = replace(self.contacts[contact_id], personal_data=None)
            case _:
                pass


def _present(value: Any) -> bool:
    return value is not None and (not isinstance(value, str) or bool(value.strip()))
