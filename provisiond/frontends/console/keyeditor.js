// The lists of programmable keys to edit (issue 16), below the keys the phone shows (keys.js):
// the device's own keys, or the user's, edited as a whole and saved in one PUT. A refusal (422
// with `field` "keys[i].position" ...) is shown next to that key's control and nothing is
// saved; what a saved list changes is up to keys.js (the editor's `onSaved`). Text
// from the API only ever goes through textContent (dom.js).

import { api, ApiError } from "./api.js";
import { h, say } from "./dom.js";
import { ALL_TYPES, LABEL_MAX, PLACEHOLDERS, TYPE_NAMES, plural } from "./keytypes.js";
import { state } from "./state.js";

let uid = 0;

// --- a list to edit: the device's own keys, or the user's -------------------------------------

/** A key as the editor holds it: the controls' text, and the controls once drawn. */
export function draftOf(key) {
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

export function newEditor(panel, scope, items, onSaved) {
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
    onSaved,
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

export function renderEditor(panel, editor) {
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
  await editor.onSaved(panel, editor, answer, device);
}

/** The API's refusal next to the control of the key it names ("keys[2].position"). */
function showRefusal(editor, error) {
  const match = error instanceof ApiError && error.field ? /^keys\[([0-9]+)\](?:\.(\w+))?$/.exec(error.field) : null;
  const draft = match ? editor.drafts[Number(match[1])] : undefined;
  const control = draft ? draft.controls[match[2] || "position"] : undefined;
  if (control) fieldError(control, error.detail);
  else say(editor.alert, `Not saved: ${error.message}`);
}
