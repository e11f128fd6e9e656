// Customer list: filters (tier, segment, status, risk band, region), sort and pages, all kept in the
// address (#/customers?tier=key&sort=risk&offset=50) so a view can be bookmarked and Back works.

import { api, query } from "./api.js";
import {
  BANDS,
  STATUSES,
  TIER_LABELS,
  TIER_ORDER,
  append,
  bandBadge,
  count,
  customerLink,
  h,
  humanize,
  money,
  orDash,
  selectField,
  table,
  tierBadge,
} from "./dom.js";
import { emptyState } from "./states.js";

export const PAGE_SIZE = 25;
const FILTERS = ["tier", "segment", "status", "risk_band", "region"];
const SORTS = [
  ["risk", "Churn risk (highest first)"],
  ["contribution", "Net contribution (highest first)"],
  ["recency", "Recency (most recent first)"],
  ["customer", "Customer id"],
];

export async function renderCustomers(view, ctx, route) {
  const params = Object.fromEntries(FILTERS.map((name) => [name, route.params.get(name) || ""]));
  const sort = route.params.get("sort") || "risk";
  const offset = Math.max(0, Number.parseInt(route.params.get("offset") || "0", 10) || 0);
  const [page, segments] = await Promise.all([
    api.customers({ ...params, sort, limit: PAGE_SIZE, offset }),
    api.segments(),
  ]);
  const labels = Object.fromEntries(segments.map((s) => [s.code, s.label]));
  append(
    view,
    h("h1", {}, "Customers"),
    filterForm(ctx, params, sort, segments),
    summary(page, params, labels),
    page.items.length === 0
      ? emptyState(
          page.total === 0 ? "No customers match these filters." : "No customers on this page.",
          page.total === 0 ? "Clear a filter to see more." : null,
        )
      : customerTable(page.items, labels),
    pager(ctx, page, { ...params, sort }),
  );
}

function filterForm(ctx, params, sort, segments) {
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter customers" },
    selectField(
      "f-tier",
      "Tier",
      "tier",
      [["", "Any tier"], ...TIER_ORDER.map((t) => [t, TIER_LABELS[t]])],
      params.tier,
    ),
    selectField(
      "f-segment",
      "RFM segment",
      "segment",
      [["", "Any segment"], ...segments.map((s) => [s.code, s.label])],
      params.segment,
    ),
    selectField(
      "f-status",
      "Activity status",
      "status",
      [["", "Any status"], ...STATUSES.map((s) => [s, humanize(s)])],
      params.status,
    ),
    selectField(
      "f-risk",
      "Churn risk band",
      "risk_band",
      [["", "Any band"], ...BANDS.map((b) => [b, humanize(b)])],
      params.risk_band,
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: "f-region" }, "Region"),
      h("input", {
        id: "f-region",
        name: "region",
        type: "text",
        value: params.region,
        placeholder: "exact name",
        autocomplete: "off",
      }),
    ),
    selectField("f-sort", "Sort by", "sort", SORTS, sort),
    h(
      "div",
      { class: "field field-buttons" },
      h("button", { type: "submit" }, "Apply"),
      h("a", { href: "#/customers", class: "button-quiet" }, "Clear"),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const next = Object.fromEntries([...FILTERS, "sort"].map((name) => [name, String(data.get(name) || "").trim()]));
    ctx.navigate(`#/customers${query(next)}`);
  });
  // Selecting a value applies it at once (the Apply button is there for the region text and for keyboards).
  for (const select of form.querySelectorAll("select")) {
    select.addEventListener("change", () => form.requestSubmit());
  }
  return form;
}

function summary(page, params, labels) {
  const active = FILTERS.filter((name) => params[name]).map((name) => {
    const value =
      name === "segment"
        ? labels[params[name]] || params[name]
        : name === "tier"
          ? TIER_LABELS[params[name]] || params[name]
          : humanize(params[name]);
    return `${humanize(name)}: ${value}`;
  });
  const first = page.total === 0 ? 0 : page.offset + 1;
  const last = page.offset + page.items.length;
  return h(
    "p",
    { class: "result-summary", role: "status" },
    h(
      "span",
      { class: "total", "data-total": String(page.total) },
      `${count(page.total)} ${page.total === 1 ? "customer" : "customers"}`,
    ),
    page.total > 0 ? ` · showing ${count(first)}–${count(last)}` : "",
    active.length ? ` · ${active.join(", ")}` : "",
  );
}

function customerTable(items, labels) {
  const rows = items.map((c) => [
    customerLink(c.customer_id),
    orDash(c.company_name),
    orDash(c.region),
    tierBadge(c.value_tier),
    money(c.net_contribution, c.currency),
    c.rfm_segment ? labels[c.rfm_segment] || humanize(c.rfm_segment) : "—",
    c.r_score ? `${c.r_score} · ${c.f_score} · ${c.m_score}` : "—",
    c.recency_days === null ? "—" : `${count(c.recency_days)} d`,
    humanize(c.activity_status),
    bandBadge(c.churn_band, c.churn_score),
    c.alert_id ? h("a", { href: "#/alerts", class: "badge badge-alert" }, "alert") : "",
  ]);
  return h(
    "div",
    { class: "table-scroll" },
    table(
      "Customers matching the filters",
      [
        "Customer",
        "Company",
        "Region",
        "Tier",
        "Net contribution",
        "Segment",
        "R · F · M",
        "Last order",
        "Status",
        "Churn risk",
        "Alert",
      ],
      rows,
      { captionHidden: true, className: "customers-table" },
    ),
  );
}

function pager(ctx, page, params) {
  const go = (offset) => () => ctx.navigate(`#/customers${query({ ...params, offset: offset || "" })}`);
  const pages = Math.max(1, Math.ceil(page.total / page.limit));
  const current = Math.floor(page.offset / page.limit) + 1;
  return h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    h(
      "button",
      { type: "button", disabled: page.offset === 0, onclick: go(Math.max(0, page.offset - page.limit)) },
      "‹ Previous",
    ),
    h("span", { "aria-live": "polite" }, `Page ${count(current)} of ${count(pages)}`),
    h(
      "button",
      { type: "button", disabled: page.offset + page.limit >= page.total, onclick: go(page.offset + page.limit) },
      "Next ›",
    ),
  );
}
