"""The public event contract (DESIGN §3): what is registered, how it travels, what it refuses."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

import shared.events as contract
from shared.events import (
    REGISTRY,
    Envelope,
    EventPayload,
    EventRegistry,
    InvalidEvent,
    Money,
    customers,
    feedback,
    orders,
    parse_envelope,
    segmentation,
    topic_for,
)

pytestmark = pytest.mark.unit

#: The contract, literally: topic → event types. Adding a type here and in the code is additive;
#: removing or renaming one is a breaking change that this test exists to catch.
CONTRACT: dict[str, list[str]] = {
    "crm.customers.v1": [
        "CustomerRegistered",
        "CustomerProfileUpdated",
        "CustomerContactAdded",
        "CustomerContactRemoved",
        "CustomerStageAdvanced",
        "CustomerCreditTermsSet",
        "CustomerDeactivated",
        "CustomerReactivated",
        "CustomerPersonalDataErased",
    ],
    "crm.orders.v1": [
        "OrderPlaced",
        "OrderCreditHeld",
        "OrderCreditReleased",
        "PaymentReceived",
        "OrderCancelled",
        "OrderReturned",
        "PaymentOverdue",
    ],
    "crm.feedback.v1": [
        "ComplaintFiled",
        "ComplaintAcknowledged",
        "ComplaintResolved",
        "ComplaintConfirmed",
        "ComplaintReopened",
        "ComplaintEscalated",
        "SurveyAnswered",
    ],
    "crm.segmentation.v1": [
        "CustomerTierChanged",
        "CustomerRfmSegmentChanged",
        "CustomerActivityChanged",
        "ChurnRiskRaised",
        "ChurnRiskCleared",
    ],
}
ALL_TYPES = [t for types in CONTRACT.values() for t in types]

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def cny(amount: str) -> Money:
    return Money(amount=Decimal(amount))


# -- the test-local factory: one representative example per event type -------------------------

EXAMPLES: dict[str, Callable[[], EventPayload]] = {
    "CustomerRegistered": lambda: customers.CustomerRegistered(
        customer_id="c-1",
        company_name="Acme Trading Co.",
        industry="hardware wholesale",
        size_band="medium",
        region="East China",
        country="CN",
        channel="distributor",
        need_profile="price_sensitive",
        stage="lead",
        founded_on=date(2004, 5, 17),
    ),
    "CustomerProfileUpdated": lambda: customers.CustomerProfileUpdated(
        changed_fields=["region", "industry"], region="North China", industry=None
    ),
    "CustomerContactAdded": lambda: customers.CustomerContactAdded(
        contact_id="p-7",
        role="purchasing",
        personal_data_ref="pii://customers/c-1/contacts/p-7",
        has_phone=True,
        has_email=False,
    ),
    "CustomerContactRemoved": lambda: customers.CustomerContactRemoved(contact_id="p-7", reason="left the company"),
    "CustomerStageAdvanced": lambda: customers.CustomerStageAdvanced(previous_stage="lead", new_stage="customer"),
    "CustomerCreditTermsSet": lambda: customers.CustomerCreditTermsSet(
        credit_limit=cny("200000.00"), payment_days=45, rating="B"
    ),
    "CustomerDeactivated": lambda: customers.CustomerDeactivated(reason="company closed"),
    "CustomerReactivated": lambda: customers.CustomerReactivated(reason="reopened under new owner"),
    "CustomerPersonalDataErased": lambda: customers.CustomerPersonalDataErased(
        erased_contact_ids=["p-7", "p-8"], requested_by="dpo-office", reason="PIPL request #2026-114"
    ),
    "OrderPlaced": lambda: orders.OrderPlaced(
        order_id="o-1",
        customer_id="c-1",
        lines=[
            orders.OrderLine(sku="A1", description="lantern", quantity=6, unit_price=cny("3.39")),
            orders.OrderLine(sku="B2", description="cushion", category="home", quantity=2, unit_price=cny("10.00")),
        ],
        total=cny("40.34"),
        placed_at=T0,
        due_date=date(2026, 3, 31),
        payment_days=30,
        status="placed",
    ),
    "OrderCreditHeld": lambda: orders.OrderCreditHeld(
        order_id="o-1",
        reasons=["over_credit_limit", "receivables_overdue_60"],
        exposure=cny("250040.34"),
        credit_limit=cny("200000.00"),
    ),
    "OrderCreditReleased": lambda: orders.OrderCreditReleased(order_id="o-1", released_by="cfo", note="prepaid"),
    "PaymentReceived": lambda: orders.PaymentReceived(
        order_id="o-1", payment_id="pay-1", amount=cny("40.34"), outstanding=cny("0"), paid_in_full=True
    ),
    "OrderCancelled": lambda: orders.OrderCancelled(order_id="o-1", amount=cny("40.34"), reason="duplicate order"),
    "OrderReturned": lambda: orders.OrderReturned(
        order_id="o-1",
        return_id="r-1",
        amount=cny("20.34"),
        reason="damaged in transit",
        lines=[orders.ReturnedLine(sku="A1", quantity=6)],
    ),
    "PaymentOverdue": lambda: orders.PaymentOverdue(
        order_id="o-1", days_overdue=45, bucket="31-60", amount=cny("40.34"), due_date=date(2026, 3, 31)
    ),
    "ComplaintFiled": lambda: feedback.ComplaintFiled(
        complaint_id="k-1",
        customer_id="c-1",
        category="delivery",
        severity="high",
        order_id="o-1",
        summary="pallet arrived three days late",
        filed_at=T0,
        acknowledge_by=T0 + timedelta(hours=4),
        resolve_by=T0 + timedelta(days=3),
    ),
    "ComplaintAcknowledged": lambda: feedback.ComplaintAcknowledged(complaint_id="k-1", acknowledged_by="agent-7"),
    "ComplaintResolved": lambda: feedback.ComplaintResolved(complaint_id="k-1", resolution="freight refunded"),
    "ComplaintConfirmed": lambda: feedback.ComplaintConfirmed(complaint_id="k-1"),
    "ComplaintReopened": lambda: feedback.ComplaintReopened(complaint_id="k-1", reason="refund never arrived"),
    "ComplaintEscalated": lambda: feedback.ComplaintEscalated(
        complaint_id="k-1", breach="resolve", deadline=T0 + timedelta(days=3), overdue_by_hours=5
    ),
    "SurveyAnswered": lambda: feedback.SurveyAnswered(
        survey_id="s-1", customer_id="c-1", csat=2, nps=6, comment="slow delivery", order_id="o-1"
    ),
    "CustomerTierChanged": lambda: segmentation.CustomerTierChanged(
        previous_tier=None,
        new_tier="key",
        reason="net contribution 12000.00 after OrderPlaced",
        net_contribution=cny("12000.00"),
        cut_points={"vip": "50000", "key": "10000", "normal": "500"},
        policy_version="absolute-v1",
    ),
    "CustomerRfmSegmentChanged": lambda: segmentation.CustomerRfmSegmentChanged(
        previous_segment="potential_loyalists",
        new_segment="champions",
        recency_score=5,
        frequency_score=4,
        monetary_score=5,
        recency_days=3,
        order_count=14,
        net_amount=cny("88000.00"),
        rule_table_version="rfm-grid-v1",
    ),
    "CustomerActivityChanged": lambda: segmentation.CustomerActivityChanged(
        previous_status="active",
        new_status="dormant",
        days_since_last_order=121,
        reason="121 days since last order > max(3 × median gap 28, 30) = 84",
    ),
    "ChurnRiskRaised": lambda: segmentation.ChurnRiskRaised(
        alert_id="a-1",
        score=75,
        band="high",
        previous_score=40,
        reasons=[
            segmentation.ChurnReason(code="spend_down", points=30, evidence={"ratio": "0.42", "window_days": 90}),
            segmentation.ChurnReason(code="complaint_overdue", points=25, evidence={"complaint_id": "k-1"}),
            segmentation.ChurnReason(code="credit_hold", points=20, evidence={"order_id": "o-1", "held": True}),
        ],
    ),
    "ChurnRiskCleared": lambda: segmentation.ChurnRiskCleared(
        alert_id="a-1", score=20, band="low", previous_score=75, reason="score fell below 40"
    ),
}


def wrap(payload: EventPayload, producer: str | None = None) -> Envelope:
    return Envelope.wrap(
        payload,
        producer=producer or contract.producer_for(payload),
        aggregate_type="thing",
        aggregate_id="thing-1",
        aggregate_version=3,
        customer_id="c-1",
        correlation_id="corr-1",
        causation_id=str(uuid.UUID(int=7)),
        occurred_at=T0,
        event_id=uuid.UUID(int=1),
    )


def as_dict(envelope: Envelope) -> dict[str, Any]:
    return json.loads(envelope.to_json())


# -- what is registered ---------------------------------------------------------------------------


def test_every_contract_event_type_is_registered_exactly_once_at_version_1() -> None:
    registered = [(m.event_type, m.schema_version) for m in REGISTRY.models()]
    assert len(registered) == len(set(registered))
    assert sorted(registered) == sorted((t, 1) for t in ALL_TYPES)
    assert len(ALL_TYPES) == len(set(ALL_TYPES)) == 28


@pytest.mark.parametrize(("topic", "event_type"), [(t, e) for t, es in CONTRACT.items() for e in es])
def test_each_event_type_travels_on_its_producers_topic(topic: str, event_type: str) -> None:
    assert topic_for(event_type) == topic
    assert topic_for(REGISTRY.model_for(event_type, 1)) == topic
    assert contract.TOPIC_OF_PRODUCER[contract.producer_for(event_type)] == topic


def test_registering_a_second_model_under_a_taken_type_and_version_is_refused() -> None:
    registry = EventRegistry()
    registry.register(orders.OrderPlaced)
    registry.register(orders.OrderPlaced)  # the same class again is harmless

    class Impostor(EventPayload):
        event_type = "OrderPlaced"
        schema_version = 1

    with pytest.raises(ValueError, match="already registered"):
        registry.register(Impostor)


def test_the_factory_covers_the_whole_contract() -> None:
    assert sorted(EXAMPLES) == sorted(ALL_TYPES)
    for event_type, build in EXAMPLES.items():
        assert build().event_type == event_type


# -- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_an_envelope_survives_the_round_trip_through_json(event_type: str) -> None:
    original = wrap(EXAMPLES[event_type]())

    parsed = parse_envelope(original.to_json())

    assert parsed == original
    assert type(parsed.data) is type(original.data)
    assert parse_envelope(parsed.to_json()).to_json() == original.to_json()


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_no_number_with_a_fraction_ever_goes_on_the_wire(event_type: str) -> None:
    def refuse(text: str) -> float:
        raise AssertionError(f"{event_type} serialised a float: {text}")

    json.loads(wrap(EXAMPLES[event_type]()).to_json(), parse_float=refuse)


@given(
    lines=st.lists(
        st.tuples(
            st.decimals(min_value=0, max_value=Decimal("99999.99"), places=2, allow_nan=False),
            st.integers(min_value=1, max_value=10_000),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_any_order_whose_total_is_the_sum_of_its_lines_round_trips_exactly(lines: list[tuple[Decimal, int]]) -> None:
    order_lines = [
        orders.OrderLine(sku=f"S{i}", quantity=q, unit_price=Money(amount=price, currency="GBP"))
        for i, (price, q) in enumerate(lines)
    ]
    total = sum((price * q for price, q in lines), Decimal(0))
    payload = orders.OrderPlaced(
        order_id="o-1",
        customer_id="c-1",
        lines=order_lines,
        total=Money(amount=total, currency="GBP"),
        placed_at=T0,
        due_date=date(2026, 3, 31),
        payment_days=30,
    )
    parsed = parse_envelope(wrap(payload).to_json())
    assert isinstance(parsed.data, orders.OrderPlaced)
    assert parsed.data.total.amount == total
    with pytest.raises(ValidationError, match="does not equal the sum of the lines"):
        orders.OrderPlaced.model_validate(
            {**payload.model_dump(), "total": {"amount": total + Decimal("0.01"), "currency": "GBP"}}
        )


def test_instants_in_payloads_are_normalised_to_utc() -> None:
    shanghai = timezone(timedelta(hours=8))
    filed = feedback.ComplaintFiled.model_validate(
        {
            **EXAMPLES["ComplaintFiled"]().model_dump(),
            "filed_at": datetime(2026, 3, 1, 17, 30, tzinfo=shanghai),
        }
    )
    assert filed.filed_at == T0 and filed.filed_at.tzinfo == UTC
    assert '"filed_at":"2026-03-01T09:30:00Z"' in filed.model_dump_json()


# -- what the contract refuses --------------------------------------------------------------------


def test_money_refuses_floats() -> None:
    with pytest.raises(ValidationError, match="never a JSON number"):
        Money(amount=12.5)

    document = as_dict(wrap(EXAMPLES["OrderCancelled"]()))
    document["data"]["amount"]["amount"] = 40.34
    with pytest.raises(InvalidEvent) as caught:
        parse_envelope(json.dumps(document))
    assert caught.value.reason == "invalid_payload"
    assert "amount.amount" in caught.value.detail and "never a JSON number" in caught.value.detail


def test_an_order_total_that_does_not_match_its_lines_is_refused() -> None:
    document = as_dict(wrap(EXAMPLES["OrderPlaced"]()))
    document["data"]["total"]["amount"] = "40.35"
    with pytest.raises(InvalidEvent, match="does not equal the sum of the lines") as caught:
        parse_envelope(json.dumps(document))
    assert caught.value.reason == "invalid_payload"


def test_an_order_mixing_currencies_is_refused() -> None:
    example = EXAMPLES["OrderPlaced"]()
    with pytest.raises(ValidationError, match="one currency"):
        orders.OrderPlaced.model_validate({**example.model_dump(), "total": {"amount": "40.34", "currency": "EUR"}})


def _with(document: dict[str, Any], **changes: Any) -> bytes:
    return json.dumps({**document, **changes}).encode()


@pytest.mark.parametrize(
    ("make_raw", "reason", "names"),
    [
        (lambda d: b'{"event_type": "OrderPlaced", ', "malformed_json", None),
        (lambda d: b"[1, 2, 3]", "malformed_envelope", None),
        (lambda d: _with(d, event_type="OrderTeleported"), "unknown_event_type", "OrderTeleported v1"),
        (lambda d: _with(d, schema_version=99), "unknown_schema_version", "OrderPlaced v99"),
        (lambda d: _with(d, data={**d["data"], "lines": []}), "invalid_payload", "OrderPlaced v1"),
        (lambda d: _with(d, occurred_at="2026-03-01T09:30:00"), "malformed_envelope", "OrderPlaced v1"),
        (lambda d: {k: v for k, v in d.items() if k != "data"}, "malformed_envelope", "OrderPlaced v1"),
    ],
    ids=[
        "malformed-json",
        "not-an-object",
        "unknown-type",
        "unknown-version",
        "invalid-payload",
        "naive-time",
        "no-data",
    ],
)
def test_what_cannot_be_parsed_raises_invalid_event_naming_type_version_and_reason(
    make_raw: Callable[[dict[str, Any]], Any], reason: str, names: str | None
) -> None:
    raw = make_raw(as_dict(wrap(EXAMPLES["OrderPlaced"]())))
    with pytest.raises(InvalidEvent) as caught:
        parse_envelope(raw)
    assert caught.value.reason == reason
    if names is not None:
        assert str(caught.value).startswith(f"{names}: {reason}: ")


def test_field_errors_name_the_path_of_the_failing_field() -> None:
    document = as_dict(wrap(EXAMPLES["OrderPlaced"]()))
    document["data"]["lines"][1]["quantity"] = 0
    with pytest.raises(InvalidEvent) as caught:
        parse_envelope(json.dumps(document))
    assert "lines.1.quantity: Input should be greater than 0" in caught.value.detail


@pytest.mark.parametrize(
    ("event_type", "changes", "message"),
    [
        ("SurveyAnswered", {"csat": None, "nps": None}, "needs a csat or an nps"),
        ("SurveyAnswered", {"nps": 11}, "less than or equal to 10"),
        ("CustomerStageAdvanced", {"previous_stage": "customer", "new_stage": "lead"}, "can only advance"),
        ("CustomerProfileUpdated", {"changed_fields": ["industry"]}, "must be listed in changed_fields"),
        ("CustomerProfileUpdated", {"changed_fields": ["region"], "region": None}, "cannot be cleared"),
        ("CustomerContactAdded", {"personal_data_ref": "wang.li@example.com"}, "pattern"),
        ("CustomerCreditTermsSet", {"payment_days": 400}, "less than or equal to 365"),
        ("CustomerCreditTermsSet", {"credit_limit": {"amount": "-1"}}, "must not be negative"),
        ("PaymentReceived", {"paid_in_full": False}, "paid_in_full"),
        ("PaymentOverdue", {"bucket": "1-30"}, "fall in bucket 31-60"),
        ("OrderCreditHeld", {"reasons": ["over_credit_limit", "over_credit_limit"]}, "must not repeat"),
        ("OrderReturned", {"amount": {"amount": "0"}}, "must be positive"),
        ("ComplaintFiled", {"category": "rudeness"}, "product_quality"),
        ("ComplaintFiled", {"resolve_by": "2026-03-01T10:00:00Z"}, "acknowledge_by ≤ resolve_by"),
        ("ComplaintFiled", {"customer_id": "c 1"}, "pattern"),
        ("CustomerTierChanged", {"previous_tier": "key"}, "did not change"),
        ("CustomerTierChanged", {"cut_points": {"platinum": "1"}}, "vip"),
        ("CustomerRfmSegmentChanged", {"recency_score": 0}, "greater than or equal to 1"),
        ("ChurnRiskRaised", {"score": 101}, "less than or equal to 100"),
        ("ChurnRiskRaised", {"reasons": []}, "at least 1 item"),
    ],
)
def test_payload_rules_refuse_invalid_values_with_a_clear_message(
    event_type: str, changes: dict[str, Any], message: str
) -> None:
    data = {**EXAMPLES[event_type]().model_dump(mode="json"), **changes}
    with pytest.raises(ValidationError, match=message):
        REGISTRY.model_for(event_type, 1).model_validate(data)


def test_no_contract_field_is_named_like_personal_data() -> None:
    personal = {"name", "contact_name", "first_name", "last_name", "phone", "mobile", "email", "birthday", "address"}

    def field_names(schema: Any) -> set[str]:
        if isinstance(schema, dict):
            own = set(schema.get("properties", {})) if isinstance(schema.get("properties"), dict) else set()
            return own.union(*(field_names(v) for v in schema.values()))
        if isinstance(schema, list):
            return set().union(*(field_names(v) for v in schema))
        return set()

    for model in REGISTRY.models():
        assert not field_names(model.model_json_schema()) & personal, model.event_type


# -- evolution ------------------------------------------------------------------------------------


def test_unknown_extra_fields_are_ignored_so_producers_can_add_optional_ones() -> None:
    original = wrap(EXAMPLES["OrderPlaced"]())
    document = as_dict(original)
    document["tenant"] = "future-envelope-field"
    document["data"]["sales_rep_id"] = "future-payload-field"
    document["data"]["lines"][0]["discount"] = {"amount": "1.00", "currency": "CNY"}

    assert parse_envelope(json.dumps(document)) == original


class _ThingHappenedV1(EventPayload):
    event_type = "ThingHappened"
    schema_version = 1
    amount: str


class _ThingHappenedV2(EventPayload):
    """v2 split the v1 ``amount`` string ("12.50 GBP") into Money."""

    event_type = "ThingHappened"
    schema_version = 2
    amount: Money
    channel: str


def _thing_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    value, currency = data["amount"].split()
    return {**data, "amount": {"amount": value, "currency": currency}, "channel": "unknown"}


def test_an_upcaster_upgrades_v1_data_to_v2_on_a_throwaway_registry() -> None:
    registry = EventRegistry()
    registry.register(_ThingHappenedV1)
    registry.register(_ThingHappenedV2)
    registry.register_upcaster("ThingHappened", 1, _thing_v1_to_v2)
    raw = wrap(_ThingHappenedV1(amount="12.50 GBP"), producer="test").to_json()

    as_stored = registry.parse(raw)
    upcast = registry.parse(raw, upcast=True)

    assert isinstance(as_stored.data, _ThingHappenedV1) and as_stored.schema_version == 1
    assert isinstance(upcast.data, _ThingHappenedV2) and upcast.schema_version == 2
    assert upcast.data.amount == Money(amount=Decimal("12.50"), currency="GBP")
    assert upcast.data.channel == "unknown"
    assert registry.latest_version("ThingHappened") == 2
    with pytest.raises(InvalidEvent) as caught:
        REGISTRY.parse(raw)
    assert caught.value.reason == "unknown_event_type"


# -- the published schemas describe the wire format -----------------------------------------------


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_each_example_validates_against_its_published_asyncapi_message(event_type: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from shared.events.asyncapi import build_asyncapi
    from shared.events.schemas import build_catalogue

    document = build_asyncapi(build_catalogue())
    envelope = wrap(EXAMPLES[event_type]())
    message = f"#/components/messages/{event_type}.v1"
    payload_schema = {"$ref": f"{message}/payload", "components": document["components"]}
    headers_schema = {"$ref": f"{message}/headers", "components": document["components"]}

    jsonschema.Draft202012Validator(payload_schema).validate(as_dict(envelope))
    jsonschema.Draft202012Validator(headers_schema).validate({k: v.decode() for k, v in envelope.headers()})
    other = "OrderPlaced" if event_type != "OrderPlaced" else "OrderCancelled"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(payload_schema).validate(as_dict(wrap(EXAMPLES[other]())))
