// Unprovisioned phones: MACs that asked for a configuration and are not devices yet. Claiming
// one takes two clicks: "Claim" opens a short form already filled in (a free extension near the
// user's main extension, the model guessed from the phone's User-Agent), "Claim for <user>"
// creates the device on the open user.

import { api, ApiError, withQuery } from "./api.js";
import { byId, clear, formatTime, h, say } from "./dom.js";
import { userChanged } from "./devices.js";
import { capitalise, fillModelSelect, guessModel, state } from "./state.js";

const POLL_MS = 5000;
const SUGGESTION_TRIES = 20;

let items = [];
let lastJson = "";
let claiming = null; // the MAC whose claim form is open
let timer = 0;

/** Show the panel for the open user (hidden for a new user: claiming needs one). */
export function showUnprovisionedFor(user) {
  byId("unprov-panel").hidden = user === null;
  say(byId("unprov-status"), "");
  say(byId("unprov-alert"), "");
  claiming = null;
  if (user) refresh(true);
}

/** Fetch the list; re-render when it changed (never under an open claim form). */
export async function refresh(force = false) {
  try {
    const page = await api("GET", withQuery("/unprovisioned", { limit: 100 }));
    const json = JSON.stringify(page.items);
    if (!force && (json === lastJson || claiming !== null)) return;
    lastJson = json;
    items = page.items;
    claiming = null;
    render();
  } catch (error) {
    say(byId("unprov-alert"), error.message);
  }
}

/** Poll while signed in and the tab is visible: phones boot whenever they like. */
export function startPolling() {
  stopPolling();
  timer = setInterval(() => {
    if (document.visibilityState === "visible" && !byId("unprov-panel").hidden) refresh();
  }, POLL_MS);
}

export function stopPolling() {
  clearInterval(timer);
}

function render() {
  const rows = byId("unprov-rows");
  clear(rows);
  for (const item of items) rows.append(row(item));
  byId("no-unprov").hidden = items.length > 0;
  byId("unprov-table").hidden = items.length === 0;
}

function row(item) {
  const user = state.user;
  const guess = [capitalise(item.vendor) || "Unknown vendor", item.model_guess || "model unknown"];
  return h(
    "tr",
    { "data-mac": item.mac },
    h("td", { class: "mac" }, item.mac),
    h("td", {}, guess.join(" · ")),
    h(
      "td",
      {},
      h("time", { dateTime: item.last_seen, text: formatTime(item.last_seen) }),
      h("span", { class: "sub", text: `from ${item.ip || "unknown"}` }),
    ),
    h("td", { class: "num", text: String(item.requests) }),
    h(
      "td",
      { class: "row-actions" },
      h("button", {
        type: "button",
        class: "small",
        text: "Claim",
        "aria-label": `Claim ${item.mac} for ${user.display_name}`,
        onclick: (event) => openClaim(item, event.currentTarget),
      }),
    ),
  );
}

/** A free extension for a new device of `user`: the main extension if free, else the next. */
async function suggestExtension(user) {
  const base = user.main_extension;
  if (!/^[0-9]{1,16}$/.test(base)) return "";
  let number = BigInt(base);
  for (let tries = 0; tries < SUGGESTION_TRIES; tries += 1, number += 1n) {
    const candidate = number.toString().padStart(base.length, "0");
    if (candidate.length > 16) return "";
    if (await extensionFree(candidate, user)) return candidate;
  }
  return "";
}

async function extensionFree(extension, user) {
  // Ordered by extension, so an exact match is the first of its prefix.
  const devices = await api("GET", withQuery("/devices", { extension_prefix: extension, limit: 1 }));
  if (devices.items.some((d) => d.extension === extension)) return false;
  if (extension === user.main_extension) return true;
  const users = await api("GET", withQuery("/users", { search: extension, limit: 100 }));
  return !users.items.some((u) => u.main_extension === extension);
}

async function openClaim(item, button) {
  const user = state.user;
  button.disabled = true;
  let extension = "";
  try {
    extension = await suggestExtension(user);
  } catch {
    extension = ""; // a suggestion is a convenience; the person can type one
  }
  render();
  claiming = item.mac;
  const tableRow = [...byId("unprov-rows").children].find((tr) => tr.dataset.mac === item.mac);
  if (!tableRow) return;
  const form = claimForm(item, user, extension);
  tableRow.after(h("tr", { class: "claim-row" }, h("td", { colSpan: 5 }, form)));
  const firstEmpty = [...form.querySelectorAll("input, select")].find((c) => !c.value);
  (firstEmpty || form.querySelector("button[type=submit]")).focus();
}

function claimForm(item, user, extension) {
  const slug = item.mac.replaceAll(":", "");
  const model = h("select", { id: `claim-model-${slug}` });
  fillModelSelect(model, guessModel(item.vendor, item.model_guess));
  const error = h("p", { class: "field-error", role: "alert", id: `claim-error-${slug}` });
  const form = h(
    "form",
    {
      class: "claim",
      method: "post",
      action: "/console/",
      "aria-label": `Claim ${item.mac}`,
      onsubmit: (event) => {
        event.preventDefault();
        claim(item, form, error);
      },
    },
    h(
      "div",
      { class: "field" },
      h("label", { for: `claim-ext-${slug}`, text: "Extension" }),
      h("input", { id: `claim-ext-${slug}`, value: extension, inputMode: "numeric", autocomplete: "off" }),
    ),
    h("div", { class: "field" }, h("label", { for: model.id, text: "Model" }), model),
    h("button", { type: "submit", class: "primary", text: `Claim for ${user.display_name}` }),
    h("button", {
      type: "button",
      text: "Cancel",
      onclick: () => {
        claiming = null;
        render();
      },
    }),
    error,
  );
  return form;
}

async function claim(item, form, error) {
  const user = state.user;
  const [extension, model] = form.querySelectorAll("input, select");
  say(error, "");
  if (!model.value) {
    say(error, "Choose the phone's model.");
    model.focus();
    return;
  }
  try {
    const device = await api("POST", "/devices", {
      extension: extension.value.trim(),
      model: model.value,
      mac: item.mac,
      user_id: user.id,
    });
    claiming = null;
    userChanged(await api("GET", `/users/${user.id}`));
    say(byId("unprov-status"), `${item.mac} claimed as ${device.extension} for ${user.display_name}.`);
    await refresh(true);
  } catch (err) {
    say(error, err instanceof ApiError ? `Not claimed: ${err.detail}` : err.message);
    const target = err instanceof ApiError && err.field === "model" ? model : extension;
    target.focus();
  }
}
