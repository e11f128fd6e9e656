// Overview: tier pyramid, R×F segment grid, activity status and segment distributions.

import { api } from "./api.js";
import { TIER_LABELS, TIER_ORDER, append, count, h, humanize, money, pct, plural, scrolling, table } from "./dom.js";
import { emptyState } from "./states.js";

export async function renderOverview(view) {
  const [dist, grid, alerts] = await Promise.all([api.distributions(), api.rfmGrid(), api.alerts({ limit: 1 })]);
  const labels = Object.fromEntries(grid.segments.map((s) => [s.code, s.label]));
  append(
    view,
    h("h1", {}, "Overview"),
    kpis(dist, alerts.total),
    dist.customers === 0
      ? emptyState(
          "No customers yet.",
          "The segmentation service fills its tables from the customers, orders and feedback topics; load data (tierstream load) and reload.",
        )
      : [
          h("div", { class: "columns" }, pyramid(dist), statusDistribution(dist)),
          rfmGrid(grid, labels),
          segmentTable(dist, grid, labels),
        ],
  );
}

function kpis(dist, liveAlerts) {
  const tile = (label, value, extra) =>
    h(
      "div",
      { class: "kpi" },
      h("span", { class: "kpi-label" }, label),
      h("span", { class: "kpi-value" }, value),
      extra,
    );
  return h(
    "section",
    { class: "kpis", "aria-label": "Key figures" },
    tile("Customers", count(dist.customers)),
    tile("Net contribution, trailing 12 months", money(dist.revenue)),
    tile("Live churn alerts", h("a", { href: "#/alerts" }, count(liveAlerts))),
    tile(
      "Cut points",
      dist.calibration_id ? `calibration #${dist.calibration_id}` : "provisional (not calibrated yet)",
    ),
  );
}

function pyramid(dist) {
  const byTier = Object.fromEntries(dist.tiers.map((t) => [t.key, t]));
  const layers = TIER_ORDER.map((tier, index) => {
    const row = byTier[tier] || { customers: 0, customer_share_pct: "0", revenue_share_pct: "0" };
    return h(
      "li",
      { class: `layer layer-${index + 1} tier-${tier}`, "data-tier": tier },
      h(
        "a",
        {
          href: `#/customers?tier=${tier}`,
          "aria-label": `${TIER_LABELS[tier]}: ${plural(row.customers, "customer")}, ${pct(row.revenue_share_pct)} of revenue`,
        },
        h("span", { class: "layer-name" }, TIER_LABELS[tier]),
        h("span", { class: "layer-count", "data-count": String(row.customers) }, plural(row.customers, "customer")),
        h(
          "span",
          { class: "layer-shares" },
          `${pct(row.customer_share_pct)} of customers · ${pct(row.revenue_share_pct)} of revenue`,
        ),
      ),
    );
  });
  return h(
    "section",
    { class: "card", "aria-labelledby": "pyramid-title" },
    h("h2", { id: "pyramid-title" }, "Value tiers"),
    h("p", { class: "help" }, "By trailing-12-month net contribution; select a tier to list its customers."),
    h("ol", { class: "pyramid", "aria-label": "Tier pyramid, top tier first" }, layers),
  );
}

function shareBar(value, kind) {
  const bar = h("span", { class: `bar bar-${kind}` });
  bar.style.setProperty("--share", `${Math.max(0, Math.min(100, Number(value)))}%`);
  return h(
    "span",
    { class: "bar-cell" },
    h("span", { class: "bar-track", "aria-hidden": "true" }, bar),
    h("span", { class: "bar-label" }, pct(value)),
  );
}

function statusDistribution(dist) {
  const rows = dist.activity.map((row) => [
    row.key ? h("a", { href: `#/customers?status=${encodeURIComponent(row.key)}` }, humanize(row.key)) : "Not graded",
    count(row.customers),
    shareBar(row.customer_share_pct, "customers"),
    shareBar(row.revenue_share_pct, "revenue"),
  ]);
  return h(
    "section",
    { class: "card", "aria-labelledby": "status-title" },
    h("h2", { id: "status-title" }, "Activity status"),
    scrolling(
      table(
        "Customers and revenue share per activity status",
        ["Status", "Customers", "Customers %", "Revenue %"],
        rows,
        { captionHidden: true, className: "status-table" },
      ),
    ),
  );
}

function rfmGrid(grid, labels) {
  const max = Math.max(1, ...grid.cells.map((c) => c.customers));
  const cellAt = new Map(grid.cells.map((c) => [`${c.r_score}:${c.f_score}`, c]));
  const header = h(
    "tr",
    {},
    h("td", { class: "corner" }, "R \\ F"),
    [1, 2, 3, 4, 5].map((f) => h("th", { scope: "col" }, `F${f}`)),
  );
  const body = [5, 4, 3, 2, 1].map((r) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, `R${r}`),
      [1, 2, 3, 4, 5].map((f) => {
        const cell = cellAt.get(`${r}:${f}`);
        const heat = cell.customers / max;
        const label = labels[cell.segment] || humanize(cell.segment);
        const td = h(
          "td",
          {
            class: `grid-cell${heat > 0.55 ? " hot" : ""}`,
            "data-r": String(r),
            "data-f": String(f),
            "data-segment": cell.segment,
            title: `${label}: ${plural(cell.customers, "customer")}, ${pct(cell.revenue_share_pct)} of scored revenue`,
          },
          h(
            "a",
            { href: `#/customers?r_score=${r}&f_score=${f}` },
            h("span", { class: "grid-count" }, count(cell.customers)),
            h("span", { class: "grid-segment" }, label),
          ),
        );
        td.style.setProperty("--heat", heat.toFixed(3));
        return td;
      }),
    ),
  );
  return h(
    "section",
    { class: "card", "aria-labelledby": "grid-title" },
    h("h2", { id: "grid-title" }, "RFM segments (R × F)"),
    h(
      "p",
      { class: "help" },
      `Customers per cell of recency (R5 = most recent) × frequency (F5 = most orders); darker = more customers; `,
      `select a cell to list its customers. `,
      `${count(grid.scored)} of ${count(grid.customers)} customers have scores (rule table ${grid.grid_version}).`,
    ),
    h(
      "div",
      { class: "grid-scroll" },
      h(
        "table",
        { class: "rfm-grid" },
        h("caption", { class: "visually-hidden" }, "Customers per R×F cell, with the segment owning each cell"),
        h("thead", {}, header),
        h("tbody", {}, body),
      ),
    ),
  );
}

function segmentTable(dist, grid, labels) {
  const cells = Object.fromEntries(grid.segments.map((s) => [s.code, `R${s.r.join("–")} F${s.f.join("–")}`]));
  const rows = dist.segments.map((row) => [
    row.key
      ? h("a", { href: `#/customers?segment=${encodeURIComponent(row.key)}` }, labels[row.key] || humanize(row.key))
      : "No score yet",
    row.key ? cells[row.key] || "—" : "—",
    count(row.customers),
    pct(row.customer_share_pct),
    money(row.revenue),
    pct(row.revenue_share_pct),
  ]);
  return h(
    "section",
    { class: "card", "aria-labelledby": "segments-title" },
    h("h2", { id: "segments-title" }, "Customers and revenue per RFM segment"),
    scrolling(
      table(
        "Customers and revenue per RFM segment",
        ["Segment", "Cells", "Customers", "Customers %", "Revenue", "Revenue %"],
        rows,
        { captionHidden: true, className: "segment-table" },
      ),
    ),
  );
}
