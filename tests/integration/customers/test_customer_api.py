"""The customer file over HTTP against a real PostgreSQL: commands, reads, versions, errors, the list."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from sqlalchemy import text

from shared.runtime import Container

pytestmark = pytest.mark.integration


def new_id() -> str:
    return f"cust-{uuid.uuid4().hex[:10]}"


async def register(api: httpx.AsyncClient, customer_id: str | None = None, **fields: object) -> dict:
    body = {"customer_id": customer_id or new_id(), "company_name": "Acme Trading", "region": "East", **fields}
    response = await api.post("/customers", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_the_customer_file_through_its_whole_life(api: httpx.AsyncClient) -> None:
    cid = (await register(api, industry="retail", size_band="medium"))["customer_id"]
    base = f"/customers/{cid}"

    r = await api.patch(f"{base}/profile", json={"region": "North", "industry": None, "need_profile": "quality"})
    assert r.status_code == 200, r.text
    assert (r.json()["region"], r.json()["industry"], r.json()["need_profile"]) == ("North", None, "quality")

    r = await api.post(
        f"{base}/contacts",
        json={"contact_id": "k1", "role": "decision_maker", "name": "Zhang Wei", "phone": "+86-10-5555-0101"},
    )
    assert r.status_code == 201, r.text
    [contact] = r.json()["contacts"]
    assert r.json()["personal_data"] == "withheld" and contact["name"] is None and contact["has_phone"]
    r = await api.post(f"{base}/contacts", json={"contact_id": "k2", "role": "user", "name": "Li Na"})
    assert r.status_code == 201

    assert (await api.post(f"{base}/stage", json={"stage": "lead"})).status_code == 200
    r = await api.post(f"{base}/stage", json={"stage": "prospect"})
    assert r.status_code == 409 and "only moves forward" in r.json()["detail"]

    terms = {"credit_limit": {"amount": "80000.00", "currency": "CNY"}, "payment_days": 45, "rating": "B"}
    r = await api.put(f"{base}/credit-terms", json=terms)
    assert r.status_code == 200 and r.json()["credit_terms"]["rating"] == "B"
    assert r.json()["credit_terms"]["credit_limit"] == {"amount": "80000.00", "currency": "CNY"}

    assert (await api.post(f"{base}/deactivation", json={"reason": "closed for audit"})).status_code == 200
    assert (await api.post(f"{base}/deactivation", json={"reason": "again"})).status_code == 409
    r = await api.post(f"{base}/reactivation", json={"reason": "audit passed"})
    assert r.status_code == 200 and r.json()["active"] is True
    assert (await api.post(f"{base}/reactivation", json={"reason": "again"})).status_code == 409

    r = await api.delete(f"{base}/contacts/k2", params={"reason": "left the company"})
    assert r.status_code == 200 and [c["contact_id"] for c in r.json()["contacts"]] == ["k1"]
    assert (await api.delete(f"{base}/contacts/k2")).status_code == 404

    r = await api.get(base)
    assert r.status_code == 200
    customer = r.json()
    assert customer["personal_data"] == "shown" and customer["stage"] == "lead" and customer["version"] == 9
    assert customer["contacts"] == [
        {
            "contact_id": "k1",
            "role": "decision_maker",
            "has_phone": True,
            "has_email": False,
            "erased": False,
            "name": "Zhang Wei",
            "phone": "+86-10-5555-0101",
            "email": None,
            "birthday": None,
        }
    ]
    assert r.headers["ETag"] == '"9"'

    events = (await api.get(f"{base}/events")).json()
    assert [e["event_type"] for e in events] == [
        "CustomerRegistered",
        "CustomerProfileUpdated",
        "CustomerContactAdded",
        "CustomerContactAdded",
        "CustomerStageAdvanced",
        "CustomerCreditTermsSet",
        "CustomerDeactivated",
        "CustomerReactivated",
        "CustomerContactRemoved",
    ]
    assert events[2]["data"]["personal_data"] == {"status": "encrypted", "algorithm": "AES-256-GCM"}
    assert "Zhang Wei" not in json.dumps(events) and "5555-0101" not in json.dumps(events)


async def test_commands_that_change_nothing_record_nothing(api: httpx.AsyncClient) -> None:
    cid = (await register(api))["customer_id"]
    r = await api.patch(f"/customers/{cid}/profile", json={"company_name": "Acme Trading"})
    assert r.status_code == 200 and r.json()["version"] == 1
    terms = {"credit_limit": {"amount": "0", "currency": "CNY"}, "payment_days": 0, "rating": "D"}
    assert (await api.put(f"/customers/{cid}/credit-terms", json=terms)).json()["version"] == 2
    assert (await api.put(f"/customers/{cid}/credit-terms", json=terms)).json()["version"] == 2


async def test_if_match_with_a_stale_version_is_a_conflict(api: httpx.AsyncClient) -> None:
    cid = (await register(api))["customer_id"]
    r = await api.post(f"/customers/{cid}/stage", json={"stage": "lead"}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.headers["ETag"] == '"2"'
    r = await api.post(f"/customers/{cid}/deactivation", json={"reason": "x"}, headers={"If-Match": '"1"'})
    assert r.status_code == 409 and r.json()["current_version"] == 2
    assert (await api.get(f"/customers/{cid}")).json()["active"] is True
    r = await api.post(f"/customers/{cid}/deactivation", json={"reason": "x"}, headers={"If-Match": "2"})
    assert r.status_code == 200


async def test_commands_on_unknown_customers_are_404(api: httpx.AsyncClient) -> None:
    base = "/customers/nobody"
    assert (await api.get(base)).status_code == 404
    assert (await api.get(f"{base}/events")).status_code == 404
    assert (await api.patch(f"{base}/profile", json={"region": "X"})).status_code == 404
    assert (await api.post(f"{base}/contacts", json={"role": "user", "name": "A"})).status_code == 404
    assert (await api.delete(f"{base}/contacts/k1")).status_code == 404
    assert (await api.post(f"{base}/stage", json={"stage": "lead"})).status_code == 404
    assert (await api.post(f"{base}/erasure", json={})).status_code == 404


async def test_invalid_commands_are_422_with_field_errors(api: httpx.AsyncClient) -> None:
    cid = (await register(api))["customer_id"]
    r = await api.post(
        f"/customers/{cid}/contacts", json={"role": "boss", "name": "", "phone": "call me", "email": "nope"}
    )
    assert r.status_code == 422
    assert {e["loc"][-1] for e in r.json()["detail"]} == {"role", "name", "phone", "email"}
    r = await api.patch(f"/customers/{cid}/profile", json={"company_name": None})
    assert r.status_code == 422 and "not cleared" in r.text
    r = await api.patch(f"/customers/{cid}/profile", json={"colour": "red"})
    assert r.status_code == 422
    r = await api.put(
        f"/customers/{cid}/credit-terms",
        json={"credit_limit": {"amount": 100.5}, "payment_days": 400, "rating": "E"},
    )
    assert r.status_code == 422
    assert {e["loc"][1] for e in r.json()["detail"]} == {"credit_limit", "payment_days", "rating"}
    r = await api.put(
        f"/customers/{cid}/credit-terms", json={"credit_limit": {"amount": "-1"}, "payment_days": 1, "rating": "A"}
    )
    assert r.status_code == 422
    r = await api.post(f"/customers/{cid}/stage", json={"stage": "vip"})
    assert r.status_code == 422
    r = await api.post(f"/customers/{cid}/deactivation", json={"reason": "x"}, headers={"If-Match": "latest"})
    assert r.status_code == 422


async def test_adding_a_contact_id_twice_is_a_conflict(api: httpx.AsyncClient) -> None:
    cid = (await register(api))["customer_id"]
    body = {"contact_id": "k1", "role": "user", "name": "A"}
    assert (await api.post(f"/customers/{cid}/contacts", json=body)).status_code == 201
    assert (await api.post(f"/customers/{cid}/contacts", json=body)).status_code == 409


async def test_the_customer_list_filters_and_pages_with_a_total(api: httpx.AsyncClient, customers: Container) -> None:
    region = f"R-{uuid.uuid4().hex[:6]}"
    ids = [(await register(api, region=region))["customer_id"] for _ in range(5)]
    await register(api, region="elsewhere")
    await api.post(f"/customers/{ids[1]}/stage", json={"stage": "customer"})
    await api.post(f"/customers/{ids[2]}/contacts", json={"role": "user", "name": "A"})
    await api.post(f"/customers/{ids[3]}/deactivation", json={"reason": "gone"})

    page = (await api.get("/customers", params={"region": region, "limit": 2, "offset": 0})).json()
    assert page["total"] == 5 and [c["customer_id"] for c in page["items"]] == ids[:2]
    page2 = (await api.get("/customers", params={"region": region, "limit": 2, "offset": 4})).json()
    assert page2["total"] == 5 and [c["customer_id"] for c in page2["items"]] == ids[4:]
    staged = (await api.get("/customers", params={"region": region, "stage": "customer"})).json()
    assert [c["customer_id"] for c in staged["items"]] == [ids[1]] and staged["items"][0]["version"] == 2
    inactive = (await api.get("/customers", params={"region": region, "active": False})).json()
    assert [c["customer_id"] for c in inactive["items"]] == [ids[3]]
    everyone = (await api.get("/customers", params={"limit": 500})).json()
    assert everyone["total"] == 6
    by_id = {c["customer_id"]: c for c in everyone["items"]}
    assert by_id[ids[2]]["contacts"] == 1
    assert (await api.get("/customers", params={"limit": 0})).status_code == 422
    assert (await api.get("/customers", params={"stage": "vip"})).status_code == 422

    async with customers.engine.connect() as conn:
        rows = await conn.scalar(text("SELECT count(*) FROM customer_directory"))
    assert rows == 6
