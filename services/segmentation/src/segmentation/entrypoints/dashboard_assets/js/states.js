// Loading, empty and error states shared by the views.

import { ApiError } from "./api.js";
import { h } from "./dom.js";

/** An error panel: what went wrong, what to do, and a retry button (or `recover`, a way out instead:
 * retrying a request the service refused as invalid would only repeat it). */
export function errorState(error, retry, { heading = "h1", recover = null } = {}) {
  const title = error instanceof ApiError ? error.title : "Something went wrong";
  const detail = error instanceof ApiError ? error.detail : String(error && error.message ? error.message : error);
  return h(
    "section",
    { class: "error-box", role: "alert" },
    h(heading, {}, title),
    detail ? h("p", {}, detail) : null,
    recover,
    retry && !recover ? h("button", { type: "button", onclick: () => retry() }, "Try again") : null,
  );
}

/** A request the service refused as invalid (422): shown beside the form that made it. */
export function isInvalid(error) {
  return error instanceof ApiError && error.kind === "invalid";
}

export function emptyState(message, hint) {
  return h("div", { class: "empty" }, h("p", {}, message), hint ? h("p", { class: "help" }, hint) : null);
}

/** One line explaining a failed action (shown beside the form that failed). */
export function actionError(error) {
  if (error instanceof ApiError && error.kind === "forbidden") {
    return `${error.title}. Sign in with a token that has segmentation:write (e.g. dev-admin in development).`;
  }
  return error instanceof ApiError ? error.message : String(error);
}
