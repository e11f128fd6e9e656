// One customer's drill-down: tier, RFM, lifecycle, activity, churn score with reasons and evidence,
// the alert, and the tier / segment / activity / churn / lifecycle histories.

import { ApiError, api } from "./api.js";
import {
  REASON_LABELS,
  TIER_LABELS,
  TIER_ORDER,
  append,
  bandBadge,
  count,
  facts,
  h,
  humanize,
  money,
  orDash,
  plural,
  scrolling,
  table,
  tierBadge,
  when,
} from "./dom.js";
import { alertCard, readOnlyNote } from "./alerts.js";
import { emptyState } from "./states.js";

const HISTORY_TITLES = {
  tier: "Tier changes",
  rfm_segment: "RFM segment changes",
  activity: "Activity status changes",
  churn_score: "Churn-risk score changes",
  lifecycle: "Lifecycle stage changes",
};

export async function renderCustomer(view, ctx, route) {
  let c;
  try {
    c = await api.customerView(route.id);
  } catch (error) {
    if (error instanceof ApiError && error.kind === "missing") {
      append(
        view,
        h("h1", {}, `Customer ${route.id}`),
        emptyState(
          "Segmentation knows no customer with this id (yet).",
          "A new customer appears once its first event is projected.",
        ),
        h("p", {}, h("a", { href: "#/customers" }, "‹ Back to the customer list")),
      );
      return;
    }
    throw error;
  }
  const labels = await segmentLabels(c);
  append(
    view,
    h("p", { class: "breadcrumb" }, h("a", { href: "#/customers" }, "Customers"), " › ", c.customer_id),
    h(
      "header",
      { class: "customer-head" },
      h("h1", {}, c.company_name || c.customer_id),
      h(
        "p",
        { class: "muted" },
        `${c.customer_id} · ${orDash(c.region)} · ${humanize(c.lifecycle_stage)}`,
        c.deactivated ? " · deactivated" : "",
        c.registered ? "" : " · not registered (known from orders or feedback only)",
      ),
      h(
        "div",
        { class: "head-badges" },
        tierBadge(c.tier.value_tier),
        bandBadge(c.churn.band, c.churn.score),
        c.activity.status ? h("span", { class: "badge" }, humanize(c.activity.status)) : null,
      ),
    ),
    h("div", { class: "cards" }, tierCard(c), rfmCard(c, labels), activityCard(c)),
    churnSection(c),
    alertSection(c, ctx),
    historySection(c, labels),
    h("p", { class: "muted" }, `Assessed ${when(c.assessed_at)}`),
  );
}

async function segmentLabels(c) {
  try {
    return Object.fromEntries((await api.segments()).map((s) => [s.code, s.label]));
  } catch {
    return c.rfm.segment ? { [c.rfm.segment]: c.rfm.segment_label } : {};
  }
}

function card(title, id, ...content) {
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), ...content);
}

function tierCard(c) {
  const t = c.tier;
  const cuts = t.cut_points
    ? Object.entries(t.cut_points)
        .sort(([a], [b]) => TIER_ORDER.indexOf(a) - TIER_ORDER.indexOf(b))
        .map(([tier, value]) => `${TIER_LABELS[tier] || tier} ≥ ${money(value)}`)
        .join(" · ")
    : "provisional thresholds (no calibration yet)";
  return card(
    "Value tier",
    "tier-title",
    facts([
      ["Tier", tierBadge(t.value_tier)],
      ["Net contribution (12 months)", money(t.net_contribution, t.currency)],
      ["Would grade as", t.candidate_tier ? humanize(t.candidate_tier, TIER_LABELS) : "—"],
      ["Live orders", count(t.live_orders)],
      ["Tier at last calibration", t.anchor_tier ? humanize(t.anchor_tier, TIER_LABELS) : "—"],
      ["Recalibrations below", count(t.recalibrations_below)],
      ["Cut points", t.calibration_id ? `#${t.calibration_id}: ${cuts}` : cuts],
      ["Lifetime net revenue", money(c.figures.net_revenue, c.figures.currency)],
      ["Orders (cancelled)", `${count(c.figures.orders_count)} (${count(c.figures.cancelled_orders)})`],
    ]),
  );
}

function rfmCard(c, labels) {
  const r = c.rfm;
  const score = (name, value) =>
    h("span", { class: "score", "aria-label": `${name} ${value ?? "none"} of 5` }, `${name}${value ?? "–"}`);
  return card(
    "RFM",
    "rfm-title",
    h("p", { class: "scores" }, score("R", r.r_score), score("F", r.f_score), score("M", r.m_score)),
    facts([
      [
        "Segment",
        r.segment
          ? h(
              "a",
              { href: `#/customers?segment=${encodeURIComponent(r.segment)}` },
              r.segment_label || labels[r.segment] || humanize(r.segment),
            )
          : "—",
      ],
      ["Recency", r.recency_days === null ? "no order" : `${count(r.recency_days)} days since the last order`],
      ["Frequency", `${plural(r.frequency, "order")} in the window`],
      ["Monetary", money(r.monetary, c.tier.currency)],
    ]),
  );
}

function activityCard(c) {
  const a = c.activity;
  return card(
    "Lifecycle and activity",
    "activity-title",
    facts([
      ["Lifecycle stage", humanize(c.lifecycle_stage)],
      ["Activity status", humanize(a.status)],
      ["Why", orDash(a.reason)],
      ["Days since last order", a.days_since_last_order === null ? "—" : count(a.days_since_last_order)],
      ["Median gap between orders", a.median_gap_days === null ? "—" : `${a.median_gap_days} days`],
      ["Average order value", money(a.average_order_value, c.tier.currency)],
      ["Spend, last 90 days", money(a.spend_last_90, c.tier.currency)],
      ["Spend, the 90 days before", money(a.spend_previous_90, c.tier.currency)],
    ]),
  );
}

const EVIDENCE_LABELS = {
  nps: "NPS",
  csat: "CSAT",
  threshold_days: "Threshold (days)",
  days_since_last_order: "Days since last order",
  drop_pct: "Drop (%)",
  orders_on_hold: "Orders on hold",
  bucket: "Days overdue",
};

function evidence(data) {
  const entries = Object.entries(data || {});
  if (!entries.length) return "—";
  return h(
    "dl",
    { class: "evidence" },
    entries.map(([key, value]) => [
      h("dt", {}, humanize(key, EVIDENCE_LABELS)),
      h("dd", {}, typeof value === "object" && value !== null ? JSON.stringify(value) : String(value)),
    ]),
  );
}

function churnSection(c) {
  const ch = c.churn;
  const reasons = ch.reasons.length
    ? scrolling(
        table(
          "Why the churn-risk score is what it is",
          ["Reason", "Points", "Evidence"],
          ch.reasons.map((r) => [
            h("span", { "data-reason": r.code }, REASON_LABELS[r.code] || humanize(r.code)),
            count(r.points),
            evidence(r.evidence),
          ]),
          { className: "reasons" },
        ),
      )
    : emptyState("No risk signal: nothing adds to the score.");
  return card(
    "Churn risk",
    "churn-title",
    h("p", { class: "churn-score" }, h("span", { class: "big" }, String(ch.score)), " / 100 ", bandBadge(ch.band)),
    reasons,
    facts(
      [
        [
          "Open complaints",
          `${count(ch.open_complaints)} (${count(ch.complaints_past_sla)} past SLA, ${count(ch.complaints_reopened)} reopened)`,
        ],
        ["Latest survey", `NPS ${orDash(ch.latest_nps)} · CSAT ${orDash(ch.latest_csat)}`],
        [
          "Overdue receivables",
          ch.overdue_bucket ? `${money(ch.overdue_amount, c.tier.currency)} (${ch.overdue_bucket} days)` : "none",
        ],
        ["Orders on credit hold", count(ch.credit_holds)],
      ],
      "facts-inline",
    ),
  );
}

function alertSection(c, ctx) {
  if (!c.alert) {
    return card("Churn alert", "alert-title", emptyState("No churn alert for this customer."));
  }
  const current = { current_score: c.churn.score, current_band: c.churn.band, current_reasons: c.churn.reasons };
  const alert = { ...c.alert, company_name: c.company_name, value_tier: c.tier.value_tier, ...current };
  return h(
    "section",
    { class: "alert-section" },
    readOnlyNote(ctx),
    alertCard(alert, ctx, { heading: "h2", showCustomer: false }),
  );
}

function historySection(c, labels) {
  const label = (kind, value) => {
    if (value === null || value === undefined) return "—";
    if (kind === "tier") return humanize(value, TIER_LABELS);
    if (kind === "rfm_segment") return labels[value] || humanize(value);
    return kind === "churn_score" ? String(value) : humanize(value);
  };
  const blocks = Object.entries(HISTORY_TITLES).map(([kind, title]) => {
    const changes = c.history[kind] || [];
    return h(
      "details",
      { class: "history", open: kind === "tier" || kind === "rfm_segment" || kind === "activity", "data-kind": kind },
      h("summary", {}, `${title} (${changes.length})`),
      changes.length
        ? scrolling(
            table(
              title,
              ["When", "From → to", "Reason", "Calibration"],
              changes.map((e) => [
                when(e.occurred_at),
                `${label(kind, e.previous)} → ${label(kind, e.new)}`,
                e.reason,
                e.calibration_id ? `#${e.calibration_id}` : "—",
              ]),
              { captionHidden: true },
            ),
          )
        : h("p", { class: "muted" }, "No change recorded."),
    );
  });
  return card("History", "history-title", h("p", { class: "help" }, "Latest first, up to 50 per kind."), blocks);
}
