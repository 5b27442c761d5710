// Programmable keys of a device (issue 16): what its phone shows, its own keys and its owner's.
// A device row of the open user opens a "Keys" row below it: the keys the phone shows (the
// owner's keys with the device's own over them, within the model's positions and the vendor's
// key types, as GET /devices/{id}/keys answers `effective`), then two lists to edit and save
// whole (PUT): the device's own keys, and the user's keys that follow them onto every phone.
// A refusal (422 with `field` "keys[i].position" ...) is shown next to that key's control and
// nothing is saved. Text from the API only ever goes through textContent (dom.js).

import { api, ApiError } from "./api.js";
import { h, say } from "./dom.js";
import { capitalise, modelName, state } from "./state.js";

const TYPE_NAMES = {
  line: "Line",
  blf: "BLF (busy lamp)",
  speed_dial: "Speed dial",
  park: "Park",
  dnd: "Do not disturb",
  url: "URL",
};
const ALL_TYPES = Object.keys(TYPE_NAMES);
const PLACEHOLDERS = {
  line: "account slot (empty: 1)",
  blf: "extension",
  speed_dial: "number",
  park: "orbit (or empty)",
  dnd: "no value",
  url: "https://…",
};
const LABEL_MAX = 64;

/**
 * Open keys rows by device id, kept across re-renders of the lines table so that what the
 * admin typed survives: {device, row, view, userView, parts, editors: {device, user}}.
 */
const panels = new Map();
let uid = 0;

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
  panel.editors.device = newEditor(panel, "device", panel.view.items);
  panel.parts.lists.replaceChildren(panel.editors.device.section);
  if (panel.userView) {
    panel.editors.user = newEditor(panel, "user", panel.userView.items);
    panel.parts.lists.append(panel.editors.user.section);
  }
  renderShown(panel);
}

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
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

// --- a list to edit: the device's own keys, or the user's -------------------------------------

/** A key as the editor holds it: the controls' text, and the controls once drawn. */
function draftOf(key) {
  uid += 1;
  return {
    uid,
    position: key.position === undefined || key.position === null ? "" : String(key.position),
    type: key.type,
    value: key.value || "",
    label: key.label || "",
    controls: null,
  };
}

function newEditor(panel, scope, items) {
  const id = panel.device.id;
  const ext = panel.device.extension;
  const titleId = `keys-${scope}-title-${id}`;
  const isDevice = scope === "device";
  const editor = {
    scope,
    noun: isDevice ? "device" : "user",
    drafts: items.map(draftOf),
    body: h("tbody", {}),
    table: null,
    empty: h("p", {
      class: "hint",
      text: isDevice ? "No keys of its own: the phone shows the user's keys." : "The user has no keys.",
    }),
    alert: h("p", { class: "field-error", role: "alert", id: `keys-${scope}-alert-${id}` }),
    hint: h("p", { class: "hint" }),
    add: null,
    saving: false,
  };
  editor.table = h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: "grid inner keys-edit" },
      h("caption", { class: "sr-only", text: isDevice ? `Own keys of ${ext}` : "The user's keys" }),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Position", "Type", "Value", "Label"].map((name) => h("th", { scope: "col", text: name })),
          h("th", { scope: "col" }, h("span", { class: "sr-only", text: "Actions" })),
        ),
      ),
      editor.body,
    ),
  );
  const addText = isDevice ? "Add device key" : "Add user key";
  const saveText = isDevice ? "Save device keys" : "Save user's keys";
  editor.add = h("button", {
    type: "button",
    text: addText,
    "aria-label": `${addText} to ${ext}`,
    onclick: () => addKey(panel, editor),
  });
  editor.section = h(
    "section",
    { class: "keys-list", role: "group", "aria-labelledby": titleId },
    h("h4", {
      id: titleId,
      text: isDevice ? "Device's own keys" : "User's keys (follow the user onto every phone)",
    }),
    editor.hint,
    editor.table,
    editor.empty,
    h(
      "div",
      { class: "actions" },
      editor.add,
      h("button", {
        type: "button",
        class: "primary",
        text: saveText,
        "aria-label": isDevice ? `${saveText} of ${ext}` : `${saveText} (from ${ext})`,
        onclick: () => save(panel, editor),
      }),
    ),
    editor.alert,
  );
  renderEditor(panel, editor);
  return editor;
}

function editorHint(panel, editor) {
  if (editor.scope === "device") {
    return (
      "They replace the user's key at the same position, on this phone only. Positions count " +
      "the phone's keys first, then each module's."
    );
  }
  const phones = panel.userView ? panel.userView.devices : [];
  const widest = Math.max(0, ...phones.map((p) => p.capacity));
  const owner = state.user && state.user.id === panel.device.user_id ? state.user.display_name : "The user";
  return phones.length
    ? `${owner}'s keys, on ${plural(phones.length, "phone")}; the largest has ${widest} positions.`
    : `${owner} has no phone yet.`;
}

function renderEditor(panel, editor) {
  editor.hint.textContent = editorHint(panel, editor);
  editor.body.replaceChildren(...editor.drafts.flatMap((draft, index) => editorRow(panel, editor, draft, index)));
  editor.table.hidden = editor.drafts.length === 0;
  editor.empty.hidden = editor.drafts.length > 0;
}

/** The types a list offers: the vendor's for a device, all for the user (every phone). */
function typeChoices(panel, editor, current) {
  const taken = panel.view.key_types;
  const offered = editor.scope === "device" ? [...taken] : [...ALL_TYPES];
  if (current && !offered.includes(current)) offered.push(current); // never changed silently
  return offered.map((type) => {
    const name = TYPE_NAMES[type] || type;
    return new Option(taken.includes(type) ? name : `${name} (not on this phone)`, type);
  });
}

function editorRow(panel, editor, draft, index) {
  const n = index + 1;
  const base = `key-${editor.scope}-${panel.device.id}-${draft.uid}`;
  const position = h("input", {
    type: "number",
    inputMode: "numeric",
    min: "1",
    step: "1",
    autocomplete: "off",
    value: draft.position,
    oninput: () => {
      draft.position = position.value;
    },
  });
  if (editor.scope === "device") position.max = String(panel.view.capacity);
  const type = h("select", {});
  type.append(...typeChoices(panel, editor, draft.type));
  type.value = draft.type;
  const value = h("input", {
    autocomplete: "off",
    maxLength: 255,
    value: draft.value,
    placeholder: PLACEHOLDERS[draft.type] || "",
    oninput: () => {
      draft.value = value.value;
    },
  });
  value.spellcheck = false;
  type.addEventListener("change", () => {
    draft.type = type.value;
    value.placeholder = PLACEHOLDERS[draft.type] || "";
  });
  const label = h("input", {
    autocomplete: "off",
    maxLength: LABEL_MAX,
    value: draft.label,
    oninput: () => {
      draft.label = label.value;
    },
  });
  draft.controls = { position, type, value, label };
  // Each control's refusal is in the row right below the key (a cell is too narrow for it).
  const errors = [];
  const cell = (what, name, control) => {
    control.id = `${base}-${what}`;
    const error = h("p", { class: "field-error", role: "alert", id: `${control.id}-error` });
    errors.push(error);
    control.setAttribute("aria-describedby", error.id);
    control.addEventListener("input", () => clearFieldError(control));
    control.addEventListener("change", () => clearFieldError(control));
    return h(
      "td",
      { class: what },
      h("label", { class: "sr-only", for: control.id, text: `${name} of ${editor.noun} key ${n}` }),
      control,
    );
  };
  const row = h(
    "tr",
    { "data-key": draft.uid },
    cell("position", "Position", position),
    cell("type", "Type", type),
    cell("value", "Value", value),
    cell("label", "Label", label),
    h(
      "td",
      { class: "row-actions" },
      h("button", {
        type: "button",
        class: "small danger",
        text: "Remove",
        "aria-label": `Remove ${editor.noun} key ${n}`,
        onclick: () => removeKey(panel, editor, draft),
      }),
    ),
  );
  return [row, h("tr", { class: "key-errors" }, h("td", { colSpan: 5 }, errors))];
}

function clearFieldError(control) {
  if (control.getAttribute("aria-invalid") !== "true") return;
  control.removeAttribute("aria-invalid");
  const error = document.getElementById(`${control.id}-error`);
  if (error) say(error, "");
}

function fieldError(control, text) {
  const error = document.getElementById(`${control.id}-error`);
  if (error) say(error, text);
  control.setAttribute("aria-invalid", "true");
  control.focus();
}

/** A new key at the next free position: after this list's last, and (for the device's own
 * keys) not over a key the phone already shows. */
function addKey(panel, editor) {
  const used = new Set(editor.drafts.map((d) => Number(d.position)).filter(Number.isInteger));
  let position;
  if (editor.scope === "device") {
    for (const key of panel.view.effective) used.add(key.position);
    position = 1;
    while (used.has(position)) position += 1;
  } else position = Math.max(0, ...used) + 1;
  const types = editor.scope === "device" ? panel.view.key_types : ALL_TYPES;
  const type = types.includes("blf") ? "blf" : types[0] || "line";
  const draft = draftOf({ position, type, value: "", label: "" });
  editor.drafts.push(draft);
  say(editor.alert, "");
  renderEditor(panel, editor);
  draft.controls.position.focus();
}

function removeKey(panel, editor, draft) {
  const index = editor.drafts.indexOf(draft);
  editor.drafts.splice(index, 1);
  say(editor.alert, "");
  renderEditor(panel, editor);
  const next = editor.drafts[Math.min(index, editor.drafts.length - 1)];
  if (next) next.controls.position.focus();
  else editor.add.focus();
  say(panel.parts.status, "Key removed from the list; save to store it.");
}

// --- saving a whole list ------------------------------------------------------------------

/** Positions as numbers (an empty one follows the previous key), or null after a local error. */
function positions(editor) {
  let previous = 0;
  for (const draft of editor.drafts) {
    const text = draft.position.trim();
    if (text === "") draft.at = previous + 1;
    else if (/^[0-9]{1,4}$/.test(text) && Number(text) >= 1) draft.at = Number(text);
    else {
      fieldError(draft.controls.position, "Type a whole number from 1.");
      return null;
    }
    previous = draft.at;
  }
  return editor.drafts.map((d) => d.at);
}

async function save(panel, editor) {
  if (editor.saving) return;
  say(editor.alert, "");
  say(panel.parts.status, "");
  for (const draft of editor.drafts) for (const control of Object.values(draft.controls)) clearFieldError(control);
  if (positions(editor) === null) return;
  // Reorder by position (stable): the list is saved, and shown, in the phone's order.
  editor.drafts = editor.drafts
    .map((draft, index) => ({ draft, index }))
    .sort((a, b) => a.draft.at - b.draft.at || a.index - b.index)
    .map(({ draft }) => ({ ...draft, position: String(draft.at) }));
  renderEditor(panel, editor);
  const keys = editor.drafts.map((d) => ({
    position: d.at,
    type: d.type,
    value: d.value.trim(),
    label: d.label.trim() || null,
  }));
  const { device } = panel;
  const path = editor.scope === "device" ? `/devices/${device.id}/keys` : `/users/${device.user_id}/keys`;
  let answer;
  editor.saving = true; // one PUT at a time per list
  try {
    answer = await api("PUT", path, { keys });
  } catch (error) {
    showRefusal(editor, error);
    return;
  } finally {
    editor.saving = false;
  }
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

/** The API's refusal next to the control of the key it names ("keys[2].position"). */
function showRefusal(editor, error) {
  const match = error instanceof ApiError && error.field ? /^keys\[([0-9]+)\](?:\.(\w+))?$/.exec(error.field) : null;
  const draft = match ? editor.drafts[Number(match[1])] : undefined;
  const control = draft ? draft.controls[match[2] || "position"] : undefined;
  if (control) fieldError(control, error.detail);
  else say(editor.alert, `Not saved: ${error.message}`);
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
