// Customer list: filters (tier, segment, status, risk band, region, R and F score), sort and pages, all
// kept in the address (#/customers?tier=key&sort=risk&offset=50) so a view can be bookmarked and Back works.

import { api, lastPageOffset, offsetParam, query } from "./api.js";
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
import { emptyState, errorState, isInvalid } from "./states.js";

export const PAGE_SIZE = 25;
const FILTERS = ["tier", "segment", "status", "risk_band", "region", "r_score", "f_score"];
const FILTER_LABELS = { r_score: "R score", f_score: "F score" };
const SCORES = ["1", "2", "3", "4", "5"];
const SORTS = [
  ["risk", "Churn risk (highest first)"],
  ["contribution", "Net contribution (highest first)"],
  ["recency", "Recency (most recent first)"],
  ["customer", "Customer id"],
];

export async function renderCustomers(view, ctx, route) {
  const params = Object.fromEntries(FILTERS.map((name) => [name, route.params.get(name) || ""]));
  const sort = route.params.get("sort") || "risk";
  const [page, segments, regions] = await Promise.all([
    customerPage({ ...params, sort }, offsetParam(route.params)).catch((error) => error),
    api.segments(),
    api.regions().catch(() => null), // suggestions only: the list works without them
  ]);
  const form = filterForm(ctx, params, sort, segments, regions);
  if (page instanceof Error) {
    if (!isInvalid(page)) throw page;
    // A filter the service refuses (e.g. a bookmarked ?tier=gold): keep the form, say which, offer a way out.
    const clear = h("a", { href: "#/customers", class: "button-quiet" }, "Clear filters");
    append(view, h("h1", {}, "Customers"), form, errorState(page, null, { heading: "h2", recover: clear }));
    return;
  }
  const labels = Object.fromEntries(segments.map((s) => [s.code, s.label]));
  append(
    view,
    h("h1", {}, "Customers"),
    form,
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

/** The page at `offset`, or the last page when `offset` lies beyond the list (the address follows). */
async function customerPage(params, offset) {
  const page = await api.customers({ ...params, limit: PAGE_SIZE, offset });
  const last = lastPageOffset(page.total, PAGE_SIZE);
  if (offset <= last) return page;
  window.history.replaceState(null, "", `#/customers${query({ ...params, offset: last || "" })}`);
  return api.customers({ ...params, limit: PAGE_SIZE, offset: last });
}

function filterForm(ctx, params, sort, segments, regions) {
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
        placeholder: "any case",
        autocomplete: "off",
        list: regions ? "f-region-list" : null,
      }),
      regions
        ? h(
            "datalist",
            { id: "f-region-list" },
            regions.regions.filter((r) => r.key !== null).map((r) => h("option", { value: r.key })),
          )
        : null,
    ),
    selectField("f-r", "R score", "r_score", [["", "Any R"], ...SCORES.map((n) => [n, `R${n}`])], params.r_score),
    selectField("f-f", "F score", "f_score", [["", "Any F"], ...SCORES.map((n) => [n, `F${n}`])], params.f_score),
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
  const shown = {
    segment: (code) => labels[code] || code,
    tier: (tier) => TIER_LABELS[tier] || tier,
    status: (status) => humanize(status),
    risk_band: (band) => humanize(band),
  };
  const active = FILTERS.filter((name) => params[name]).map((name) => {
    const value = shown[name] ? shown[name](params[name]) : params[name]; // region and scores as sent
    return `${humanize(name, FILTER_LABELS)}: ${value}`;
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
    c.recency_days === null ? "—" : count(c.recency_days),
    humanize(c.activity_status),
    bandBadge(c.churn_band, c.churn_score),
    c.alert_id ? alertBadge(c) : "",
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
        "Days since last order",
        "Status",
        "Churn risk",
        "Alert",
      ],
      rows,
      { captionHidden: true, className: "customers-table" },
    ),
  );
}

/** The customer's live alert (the API leaves out a closed one), linking to that alert. */
function alertBadge(c) {
  const state = humanize(c.alert_state || "open");
  return h(
    "a",
    {
      href: `#/alerts/${encodeURIComponent(c.alert_id)}`,
      class: `badge badge-alert badge-state-${c.alert_state || "open"}`,
      "aria-label": `${state} churn alert`,
    },
    state,
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
