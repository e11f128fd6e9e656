"""The dashboard's views in Debian's headless Chromium, served by the in-process segmentation app on a fresh
database (no broker): what QA found wanting — the overview wider than the screen at 1,024 and 390 px, the
R×F cells linking to a whole segment, the alert badge linking to the alert list (and shown for a closed
alert), a refused filter replacing the whole view, a page beyond the last, the footer's link to a Swagger UI
that needs a CDN. The full stack's paths through the dashboard are tests/e2e/test_dashboard.py."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from engine_harness import T0, Segmentation
from playwright.async_api import async_playwright, expect
from sqlalchemy import text
from test_read_api_inputs import six_customers

from segmentation.entrypoints.api import build_api

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("TIERSTREAM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FOUND = Path(CHROMIUM).exists()
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


async def write(seg: Segmentation, sql: str, **params: object) -> None:
    async with seg.container.engine.begin() as conn:
        await conn.execute(text(sql), params)


async def graded(seg: Segmentation) -> None:
    """Six customers in a spread of statuses and R×F cells; c-1 with an open alert, c-2 with a closed one."""
    await six_customers(seg)
    for customer_id, status, r, f in (
        ("c-1", "reactivated", 5, 4),
        ("c-2", "at_risk", 5, 4),
        ("c-3", "dormant", 5, 5),
        ("c-4", "lost", 2, 1),
    ):
        await write(
            seg,
            "UPDATE customer_segments SET activity_status = :s, r_score = :r, f_score = :f, rfm_segment = 'loyal' "
            "WHERE customer_id = :c",
            s=status,
            r=r,
            f=f,
            c=customer_id,
        )
    for alert_id, customer_id, state in (("al-open", "c-1", "open"), ("al-closed", "c-2", "closed")):
        await write(
            seg,
            "INSERT INTO churn_alerts (alert_id, customer_id, state, raised_at, raised_score, reasons, last_score, "
            "last_seen_at, occurrences, rearmed) VALUES (:a, :c, :s, :t, 70, '[\"spend_down\"]', 70, :t, 1, false)",
            a=alert_id,
            c=customer_id,
            s=state,
            t=T0,
        )
        await write(seg, "UPDATE customer_segments SET alert_id = :a WHERE customer_id = :c", a=alert_id, c=customer_id)


@pytest.fixture
async def dashboard(segmentation: Segmentation) -> AsyncIterator[str]:
    """The app on a free local port; yields the dashboard's URL."""
    if not CHROMIUM_FOUND:
        pytest.fail(f"{CHROMIUM} is missing: run deploy/local/chromium.sh or set TIERSTREAM_CHROMIUM")
    await graded(segmentation)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(build_api(segmentation.container), port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    for _ in range(200):  # uvicorn flags started, with no event to await
        if server.started:
            break
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}/dashboard/"
    server.should_exit = True
    await serving


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with async_playwright() as p:
        instance = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        await instance.close()


async def open_tab(browser: Any, url: str, width: int, route: str) -> Any:
    tab = await (await browser.new_context(viewport={"width": width, "height": 900})).new_page()
    tab.set_default_timeout(15_000)
    await tab.goto(f"{url}#token=dev-dashboard")
    await expect(tab.locator("#session-label")).to_contain_text("token:")
    await tab.evaluate("route => { window.location.hash = route; }", route)
    return tab


async def page_width(tab: Any) -> tuple[int, int]:
    return await tab.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")


@pytest.mark.parametrize("width", [1400, 1024, 390])
async def test_the_overview_and_a_customer_fit_the_screen(dashboard: str, browser: Any, width: int) -> None:
    tab = await open_tab(browser, dashboard, width, "#/overview")
    await expect(tab.locator(".status-table tbody tr")).to_have_count(5)  # four statuses and "active"
    overview = await page_width(tab)
    await tab.evaluate("window.location.hash = '#/customers/c-1'")
    await expect(tab.locator("details.history").first).to_be_visible()
    customer = await page_width(tab)

    assert overview[0] <= overview[1], f"the overview scrolls sideways at {width} px: {overview}"
    assert customer[0] <= customer[1], f"the customer view scrolls sideways at {width} px: {customer}"


async def test_a_grid_cell_lists_its_own_customers(dashboard: str, browser: Any) -> None:
    tab = await open_tab(browser, dashboard, 1400, "#/overview")
    cell = tab.locator('.grid-cell[data-r="5"][data-f="4"] a')
    await expect(cell).to_have_attribute("href", "#/customers?r_score=5&f_score=4")

    await cell.click()

    await expect(tab.locator(".result-summary .total")).to_have_attribute("data-total", "2")
    await expect(tab.locator(".result-summary")).to_contain_text("R score: 5, F score: 4")


async def test_the_list_shows_a_live_alert_linking_to_it_and_labels_days(dashboard: str, browser: Any) -> None:
    tab = await open_tab(browser, dashboard, 1400, "#/customers?sort=customer&region=west")
    await expect(tab.locator(".result-summary")).to_contain_text("Region: west")  # as typed, matched in any case
    await tab.evaluate("window.location.hash = '#/customers?sort=customer'")
    rows = tab.locator(".customers-table tbody tr")
    await expect(rows).to_have_count(6)
    await expect(tab.locator(".customers-table thead")).to_contain_text("Days since last order")
    badge = rows.nth(0).locator("a.badge-alert")

    await expect(badge).to_have_attribute("href", "#/alerts/al-open")
    await expect(rows.nth(1).locator("a.badge-alert")).to_have_count(0)  # c-2: its alert is closed
    await badge.click()
    await expect(tab.get_by_role("heading", level=1)).to_have_text("Churn alert: Co c-1")
    await expect(tab.locator('article.alert-card[data-alert-id="al-open"]')).to_be_visible()


async def test_a_refused_filter_keeps_the_form_and_offers_to_clear_it(dashboard: str, browser: Any) -> None:
    tab = await open_tab(browser, dashboard, 1400, "#/customers?tier=gold")

    await expect(tab.locator(".error-box")).to_contain_text("tier:")
    await expect(tab.locator("form.filters")).to_be_visible()
    await tab.get_by_role("link", name="Clear filters").click()
    await expect(tab.locator(".result-summary .total")).to_have_attribute("data-total", "6")

    await tab.evaluate("window.location.hash = '#/alerts?state=bogus'")
    await expect(tab.locator(".error-box")).to_contain_text("state:")
    await expect(tab.get_by_label("State", exact=True)).to_be_visible()
    await expect(tab.get_by_role("link", name="Show live alerts")).to_be_visible()


async def test_a_page_beyond_the_last_shows_the_last(dashboard: str, browser: Any) -> None:
    tab = await open_tab(browser, dashboard, 1400, "#/customers?offset=99999")

    await expect(tab.locator(".result-summary")).to_contain_text("showing 1–6")
    await expect(tab.locator(".pager")).to_contain_text("Page 1 of 1")
    assert "offset" not in tab.url


async def test_the_closed_alerts_say_what_is_kept_there(
    dashboard: str, browser: Any, segmentation: Segmentation
) -> None:
    await write(segmentation, "DELETE FROM churn_alerts WHERE state = 'closed'")
    tab = await open_tab(browser, dashboard, 1400, "#/alerts?state=closed")

    await expect(tab.locator(".empty")).to_contain_text("No closed alerts.")
    await expect(tab.locator(".empty")).not_to_contain_text("An alert is raised")


async def test_the_footer_links_to_an_api_description_that_works_offline(dashboard: str, browser: Any) -> None:
    tab = await open_tab(browser, dashboard, 1400, "#/overview")
    link = tab.locator("footer a")
    href = await link.evaluate("a => a.href")

    async with httpx.AsyncClient() as http:
        document = await http.get(href)  # no token: the document is public, and self-contained

    assert href.endswith("/openapi.json"), href
    assert document.status_code == 200 and "/customers" in document.json()["paths"]
    assert "cdn" not in document.text.lower()
