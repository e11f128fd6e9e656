// The dashboard's shell: sign-in, the session badge, hash routes → views, loading and error states.

import { ApiError, api, takeTokenFromFragment, tokenStore } from "./api.js";
import { h, replaceContent } from "./dom.js";
import { renderAlert, renderAlerts } from "./alerts.js";
import { renderCustomer } from "./customer.js";
import { renderCustomers } from "./customers.js";
import { renderOverview } from "./overview.js";
import { errorState } from "./states.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const session = document.getElementById("session");
const sessionLabel = document.getElementById("session-label");
const notice = document.getElementById("notice");

const ctx = {
  caller: null, // GET /caller: {caller, scopes, can_read, can_write, service_time}
  clockOffsetMs: 0, // the service's clock minus this browser's (a demo service may run in the past)
  /** Now on the service's clock: what alert times are compared with there. */
  serviceNow() {
    return new Date(Date.now() + this.clockOffsetMs);
  },
  get canWrite() {
    return Boolean(this.caller && this.caller.can_write);
  },
  navigate(hash) {
    if (window.location.hash === hash) route();
    else window.location.hash = hash;
  },
  notify(message) {
    notice.textContent = message;
    notice.classList.add("visible");
    window.clearTimeout(ctx.noticeTimer);
    ctx.noticeTimer = window.setTimeout(() => notice.classList.remove("visible"), 6000);
  },
  /** A 401 anywhere ends the session: back to the sign-in form with the reason. */
  signOut(reason) {
    tokenStore.clear();
    ctx.caller = null;
    showSignIn(reason);
  },
};

/** #/customers/C1?x=1 → {name: "customer", id: "C1", params: URLSearchParams} */
function parseRoute() {
  const raw = window.location.hash.replace(/^#\/?/, "");
  const [path, search = ""] = raw.split("?");
  const parts = path.split("/").filter(Boolean);
  const params = new URLSearchParams(search);
  if (parts[0] === "customers" && parts.length > 1) {
    return { name: "customer", id: decodeURIComponent(parts.slice(1).join("/")), params };
  }
  if (parts[0] === "customers") return { name: "customers", params };
  if (parts[0] === "alerts" && parts.length > 1) {
    return { name: "alert", id: decodeURIComponent(parts.slice(1).join("/")), params };
  }
  if (parts[0] === "alerts") return { name: "alerts", params };
  return { name: "overview", params };
}

const VIEWS = {
  overview: renderOverview,
  customers: renderCustomers,
  customer: renderCustomer,
  alerts: renderAlerts,
  alert: renderAlert,
};
// A view of one item marks its list's section in the navigation.
const SECTION = { customer: "customers", alert: "alerts" };

let sequence = 0;

async function route() {
  if (!ctx.caller) return;
  const current = parseRoute();
  const mine = ++sequence;
  for (const link of nav.querySelectorAll("a")) {
    const active = link.dataset.route === (SECTION[current.name] || current.name);
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  main.setAttribute("aria-busy", "true");
  replaceContent(main, h("p", { class: "loading", role: "status" }, "Loading…"));
  // A view renders into a detached container, so a slow answer for an old route never shows.
  const view = h("div", { class: "view" });
  try {
    await VIEWS[current.name](view, ctx, current);
    if (mine !== sequence) return;
    replaceContent(main, view);
  } catch (error) {
    if (mine !== sequence) return;
    if (error instanceof ApiError && error.kind === "auth") {
      ctx.signOut(error.message);
      return;
    }
    replaceContent(main, errorState(error, route));
  } finally {
    if (mine === sequence) main.removeAttribute("aria-busy");
  }
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
    document.title = `${heading.textContent} · Tierstream segmentation`;
  }
}

function showSignIn(message) {
  nav.hidden = true;
  session.hidden = true;
  main.removeAttribute("aria-busy");
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    required: true,
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": "token-help",
  });
  const status = h("p", { class: "form-error", role: "alert", hidden: !message }, message || "");
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "sign-in", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in"),
    h(
      "p",
      { id: "token-help", class: "help" },
      "Paste an API bearer token of this service. A read-only token (e.g. the development token dev-dashboard) ",
      "shows everything; acting on alerts needs a token with segmentation:write (e.g. dev-admin). ",
      "The token is kept in this browser tab only (sessionStorage).",
    ),
    h("div", { class: "field" }, h("label", { for: "token" }, "API token"), input),
    status,
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    button.disabled = true;
    status.hidden = true;
    try {
      await startSession(token);
    } catch (error) {
      status.textContent = error instanceof ApiError ? error.message : String(error);
      status.hidden = false;
      input.focus();
    } finally {
      button.disabled = false;
    }
  });
  replaceContent(main, form);
  input.focus();
}

async function startSession(token) {
  const caller = await api.caller(token); // rejects with ApiError (401, network…) before anything is kept
  tokenStore.set(token);
  ctx.caller = caller;
  const serviceTime = Date.parse(caller.service_time);
  ctx.clockOffsetMs = Number.isNaN(serviceTime) ? 0 : serviceTime - Date.now();
  nav.hidden = false;
  session.hidden = false;
  sessionLabel.textContent = `${caller.caller} · ${caller.can_write ? "may act on alerts" : "read-only"}`;
  if (!window.location.hash || window.location.hash === "#" || window.location.hash === "#/") {
    window.history.replaceState(null, "", "#/overview");
  }
  await route();
}

async function start() {
  takeTokenFromFragment();
  const token = tokenStore.get();
  if (!token) {
    showSignIn();
    return;
  }
  try {
    await startSession(token);
  } catch (error) {
    if (error instanceof ApiError && error.kind === "auth") {
      ctx.signOut(error.message);
    } else {
      replaceContent(main, errorState(error, start));
    }
  }
}

document.getElementById("sign-out").addEventListener("click", () => {
  ctx.signOut();
  ctx.notify("Signed out; the token was removed from this tab.");
});
window.addEventListener("hashchange", () => {
  if (window.location.hash.startsWith("#token=")) {
    start();
  } else {
    route();
  }
});
start();
