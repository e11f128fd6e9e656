"""Free text on the bus refuses what looks like an e-mail address or a phone number, and nothing else.

A reason such as "Zhang left, call +86-138-0000-7732" used to be published as is and outlived the
contact's erasure. The heuristic is table-tested both ways: personal data it must flag, and ordinary
business text (invoice numbers, quantities, dates, money, times) it must leave alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.events import REGISTRY, customers, feedback, orders, segmentation
from shared.events.personal_data import WITHHELD, personal_data_in, withhold_personal_data

pytestmark = pytest.mark.unit

ADVICE = (
    "public events must not carry personal data — record contact details on a contact, "
    "where they are sealed and erasable"
)

PHONE_NUMBERS = [
    "+86-138-0000-7732",
    "+86 138 0000 7733",
    "+8613800007732",
    "+44 20 7946 0958",
    "+44 (0)20 7946 0958",
    "0044 20 7946 0958",
    "(020) 7946 0958",
    "(555) 123-4567",
    "020 7946 0958",
    "010-12345678",
    "01 23 45 67 89",
    "138 0000 7733",
    "138-0000-7733",
    "555-123-4567",
    "13800007733",
]

EMAIL_ADDRESSES = ["x@example.com", "qabus@example.com", "li.wei+crm@mail.example.co.uk", "王伟@例子.中国"]

BUSINESS_TEXT = [
    "invoice C536379 cancelled",
    "order 12345678 was a duplicate",
    "order #12345678",
    "orders 536365-536370 merged",
    "invoice 536365 qty 6, 2 cartons",
    "returned 3 of 12 boxes",
    "quantities 100 200 300",
    "12 24 36 48 60",
    "delivered 2011-12-09",
    "delivered 2011-12-09 12 boxes short",
    "from 2011-12-09 to 2011-12-10",
    "2011-12-09T08:26:00Z 12 cartons",
    "at 10:30, again at 14:05:59",
    "1,234.50 GBP",
    "GBP 12345678.50",
    "1 234 567,50 EUR",
    "12 345 678 901 CNY",
    "years 2010 2011 2012",
    "SKU 85123A x 6",
    "PIPL request #2026-114",
    "price@5.00",
    "damaged in transit",
    "121 days since last order > max(3 × median gap 28, 30) = 84",
    "OrderPlaced: net contribution 123456.7800 over 365 days grades vip against calibration #3 "
    "(vip ≥ 50000.0000, key ≥ 10000.0000, normal ≥ 1000.0000)",
    "recovered: score 12 fell below 40",
    "ref (2011) 12 09",
    "claim (2010) 4 cartons, 12 boxes",
]


@pytest.mark.parametrize("number", PHONE_NUMBERS)
def test_a_phone_number_anywhere_in_the_text_is_found(number: str) -> None:
    found = personal_data_in(f"customer asked us to call {number} tomorrow")

    assert found == f"looks like a phone number (at character 27); {ADVICE}"


@pytest.mark.parametrize("address", EMAIL_ADDRESSES)
def test_an_email_address_is_found(address: str) -> None:
    found = personal_data_in(f"forwarded by {address}")

    assert found == f"looks like an e-mail address (at character 14); {ADVICE}"


@pytest.mark.parametrize("text", BUSINESS_TEXT)
def test_ordinary_business_text_passes(text: str) -> None:
    assert personal_data_in(text) is None


@given(
    st.one_of(
        # up to 10 digits: 11 digits "1[3-9]…" are a Chinese mobile number, and refused (see the module)
        st.integers(min_value=0, max_value=10**10 - 1).map(lambda n: f"order {n}"),
        st.integers(min_value=0, max_value=999_999).map(lambda n: f"invoice C{n}"),
        st.integers(min_value=1, max_value=10**6).map(lambda n: f"{n} units"),
        st.decimals(min_value=-(10**9), max_value=10**9, places=2).map(lambda d: f"{d:,} GBP"),
        st.decimals(min_value=0, max_value=10**12, places=4).map(lambda d: f"net {d}"),
        st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1)).map(
            lambda t: f"due {t.date().isoformat()} at {t:%H:%M}"
        ),
        st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1)).map(
            lambda t: f"{t.replace(tzinfo=UTC).isoformat()} {t.day} {t.month}"
        ),
    )
)
def test_numbers_dates_times_and_money_are_never_taken_for_phone_numbers(text: str) -> None:
    assert personal_data_in(text) is None


@given(
    country=st.integers(min_value=1, max_value=998),
    groups=st.lists(st.integers(min_value=100, max_value=9999), min_size=2, max_size=3),
    separator=st.sampled_from([" ", "-"]),
    prefix=st.sampled_from(["+", "00"]),
)
def test_international_numbers_are_found_however_they_are_grouped(
    country: int, groups: list[int], separator: str, prefix: str
) -> None:
    number = prefix + separator.join([str(country), *map(str, groups)])
    digits = sum(c.isdigit() for c in number)

    assert (personal_data_in(f"call {number}") is not None) == (8 <= digits <= 15)


@given(st.emails())
def test_any_email_address_is_found(address: str) -> None:
    assert personal_data_in(f"please reply to {address} asap") is not None


# -- where the contract applies it ----------------------------------------------------------------

T0 = datetime(2026, 3, 1, tzinfo=UTC)
PERSONAL = "Zhang left, call +86-138-0000-7732 or x@example.com"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda text: customers.CustomerContactRemoved(contact_id="p-1", reason=text), "reason"),
        (lambda text: customers.CustomerDeactivated(reason=text), "reason"),
        (lambda text: customers.CustomerReactivated(reason=text), "reason"),
        (lambda text: customers.CustomerPersonalDataErased(erased_contact_ids=[], reason=text), "reason"),
        (lambda text: orders.OrderCreditReleased(order_id="o-1", released_by="cfo", note=text), "note"),
        (lambda text: orders.OrderCancelled(order_id="o-1", amount={"amount": "1"}, reason=text), "reason"),
        (
            lambda text: feedback.ComplaintFiled(
                complaint_id="k-1",
                customer_id="c-1",
                category="delivery",
                severity="low",
                summary=text,
                filed_at=T0,
                acknowledge_by=T0,
                resolve_by=T0 + timedelta(days=1),
            ),
            "summary",
        ),
        (lambda text: feedback.ComplaintResolved(complaint_id="k-1", resolution=text), "resolution"),
        (lambda text: feedback.ComplaintReopened(complaint_id="k-1", reason=text), "reason"),
        (lambda text: feedback.SurveyAnswered(survey_id="s-1", customer_id="c-1", csat=3, comment=text), "comment"),
        (
            lambda text: segmentation.CustomerActivityChanged(
                previous_status=None, new_status="active", days_since_last_order=1, reason=text
            ),
            "reason",
        ),
        (
            lambda text: segmentation.ChurnRiskCleared(alert_id="a-1", score=1, band="low", reason=text),
            "reason",
        ),
    ],
)
def test_free_text_fields_refuse_personal_data_naming_the_field(build: Callable[[str], object], field: str) -> None:
    build("left the company")  # ordinary text is fine

    with pytest.raises(ValidationError) as caught:
        build(PERSONAL)

    [error] = caught.value.errors()
    assert error["loc"] == (field,)
    assert error["msg"] == f"Value error, looks like an e-mail address (at character 39); {ADVICE}"


def test_every_free_text_field_of_the_contract_is_checked() -> None:
    """A new reason-like field without the check fails here: every plain string field of a payload (no
    pattern, format or vocabulary) is checked free text, or one of the named fields that are not."""
    not_free_text = {"company_name", "industry", "region", "country", "policy_version", "rule_table_version"}
    not_free_text |= {"requested_by", "released_by", "acknowledged_by"}  # operator ids (ActorId)
    unchecked = []
    for model in REGISTRY.models():
        for name, prop in model.model_json_schema()["properties"].items():
            options = prop.get("anyOf", [prop])
            if name in not_free_text or not any(_plain_string(o) for o in options):
                continue
            try:
                model.model_validate({name: PERSONAL})
            except ValidationError as exc:
                if any(e["loc"] == (name,) and "e-mail" in e["msg"] for e in exc.errors()):
                    continue
            unchecked.append(f"{model.event_type}.{name}")
    assert unchecked == []


def _plain_string(schema: dict[str, object]) -> bool:
    return schema.get("type") == "string" and not {"pattern", "format", "enum", "const"} & set(schema)


def test_order_amounts_built_from_decimals_still_pass_the_text_checks() -> None:
    cancelled = orders.OrderCancelled(order_id="o-1", amount={"amount": Decimal("12.50")}, reason="order 12345678")

    assert cancelled.reason == "order 12345678"


def test_withholding_copies_the_document_and_leaves_the_rest_alone() -> None:
    document = {"data": {"reason": "mail li.wei@example.com", "lines": [{"sku": "85123A", "qty": 6}]}, "v": 1}
    original = json.loads(json.dumps(document))

    kept, withheld = withhold_personal_data(document)

    assert withheld == ["/data/reason"]
    assert kept == {"data": {"reason": WITHHELD, "lines": [{"sku": "85123A", "qty": 6}]}, "v": 1}
    assert document == original  # the input is not changed


def test_withholding_names_keys_as_json_pointers_and_takes_a_bare_string() -> None:
    _, withheld = withhold_personal_data({"a~b": {"c/d": "020 7946 0958"}, "": ["+4420 7946 0958"]})

    assert withheld == ["/a~0b/c~1d", "//0"]
    assert withhold_personal_data("13800007733") == (WITHHELD, [""])


def test_withholding_walks_any_depth_without_recursion() -> None:
    document: object = "ring +86-138-0000-7732"
    for _ in range(5_000):  # deeper than Python's recursion limit
        document = [document]

    kept, withheld = withhold_personal_data(document)

    assert withheld == ["/0" * 5_000]
    for _ in range(5_000):
        assert isinstance(kept, list)
        kept = kept[0]
    assert kept == WITHHELD
