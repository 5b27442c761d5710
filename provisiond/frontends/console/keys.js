// Programmable keys of a device (issue 16): what its phone shows, its own keys and its owner's.
// A device row of the open user opens a "Keys" row below it: the keys the phone shows (the
// owner's keys with the device's own over them, within the model's positions and the vendor's
// key types, as GET /devices/{id}/keys answers `effective`), then two lists to edit and save
// whole (PUT): the device's own keys, and the user's keys that follow them onto every phone.
// The lists themselves (their rows, checks and refusals) are keyeditor.js's; this module draws
// the row and redraws what a saved list changes. Text from the API only ever goes through
// textContent (dom.js).

import { api } from "./api.js";
import { h, say } from "./dom.js";
import { draftOf, newEditor, renderEditor } from "./keyeditor.js";
import { TYPE_NAMES, plural } from "./keytypes.js";
import { capitalise, modelName, state } from "./state.js";

/**
 * Open keys rows by device id, kept across re-renders of the lines table so that what the
 * admin typed survives: {device, row, view, userView, parts, editors: {device, user}}.
 */
const panels = new Map();

/** True when the keys row of this device is open. */
export function keysShown(deviceId) {
  return panels.has(deviceId);
}

/** Forget every open keys row (another user is shown). */
export function resetKeys() {
  panels.clear();
}

/** The "Keys" button of a device row: shows or hides the keys row below it. */
export function keysToggle(device) {
  return h("button", {
    type: "button",
    class: "small toggle",
    text: "Keys",
    "aria-label": `Keys of ${device.extension}`,
    "aria-expanded": panels.has(device.id) ? "true" : "false",
    "aria-controls": `keys-of-${device.id}`,
    onclick: (event) => toggle(device, event.currentTarget),
  });
}

function toggle(device, button) {
  const open = panels.get(device.id);
  if (open) {
    open.row.remove();
    panels.delete(device.id);
    button.setAttribute("aria-expanded", "false");
    return;
  }
  button.setAttribute("aria-expanded", "true");
  const after = document.getElementById(`accounts-of-${device.id}`) || button.closest("tr");
  after.after(keysRow(device));
}

/** The keys row of `device` (the same element while it stays open). */
export function keysRow(device) {
  const open = panels.get(device.id);
  if (open) {
    open.device = device;
    return open.row;
  }
  const panel = newPanel(device);
  panels.set(device.id, panel);
  load(panel);
  return panel.row;
}

// --- the panel -------------------------------------------------------------------------

function newPanel(device) {
  const id = device.id;
  const titleId = `keys-title-${id}`;
  const parts = {
    capacity: h("p", { class: "hint", id: `keys-capacity-${id}`, text: "Loading the keys…" }),
    types: h("p", { class: "hint" }),
    status: h("p", { class: "notice", role: "status", id: `keys-status-${id}` }),
    alert: h("p", { class: "error", role: "alert", id: `keys-alert-${id}` }),
    shownBody: h("tbody", {}),
    shownEmpty: h("p", { class: "hint", hidden: true, text: "The phone shows no programmed keys." }),
    hidden: h("p", { class: "hint" }),
    lists: h("div", { class: "keys-lists" }),
  };
  const shownTitle = `keys-shown-title-${id}`;
  const shown = h(
    "section",
    { class: "keys-shown", "aria-labelledby": shownTitle },
    h("h4", { id: shownTitle, text: "On the phone" }),
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        { class: "grid inner" },
        h("caption", { class: "sr-only", text: `Keys the phone of ${device.extension} shows` }),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Position", "Type", "Value", "Label", "From"].map((name) => h("th", { scope: "col", text: name })),
          ),
        ),
        parts.shownBody,
      ),
    ),
    parts.shownEmpty,
    parts.hidden,
  );
  const row = h(
    "tr",
    { class: "keys-row", id: `keys-of-${id}` },
    h(
      "td",
      { colSpan: 7 },
      h(
        "div",
        { class: "keys", role: "group", "aria-labelledby": titleId },
        h("h3", { id: titleId, text: `Keys of ${device.extension}` }),
        parts.capacity,
        parts.types,
        parts.status,
        parts.alert,
        shown,
        parts.lists,
      ),
    ),
  );
  return { device, row, view: null, userView: null, parts, editors: {} };
}

async function load(panel) {
  const { device } = panel;
  try {
    const [view, userView] = await Promise.all([
      api("GET", `/devices/${device.id}/keys`),
      device.user_id === null || device.user_id === undefined
        ? null
        : api("GET", `/users/${device.user_id}/keys`),
    ]);
    if (panels.get(device.id) !== panel) return; // closed (or another user opened) meanwhile
    panel.view = view;
    panel.userView = userView;
  } catch (error) {
    say(panel.parts.capacity, "");
    say(panel.parts.alert, `The keys cannot be read: ${error.message}`);
    return;
  }
  panel.editors.device = newEditor(panel, "device", panel.view.items, keysSaved);
  panel.parts.lists.replaceChildren(panel.editors.device.section);
  if (panel.userView) {
    panel.editors.user = newEditor(panel, "user", panel.userView.items, keysSaved);
    panel.parts.lists.append(panel.editors.user.section);
  }
  renderShown(panel);
}

/** "27 keys: 27 on the phone + 0 modules x 0", the vendor's key types, and what the phone shows. */
function renderShown(panel) {
  const { view, userView, parts } = panel;
  parts.capacity.textContent =
    `${plural(view.capacity, "key")}: ${view.line_keys} on the phone + ` +
    `${plural(view.expansion_modules, "module")} x ${view.module_keys}` +
    ` (${modelName(view.model)}).`;
  const vendor = vendorOf(view.model);
  parts.types.textContent = view.key_types.length
    ? `${vendor} phones here take: ${view.key_types.map((t) => TYPE_NAMES[t] || t).join(", ")}.`
    : `${vendor} phones here take no programmable keys.`;
  parts.shownBody.replaceChildren(
    ...view.effective.map((key) =>
      h(
        "tr",
        { "data-position": key.position, class: key.source === "device" ? "own" : "inherited" },
        h("td", { class: "num", text: placeText(view, key.position) }),
        h("td", { text: TYPE_NAMES[key.type] || key.type }),
        h("td", { class: "value", text: key.value }),
        h("td", { class: "label", text: key.label || "" }),
        h("td", { class: "source", text: key.source === "device" ? "Device's own" : "Inherited from the user" }),
      ),
    ),
  );
  parts.shownEmpty.hidden = view.effective.length > 0;
  // The user's keys this phone leaves out: beyond its positions or a type its vendor lacks.
  const shown = new Set(view.effective.map((k) => k.position));
  const own = new Set(view.items.map((k) => k.position));
  const left = userView ? userView.items.filter((k) => !shown.has(k.position) && !own.has(k.position)) : [];
  parts.hidden.textContent = left.length
    ? `${plural(left.length, "key")} of the user ${left.length === 1 ? "is" : "are"} not on this phone ` +
      `(position ${left.map((k) => k.position).join(", ")}): beyond its ${view.capacity} positions ` +
      `or a type ${vendor} phones here do not take.`
    : "";
}

function vendorOf(modelId) {
  const model = state.models.get(modelId);
  return model ? capitalise(model.vendor) : modelName(modelId);
}

/** "5", or "33 (module 1, key 6)" for a position on an expansion module. */
function placeText(view, position) {
  if (position <= view.line_keys || view.module_keys <= 0) return String(position);
  const beyond = position - view.line_keys - 1;
  const module = Math.floor(beyond / view.module_keys) + 1;
  return `${position} (module ${module}, key ${(beyond % view.module_keys) + 1})`;
}

// --- after a list is saved ---------------------------------------------------------------

/** A list the editor saved for `device` (`answer` is the PUT's): the device's own keys change
 * this row only. */
async function keysSaved(panel, editor, answer, device) {
  if (editor.scope === "device") {
    panel.view = answer;
    editor.drafts = answer.items.map(draftOf);
    renderEditor(panel, editor);
    renderShown(panel);
    say(panel.parts.status, `Own keys of ${device.extension} saved: ${plural(answer.items.length, "key")}.`);
    return;
  }
  await userKeysSaved(panel, answer);
}

/** The user's keys follow them onto every phone: every open keys row of theirs is redrawn. */
async function userKeysSaved(panel, answer) {
  const userId = panel.device.user_id;
  const others = [...panels.values()].filter((p) => p.device.user_id === userId && p.view);
  await Promise.all(
    others.map(async (p) => {
      try {
        const view = await api("GET", `/devices/${p.device.id}/keys`);
        if (panels.get(p.device.id) !== p) return;
        p.view = view;
      } catch (error) {
        say(p.parts.alert, `The keys shown may be out of date: ${error.message}`);
      }
      p.userView = answer;
      if (p.editors.user) {
        p.editors.user.drafts = answer.items.map(draftOf);
        renderEditor(p, p.editors.user);
      }
      renderShown(p);
    }),
  );
  const count = plural(answer.items.length, "key");
  say(panel.parts.status, `User's keys saved: ${count}, on every phone of theirs that has the position.`);
}
