"""The web dashboard in a real headless Chromium, against a real segmentation process.

The segmentation service runs as its own process (``python -m segmentation dev``: migrate, API, relay,
consumer, sweep) on a fresh PostgreSQL database and a topic namespace of this module; the data reach it
the real way, as contract events produced to Kafka and projected by its consumer. Then a person's
paths through the dashboard are checked in the browser, and what it shows against what the API says.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_data import AT_RISK, CUSTOMERS, RISK_REASONS, T0, TOTAL_REVENUE, contract_events
from playwright.sync_api import expect, sync_playwright
from running_stack import free_port

from shared.events.topics import Topics
from shared.messaging.kafka import ensure_topics
from shared.testing.kafka import produce
from tierstream import stack

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("TIERSTREAM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ADMIN, READ_ONLY = "dev-admin", "dev-dashboard"
SCREENSHOT = stack.repo_root() / ".build" / "dashboard-overview.png"


class Api:
    """The segmentation API over HTTP, as the dashboard's page sees it."""

    def __init__(self, base: str) -> None:
        self.base = base

    def get(self, path: str, token: str = ADMIN, **params: Any) -> Any:
        response = httpx.get(f"{self.base}{path}", params=params, headers=_bearer(token), timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: dict[str, Any], token: str = ADMIN) -> httpx.Response:
        return httpx.post(f"{self.base}{path}", json=body, headers=_bearer(token), timeout=120)

    def wait_for(self, what: str, check: Callable[[], bool], timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"segmentation never got there: {what}")
            time.sleep(0.3)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _publish(bootstrap: str, topics: Topics) -> None:
    await ensure_topics(bootstrap, topics.all(), partitions=3)
    names = {"customers": topics.customers, "orders": topics.orders, "feedback": topics.feedback}
    for topic, envelopes in contract_events().items():
        await produce(bootstrap, names[topic], [(e.customer_id.encode(), e.to_json()) for e in envelopes])


def _until_exec(config: stack.StackConfig, timeout_s: float = 10) -> None:
    """Wait until the child has exec'd: before that its /proc cmdline is still this process's, which
    ``stack.service_pid`` (and so ``wait_ready``) reads as "exited during start-up"."""
    deadline = time.monotonic() + timeout_s
    while stack.service_pid(config, "segmentation") is None and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture(scope="module")
def segmentation(kafka_bootstrap: str, pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A segmentation process with the module's data projected and one calibration recorded."""
    tag = uuid.uuid4().hex[:8]
    config = stack.StackConfig(
        ports={"segmentation": free_port()},
        namespace=f"dash{tag}.",
        database_prefix=f"dash_{tag}_",
        state_dir=Path(tmp_path_factory.mktemp("dashboard")),
        # The engine's clock starts at T0 (and runs on in real time): the data are graded as of that day.
        extra_env={"SEGMENTATION_CLOCK_START": T0.isoformat()},
    )
    infra = stack.Infra(bootstrap_servers=kafka_bootstrap, pg_url=pg_server)
    try:
        stack.start_service(config, infra, "segmentation")
        _until_exec(config)
        stack.wait_ready(config, "segmentation")
        api = Api(config.url("segmentation"))
        asyncio.run(_publish(kafka_bootstrap, Topics(config.namespace)))
        api.wait_for(
            "every customer and order projected, both churn alerts raised",
            lambda: (
                (d := api.get("/distributions"))["customers"] == CUSTOMERS
                and Decimal(d["revenue"]) == TOTAL_REVENUE
                and api.get("/alerts")["total"] == len(AT_RISK)
            ),
        )
        calibration = api.post("/calibrations", {})
        assert calibration.status_code == 201, calibration.text
        yield api
    finally:
        stack.stop_service(config, "segmentation")
        log = config.log_dir / "segmentation.log"
        if log.exists():
            print("--- segmentation.log (tail)\n" + "\n".join(log.read_text().splitlines()[-20:]))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run deploy/local/chromium.sh (run-tests.sh does) or set TIERSTREAM_CHROMIUM"
        )
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser tab (its own sessionStorage), failing the test on any script error (answers the
    test provokes, such as a 401 or a 503, are logged by Chromium as failed loads: those are expected)."""
    context = browser.new_context(viewport={"width": 1360, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    yield tab
    context.close()
    assert errors == [], f"the page logged errors: {errors}"


def open_dashboard(page: Any, api: Api, token: str | None, route: str = "") -> None:
    page.goto(f"{api.base}/dashboard/" + (f"#token={token}" if token else ""))
    if token:
        expect(page.locator("#session-label")).to_contain_text("token:")
    if route:
        page.evaluate("route => { window.location.hash = route; }", route)


def test_the_overview_shows_the_tier_pyramid_segment_grid_and_status_counts_the_api_reports(
    segmentation: Api, page: Any
) -> None:
    open_dashboard(page, segmentation, READ_ONLY)
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    # the token left the address bar (and the history) once it was kept for the tab
    assert "token=" not in page.url and page.url.endswith("#/overview")

    # 22 customers with orders, calibrated at 5 % VIP, 25 % key or VIP, 5 % small (shares rounded up):
    # ⌈1.1⌉ = 2 VIP, ⌈5.5⌉ − 2 = 4 key, 2 small, the 14 others normal; the one who never ordered a prospect
    expected = {"vip": 2, "key": 4, "normal": 14, "small": 2, "prospect": 1}
    api_tiers = {t["key"]: t["customers"] for t in segmentation.get("/distributions")["tiers"]}
    assert api_tiers == expected
    layers = page.locator(".pyramid > li")
    expect(layers).to_have_count(5)
    shown = {
        layers.nth(i).get_attribute("data-tier"): int(layers.nth(i).locator(".layer-count").get_attribute("data-count"))
        for i in range(5)
    }
    assert shown == expected
    assert list(shown) == ["vip", "key", "normal", "small", "prospect"]  # the top of the pyramid first
    expect(page.locator('.pyramid li[data-tier="key"]')).to_contain_text("4 customers")

    grid = segmentation.get("/distributions/rfm-grid")
    cells = page.locator(".rfm-grid td.grid-cell")
    expect(cells).to_have_count(25)
    shown_cells = {
        (int(c.get_attribute("data-r")), int(c.get_attribute("data-f"))): int(
            c.locator(".grid-count").inner_text().replace(",", "")
        )
        for c in cells.all()
    }
    assert shown_cells == {(c["r_score"], c["f_score"]): c["customers"] for c in grid["cells"]}
    assert sum(shown_cells.values()) == grid["scored"] == CUSTOMERS - 1  # everyone with an order is scored

    status_rows = page.locator(".status-table tbody tr")
    activity = segmentation.get("/distributions")["activity"]
    expect(status_rows).to_have_count(len(activity))
    dormant = next(a for a in activity if a["key"] == "dormant")
    assert dormant["customers"] == len(AT_RISK)
    expect(page.locator(".status-table tbody tr", has_text="Dormant")).to_contain_text(str(len(AT_RISK)))

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000


def test_a_filter_narrows_the_customer_list_and_its_total(segmentation: Api, page: Any) -> None:
    open_dashboard(page, segmentation, READ_ONLY, "#/customers")
    total = page.locator(".result-summary .total")
    expect(total).to_have_attribute("data-total", str(CUSTOMERS))
    expect(page.locator(".customers-table tbody tr")).to_have_count(CUSTOMERS)  # one page of 25

    page.get_by_label("Tier").select_option("key")  # a select applies at once
    key_accounts = segmentation.get("/customers", tier="key")
    expect(total).to_have_attribute("data-total", str(key_accounts["total"]))
    assert key_accounts["total"] == 4
    assert "tier=key" in page.url

    page.get_by_label("Region").fill("West")
    page.get_by_role("button", name="Apply").click()
    west_keys = segmentation.get("/customers", tier="key", region="West")
    assert 0 < west_keys["total"] < key_accounts["total"]
    expect(total).to_have_attribute("data-total", str(west_keys["total"]))
    rows = page.locator(".customers-table tbody tr")
    expect(rows).to_have_count(west_keys["total"])
    shown = {rows.nth(i).locator("th").inner_text() for i in range(west_keys["total"])}
    assert shown == {c["customer_id"] for c in west_keys["items"]}

    page.get_by_label("Churn risk band").select_option("high")
    expect(total).to_have_attribute("data-total", "0")
    expect(page.get_by_text("No customers match these filters.")).to_be_visible()


def test_the_drill_down_shows_why_a_customer_is_at_risk_with_the_evidence(segmentation: Api, page: Any) -> None:
    open_dashboard(page, segmentation, READ_ONLY, "#/customers?sort=risk")
    first_row = page.locator(".customers-table tbody tr").first
    expect(first_row.locator("th")).to_have_text(AT_RISK[0])  # highest risk first, ties by id
    first_row.get_by_role("link", name=AT_RISK[0]).click()

    expect(page.get_by_role("heading", level=1)).to_have_text("R-01 Trading Co.")
    view = segmentation.get(f"/customers/{AT_RISK[0]}/view")
    assert {r["code"] for r in view["churn"]["reasons"]} == RISK_REASONS
    reasons = page.locator("table.reasons tbody tr")
    expect(reasons).to_have_count(len(RISK_REASONS))
    shown = {reasons.nth(i).locator("[data-reason]").get_attribute("data-reason") for i in range(len(RISK_REASONS))}
    assert shown == RISK_REASONS
    expect(page.locator("table.reasons")).to_contain_text("Complaint past its SLA")
    expect(page.locator("table.reasons tr", has_text="Detractor survey")).to_contain_text("3")  # NPS 3
    expect(page.locator(".churn-score .big")).to_have_text(str(view["churn"]["score"]))
    assert view["churn"]["score"] >= 60 and view["churn"]["band"] == "high"
    expect(page.locator(".head-badges")).to_contain_text("Dormant")
    expect(page.get_by_role("heading", name="Churn alert", level=2)).to_be_visible()
    # histories: the activity changes are listed with their reasons
    activity = page.locator('details.history[data-kind="activity"]')
    expect(activity.locator("summary")).to_contain_text(f"({len(view['history']['activity'])})")
    expect(activity.locator("tbody tr").first).to_contain_text("Dormant")


def test_a_read_only_token_sees_the_alert_actions_disabled_and_the_api_refuses_it(segmentation: Api, page: Any) -> None:
    alert_id = next(a["alert_id"] for a in segmentation.get("/alerts")["items"] if a["customer_id"] == AT_RISK[1])
    before = segmentation.get(f"/alerts/{alert_id}")["state"]

    open_dashboard(page, segmentation, READ_ONLY, "#/alerts")
    expect(page.locator("#session-label")).to_contain_text("read-only")
    card = page.locator(f'article.alert-card[data-alert-id="{alert_id}"]')
    expect(card).to_be_visible()
    expect(page.locator("#read-only-note")).to_contain_text("segmentation:write")
    for name in ("Acknowledge", "Snooze", "Close alert"):
        expect(card.get_by_role("button", name=name)).to_be_disabled()
    expect(card.get_by_label("Close with reason")).to_be_disabled()

    refused = segmentation.post(f"/alerts/{alert_id}/acknowledgement", {}, token=READ_ONLY)
    assert refused.status_code == 403 and refused.json()["missing_scope"] == "segmentation:write"
    assert segmentation.get(f"/alerts/{alert_id}")["state"] == before


def test_the_snooze_default_is_a_week_ahead_on_the_service_clock_not_the_browsers(segmentation: Api, page: Any) -> None:
    """The service grades on its own clock (here it started at T0, months before today): a default taken
    from the browser's clock would snooze the alert until long after anything on the service's clock."""
    service_now = datetime.fromisoformat(segmentation.get("/caller", token=READ_ONLY)["service_time"])
    assert T0 <= service_now < T0 + timedelta(hours=1)
    alert_id = next(a["alert_id"] for a in segmentation.get("/alerts")["items"] if a["customer_id"] == AT_RISK[0])

    open_dashboard(page, segmentation, READ_ONLY, "#/alerts")
    until = page.locator(f'article.alert-card[data-alert-id="{alert_id}"]').get_by_label("Snooze until")
    expect(until).to_have_value(re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d$"))
    # the input holds local wall time: the page itself turns it into an instant, as the form's submit does
    default = datetime.fromisoformat(until.evaluate("input => new Date(input.value).toISOString()"))
    assert abs(default - (service_now + timedelta(days=7))) < timedelta(minutes=10), (default, service_now)


def test_an_admin_acknowledges_one_alert_and_closes_another_with_a_reason(segmentation: Api, page: Any) -> None:
    alerts = {a["customer_id"]: a["alert_id"] for a in segmentation.get("/alerts")["items"]}
    page.goto(f"{segmentation.base}/dashboard/")
    page.get_by_label("API token").fill(ADMIN)  # the sign-in form, this time
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#session-label")).to_contain_text("may act on alerts")
    page.get_by_role("link", name="Churn alerts").click()

    first = page.locator(f'article.alert-card[data-alert-id="{alerts[AT_RISK[0]]}"]')
    expect(first.locator("[data-state]")).to_have_attribute("data-state", "open")
    first.get_by_role("button", name="Acknowledge").click()
    expect(first.locator("[data-state]")).to_have_attribute("data-state", "acknowledged")
    expect(first.get_by_role("button", name="Acknowledge")).to_be_disabled()  # not twice
    acknowledged = segmentation.get(f"/alerts/{alerts[AT_RISK[0]]}")
    assert acknowledged["state"] == "acknowledged" and acknowledged["handled_by"].startswith("token:")

    second = page.locator(f'article.alert-card[data-alert-id="{alerts[AT_RISK[1]]}"]')
    second.get_by_role("button", name="Close alert").click()  # no reason yet: refused in the page
    expect(second.locator(".form-error")).to_have_text("Closing an alert needs a reason.")
    second.get_by_label("Close with reason").fill("called the buyer <b>seasonal</b> pause")
    second.get_by_role("button", name="Close alert").click()
    expect(second.locator("[data-state]")).to_have_attribute("data-state", "closed")
    # the reason is shown as text, never as markup
    expect(second).to_contain_text("called the buyer <b>seasonal</b> pause")
    expect(second.locator("b")).to_have_count(0)
    closed = segmentation.get(f"/alerts/{alerts[AT_RISK[1]]}")
    assert (closed["state"], closed["close_reason"]) == ("closed", "called the buyer <b>seasonal</b> pause")
    assert [entry["action"] for entry in closed["log"]] == ["raised", "closed"]


def test_sign_in_refuses_an_unknown_token_and_the_pages_need_no_token_but_every_read_does(
    segmentation: Api, page: Any
) -> None:
    open_dashboard(page, segmentation, None)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".sign-in .form-error")).to_contain_text("not accepted (401)")
    assert page.evaluate("sessionStorage.length") == 0  # a refused token is not kept

    served = httpx.get(f"{segmentation.base}/dashboard/", timeout=5)
    assert served.status_code == 200 and "<title>" in served.text
    assert "script-src 'self'" in served.headers["content-security-policy"]
    assert httpx.get(f"{segmentation.base}/dashboard", timeout=5, follow_redirects=False).status_code == 307
    assert httpx.get(f"{segmentation.base}/distributions", timeout=5).status_code == 401
    read_only, admin = segmentation.get("/caller", token=READ_ONLY), segmentation.get("/caller", token=ADMIN)
    assert (read_only["scopes"], read_only["can_read"], read_only["can_write"]) == (["*:read"], True, False)
    assert admin["can_write"] and admin["caller"] != read_only["caller"] and admin["caller"].startswith("token:")


def test_an_unavailable_service_or_network_shows_what_went_wrong_and_try_again_recovers(
    segmentation: Api, page: Any
) -> None:
    # The real service stays up for the other tests; the browser is told the database is down (503) …
    page.route(
        "**/distributions",
        lambda route: route.fulfill(
            status=503,
            headers={"Retry-After": "5", "Content-Type": "application/json"},
            body='{"detail": "database unavailable"}',
        ),
    )
    open_dashboard(page, segmentation, READ_ONLY)
    error = page.get_by_role("alert")
    expect(error).to_contain_text("The segmentation service is unavailable (503)")
    expect(error).to_contain_text("retry in 5 s")
    page.unroute("**/distributions")
    page.get_by_role("button", name="Try again").click()
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    expect(page.locator(".pyramid > li")).to_have_count(5)

    # … and then that the network is gone.
    page.route("**/customers?*", lambda route: route.abort("connectionrefused"))
    page.get_by_role("navigation", name="Dashboard sections").get_by_role("link", name="Customers").click()
    expect(page.get_by_role("alert")).to_contain_text("Cannot reach the segmentation service")
