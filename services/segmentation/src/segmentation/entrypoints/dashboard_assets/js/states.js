// Loading, empty and error states shared by the views.

import { ApiError } from "./api.js";
import { h } from "./dom.js";

/** An error panel: what went wrong, what to do, and a retry button. */
export function errorState(error, retry, { heading = "h1" } = {}) {
  const title = error instanceof ApiError ? error.title : "Something went wrong";
  const detail = error instanceof ApiError ? error.detail : String(error && error.message ? error.message : error);
  return h(
    "section",
    { class: "error-box", role: "alert" },
    h(heading, {}, title),
    detail ? h("p", {}, detail) : null,
    retry ? h("button", { type: "button", onclick: () => retry() }, "Try again") : null,
  );
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
