// DOM building and formatting. Every text from data goes through textContent / attributes, never
// innerHTML, so nothing the API returns can become markup or script.

/**
 * h("a", {href: "#/x", class: "link"}, "text", otherNode) → an element.
 * Attributes: class, dataset-like "data-*", "aria-*", boolean properties (disabled, hidden…),
 * and "on<event>" functions. Children: strings (as text), numbers, nodes, arrays, null/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name in el && typeof value === "boolean") {
      el[name] = value;
    } else if (name === "style") {
      throw new Error("use classes, not inline styles (the CSP refuses them)");
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, ...children);
  return el;
}

export function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replaceContent(el, ...children) {
  clear(el);
  return append(el, ...children);
}

const numberFormat = new Intl.NumberFormat("en", { maximumFractionDigits: 0 });
const moneyFormat = new Intl.NumberFormat("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

export function count(value) {
  return value === null || value === undefined ? "—" : numberFormat.format(Number(value));
}

/** Decimal strings ("1234.5000") as "1,234.50", with the currency code when one is given. */
export function money(value, currency) {
  if (value === null || value === undefined) return "—";
  const text = moneyFormat.format(Number(value));
  return currency ? `${text} ${currency}` : text;
}

export function pct(value) {
  if (value === null || value === undefined) return "—";
  return `${Number(value).toFixed(1)} %`;
}

export function plural(n, one, many = `${one}s`) {
  return `${count(n)} ${Number(n) === 1 ? one : many}`;
}

/** ISO instants as "2011-12-10 14:03 UTC" (the engine's clock may be a simulated one, so no "ago"). */
export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

export function orDash(value) {
  return value === null || value === undefined || value === "" ? "—" : String(value);
}

/** "at_risk" → "At risk"; known labels first. */
export function humanize(code, labels = {}) {
  if (code === null || code === undefined) return "—";
  if (labels[code]) return labels[code];
  const text = String(code).replaceAll("_", " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export const TIER_LABELS = {
  vip: "VIP",
  key: "Key account",
  normal: "Normal",
  small: "Small",
  prospect: "Prospect",
};
export const TIER_ORDER = ["vip", "key", "normal", "small", "prospect"];
export const STATUSES = ["active", "at_risk", "dormant", "lost", "reactivated"];
export const BANDS = ["low", "medium", "high"];
export const REASON_LABELS = {
  cadence_breach: "Order cadence breached",
  spend_down: "Spend down",
  complaint_overdue: "Complaint past its SLA",
  complaint_reopened: "Complaint reopened",
  detractor_survey: "Detractor survey answer",
  receivables_overdue_1_30: "Receivables 1–30 days overdue",
  receivables_overdue_31_60: "Receivables 31–60 days overdue",
  receivables_overdue_61_90: "Receivables 61–90 days overdue",
  receivables_overdue_90_plus: "Receivables 90+ days overdue",
  credit_hold: "Order on credit hold",
};

export function badge(text, kind) {
  return h("span", { class: `badge badge-${kind}` }, text);
}

export function tierBadge(tier) {
  return badge(humanize(tier, TIER_LABELS), `tier-${tier}`);
}

export function bandBadge(band, score) {
  const text = score === undefined || score === null ? humanize(band) : `${score} · ${band}`;
  return badge(text, `band-${band}`);
}

/** A definition list from [label, value] pairs (values: text or nodes). */
export function facts(pairs, extraClass = "") {
  return h(
    "dl",
    { class: `facts ${extraClass}`.trim() },
    pairs.filter(Boolean).map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
  );
}

/** A table with a caption, column headers (scope=col) and rows of cells (text or nodes). */
export function table(caption, headers, rows, { captionHidden = false, className = "" } = {}) {
  return h(
    "table",
    { class: `data ${className}`.trim() },
    h("caption", { class: captionHidden ? "visually-hidden" : null }, caption),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        headers.map((title) => h("th", { scope: "col" }, title)),
      ),
    ),
    h(
      "tbody",
      {},
      rows.map((cells) =>
        h(
          "tr",
          {},
          cells.map((cell, i) => (i === 0 ? h("th", { scope: "row" }, cell) : h("td", {}, cell))),
        ),
      ),
    ),
  );
}

/** A table inside a card, scrolling sideways on its own when the screen is narrower than its columns. */
export function scrolling(tableNode) {
  return h("div", { class: "table-scroll table-scroll-plain" }, tableNode);
}

export function customerLink(customerId, text) {
  return h("a", { href: `#/customers/${encodeURIComponent(customerId)}` }, text ?? customerId);
}

/** A labelled <select>; options are [value, label] pairs; "" = any. */
export function selectField(id, label, name, options, value) {
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h(
      "select",
      { id, name },
      options.map(([optionValue, optionLabel]) =>
        h("option", { value: optionValue, selected: optionValue === (value ?? "") }, optionLabel),
      ),
    ),
  );
}
