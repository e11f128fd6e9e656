// Churn alerts: the list by state, one alert (#/alerts/<id>), and an alert's card with acknowledge /
// snooze until / close with a reason. A read-only token sees the actions disabled with the reason; a 403
// is explained, not hidden.

import { ApiError, api, lastPageOffset, offsetParam, query } from "./api.js";
import {
  REASON_LABELS,
  append,
  badge,
  bandBadge,
  count,
  customerLink,
  facts,
  h,
  humanize,
  orDash,
  replaceContent,
  scrolling,
  selectField,
  table,
  tierBadge,
  when,
} from "./dom.js";
import { actionError, emptyState, errorState, isInvalid } from "./states.js";

const PAGE_SIZE = 20;
const STATES = [
  ["live", "Live (open, acknowledged, snoozed)"],
  ["open", "Open"],
  ["acknowledged", "Acknowledged"],
  ["snoozed", "Snoozed"],
  ["closed", "Closed"],
];
const RAISED_HINT = "An alert is raised when a customer's churn-risk score reaches the high band.";
const EMPTY_HINTS = {
  live: RAISED_HINT,
  open: RAISED_HINT,
  acknowledged: "An alert is acknowledged when an operator takes it in hand.",
  snoozed: "A snoozed alert stays here until its time has passed, then it is open again.",
  closed: "Alerts closed by an operator, or cleared when the customer's score recovered, are kept here.",
};

/** The page at `offset`, or the last page when `offset` lies beyond the list (the address follows). */
async function alertPage(state, offset) {
  const page = await api.alerts({ state, limit: PAGE_SIZE, offset });
  const last = lastPageOffset(page.total, PAGE_SIZE);
  if (offset <= last) return page;
  window.history.replaceState(null, "", `#/alerts${query({ state, offset: last || "" })}`);
  return api.alerts({ state, limit: PAGE_SIZE, offset: last });
}

export async function renderAlerts(view, ctx, route) {
  const state = route.params.get("state") || "live";
  let page;
  try {
    page = await alertPage(state, offsetParam(route.params));
  } catch (error) {
    if (!isInvalid(error)) throw error;
    const live = h("a", { href: "#/alerts", class: "button-quiet" }, "Show live alerts");
    const refused = errorState(error, null, { heading: "h2", recover: live });
    append(view, h("h1", {}, "Churn alerts"), stateForm(ctx, state), refused);
    return;
  }
  const label = STATES.find(([value]) => value === state)?.[0] ?? state;
  append(
    view,
    h("h1", {}, "Churn alerts"),
    stateForm(ctx, state),
    readOnlyNote(ctx),
    h(
      "p",
      { class: "result-summary", role: "status" },
      h(
        "span",
        { class: "total", "data-total": String(page.total) },
        `${count(page.total)} ${label} ${page.total === 1 ? "alert" : "alerts"}`,
      ),
      page.total > 0 ? `, highest current risk first` : "",
    ),
    page.items.length === 0
      ? emptyState(state === "live" ? "No live churn alerts." : `No ${label} alerts.`, EMPTY_HINTS[state])
      : h(
          "div",
          { class: "alert-list" },
          page.items.map((alert) => alertCard(alert, ctx, { heading: "h2" })),
        ),
    pager(ctx, page, state),
  );
}

/** One alert (the customer list's alert badges link here), with its log and actions. */
export async function renderAlert(view, ctx, route) {
  const back = h("p", { class: "breadcrumb" }, h("a", { href: "#/alerts" }, "Churn alerts"), " › ", route.id);
  let alert;
  try {
    alert = await api.alert(route.id);
  } catch (error) {
    if (!(error instanceof ApiError && error.kind === "missing")) throw error;
    append(view, back, h("h1", {}, `Alert ${route.id}`), emptyState("There is no churn alert with this id."));
    return;
  }
  append(
    view,
    back,
    h("h1", {}, `Churn alert: ${alert.company_name || alert.customer_id}`),
    readOnlyNote(ctx),
    alertCard(alert, ctx, { heading: "h2" }),
  );
}

function stateForm(ctx, state) {
  const form = h(
    "form",
    { class: "filters", "aria-label": "Alert state" },
    selectField("a-state", "State", "state", STATES, state),
  );
  form
    .querySelector("select")
    .addEventListener("change", (event) => ctx.navigate(`#/alerts${query({ state: event.target.value })}`));
  form.addEventListener("submit", (event) => event.preventDefault());
  return form;
}

function pager(ctx, page, state) {
  if (page.total <= page.limit) return null;
  const go = (offset) => () => ctx.navigate(`#/alerts${query({ state, offset: offset || "" })}`);
  return h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    h(
      "button",
      { type: "button", disabled: page.offset === 0, onclick: go(Math.max(0, page.offset - page.limit)) },
      "‹ Previous",
    ),
    h("span", {}, `${count(page.offset + 1)}–${count(page.offset + page.items.length)} of ${count(page.total)}`),
    h(
      "button",
      { type: "button", disabled: page.offset + page.limit >= page.total, onclick: go(page.offset + page.limit) },
      "Next ›",
    ),
  );
}

export function readOnlyNote(ctx) {
  if (ctx.canWrite) return null;
  return h(
    "p",
    { class: "note", id: "read-only-note" },
    "This token is read-only: acknowledging, snoozing and closing alerts need a token with segmentation:write.",
  );
}

/** One alert: who, why, its state and history, and the operator actions. */
export function alertCard(alert, ctx, { heading = "h3", showCustomer = true } = {}) {
  const card = h("article", {
    "data-alert-id": alert.alert_id,
    "aria-label": `Alert for ${alert.company_name || alert.customer_id}`,
  });
  const render = (current) => {
    card.className = `card alert-card state-${current.state}`;
    const reasons =
      current.current_reasons && current.state !== "closed"
        ? current.current_reasons.map((r) => r.code)
        : current.reasons;
    replaceContent(
      card,
      h(
        "header",
        { class: "alert-head" },
        h(
          heading,
          {},
          showCustomer ? customerLink(current.customer_id, current.company_name || current.customer_id) : "Churn alert",
        ),
        showCustomer ? h("span", { class: "muted" }, current.customer_id) : null,
        current.value_tier ? tierBadge(current.value_tier) : null,
        h(
          "span",
          { class: `badge badge-state-${current.state}`, "data-state": current.state },
          humanize(current.state),
        ),
      ),
      facts([
        ["Raised", `${when(current.raised_at)} at score ${current.raised_score}`],
        [
          "Current risk",
          current.current_score === null || current.current_score === undefined
            ? `${current.last_score}`
            : bandBadge(current.current_band, current.current_score),
        ],
        ["Occurrences", count(current.occurrences)],
        [
          "Reasons",
          h(
            "ul",
            { class: "chips" },
            reasons.map((code) => h("li", {}, REASON_LABELS[code] || humanize(code))),
          ),
        ],
        current.snoozed_until ? ["Snoozed until", when(current.snoozed_until)] : null,
        current.handled_by ? ["Handled", `${when(current.handled_at)} by ${current.handled_by}`] : null,
        current.closed_at ? ["Closed", `${when(current.closed_at)}: ${orDash(current.close_reason)}`] : null,
      ]),
      current.log && current.log.length ? alertLog(current.log) : null,
      actions(current, ctx, (updated) => {
        render({ ...current, ...updated });
        ctx.notify(
          `Alert for ${updated.company_name || updated.customer_id} is now ${humanize(updated.state).toLowerCase()}.`,
        );
        card.querySelector(heading)?.focus?.();
      }),
    );
  };
  render(alert);
  return card;
}

function alertLog(log) {
  return h(
    "details",
    { class: "alert-log" },
    h("summary", {}, `Log (${log.length})`),
    scrolling(
      table(
        "What happened to this alert",
        ["When", "Action", "By", "Score"],
        log.map((entry) => [when(entry.at), humanize(entry.action), orDash(entry.actor), orDash(entry.score)]),
        { captionHidden: true },
      ),
    ),
  );
}

/** A week from now on the service's clock, as a datetime-local value (the browser's time zone). */
function defaultSnooze(ctx) {
  const d = new Date(ctx.serviceNow().getTime() + 7 * 24 * 3600 * 1000);
  d.setSeconds(0, 0);
  const local = new Date(d.getTime() - d.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 16);
}

function actions(alert, ctx, done) {
  if (alert.state === "closed") return null;
  const id = alert.alert_id.replace(/[^A-Za-z0-9_-]/g, "_");
  const disabled = !ctx.canWrite;
  const describedBy = disabled ? "read-only-note" : null; // the note readOnlyNote() puts above the alerts
  const message = h("p", { class: "form-error", role: "alert", hidden: true });
  const run = async (form, call) => {
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    message.hidden = true;
    try {
      done(await call());
    } catch (error) {
      message.textContent = actionError(error);
      message.hidden = false;
      buttons.forEach((b) => (b.disabled = false));
    }
  };

  const ack = h(
    "form",
    { class: "action" },
    h(
      "button",
      {
        type: "submit",
        disabled: disabled || !["open", "snoozed"].includes(alert.state),
        "aria-describedby": describedBy,
      },
      "Acknowledge",
    ),
  );
  ack.addEventListener("submit", (event) => {
    event.preventDefault();
    run(ack, () => api.acknowledge(alert.alert_id));
  });

  const until = h("input", {
    id: `snooze-${id}`,
    name: "until",
    type: "datetime-local",
    required: true,
    value: defaultSnooze(ctx),
    disabled,
  });
  const snooze = h(
    "form",
    { class: "action", novalidate: true },
    h("label", { for: `snooze-${id}` }, "Snooze until"),
    until,
    h("button", { type: "submit", disabled, "aria-describedby": describedBy }, "Snooze"),
  );
  snooze.addEventListener("submit", (event) => {
    event.preventDefault();
    const instant = new Date(until.value);
    if (Number.isNaN(instant.getTime())) {
      message.textContent = "Pick a date and time to snooze until.";
      message.hidden = false;
      return;
    }
    run(snooze, () => api.snooze(alert.alert_id, instant.toISOString()));
  });

  const reason = h("input", {
    id: `close-${id}`,
    name: "reason",
    type: "text",
    required: true,
    maxlength: "500",
    disabled,
    placeholder: "e.g. called the buyer; seasonal pause",
  });
  const close = h(
    "form",
    { class: "action action-wide", novalidate: true },
    h("label", { for: `close-${id}` }, "Close with reason"),
    reason,
    h("button", { type: "submit", disabled, "aria-describedby": describedBy }, "Close alert"),
  );
  close.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!reason.value.trim()) {
      message.textContent = "Closing an alert needs a reason.";
      message.hidden = false;
      reason.focus();
      return;
    }
    run(close, () => api.close(alert.alert_id, reason.value.trim()));
  });

  return h(
    "div",
    { class: "alert-actions", role: "group", "aria-label": "Act on this alert" },
    ack,
    snooze,
    close,
    message,
  );
}
