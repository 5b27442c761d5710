// A multi-account device's accounts (DESIGN.md, "Accounts"): slot 1 is the device itself,
// slots 2 up to the model's `accounts` are further SIP accounts (a DECT base's handsets, an
// ATA's ports, a desk phone's extra lines), each with its own extension and owner. A device
// row of the open user expands to list them, add one in a free slot and remove one; removing
// an owner's primary line while they have others asks for their new primary line first (rule 3).

import { api, ApiError, withQuery } from "./api.js";
import { byId, h, say } from "./dom.js";
import { ensureDevices, modelAccounts, modelName, state } from "./state.js";

/** Devices of the open user whose accounts are shown (kept across re-renders). */
export const expanded = new Set();

/** What the devices panel lends this module (set once by initAccounts). */
const panel = {
  /** Show a newer view of the open user everywhere. */
  userChanged: () => {},
  /** A success message in the devices panel's status line. */
  status: () => {},
  /** Open the rule-3 choice: {title, label, options: [{value, text}], confirm(value)}. */
  askNewPrimary: () => {},
  /** Close it again (after the removal it was for). */
  closeNewPrimary: () => {},
};

export function initAccounts(lent) {
  Object.assign(panel, lent);
}

/** True when the device's model carries more than one SIP account. */
export function isMultiAccount(device) {
  return modelAccounts(device.model) > 1;
}

/** "account 3 of 300" for an account, with its device's extension when known. */
export function accountName(account) {
  const device = state.devices.get(account.device_id);
  const base = device ? device.extension : `device ${account.device_id}`;
  return `account ${account.slot} of ${base}`;
}

/** Every line of `user` (devices as slot 1, then further accounts): {device_id, slot, extension, text}. */
export function linesOf(user) {
  const devices = user.devices.map((d) => ({
    device_id: d.id,
    slot: 1,
    extension: d.extension,
    text: `${d.extension} — ${modelName(d.model)} — ${d.mac}`,
  }));
  const accounts = (user.accounts || []).map((a) => {
    const device = state.devices.get(a.device_id);
    const model = device ? ` — ${modelName(device.model)}` : "";
    return {
      device_id: a.device_id,
      slot: a.slot,
      extension: a.extension,
      text: `${a.extension} — ${accountName(a)}${model}`,
    };
  });
  return [...devices, ...accounts];
}

/** True when line (device_id, slot) is `user`'s primary line. */
export function isPrimaryLine(user, deviceId, slot) {
  return user.primary_device_id === deviceId && (user.primary_slot || 1) === slot;
}

/** The "Accounts" button of a device row: shows or hides the accounts row below it. */
export function accountsToggle(device) {
  const open = expanded.has(device.id);
  return h("button", {
    type: "button",
    class: "small toggle",
    text: "Accounts",
    "aria-label": `Accounts of ${device.extension}`,
    "aria-expanded": open ? "true" : "false",
    "aria-controls": `accounts-of-${device.id}`,
    onclick: (event) => toggle(device, event.currentTarget),
  });
}

function toggle(device, button) {
  const tableRow = button.closest("tr");
  const open = !expanded.has(device.id);
  button.setAttribute("aria-expanded", open ? "true" : "false");
  if (open) {
    expanded.add(device.id);
    tableRow.after(accountsRow(device));
  } else {
    expanded.delete(device.id);
    const row = document.getElementById(`accounts-of-${device.id}`);
    if (row) row.remove();
  }
}

// --- the accounts row ------------------------------------------------------------------

/** The accounts of `device` (one of the open user's): a table, the add form, one alert. */
export function accountsRow(device) {
  const slots = modelAccounts(device.model);
  const accounts = [...(device.accounts || [])].sort((a, b) => a.slot - b.slot);
  const titleId = `accounts-title-${device.id}`;
  const alert = h("p", { class: "field-error", role: "alert", id: `accounts-alert-${device.id}` });
  const used = accounts.length + 1;
  const body = h(
    "tbody",
    {},
    accountRow(device, slotOne(device), alert),
    accounts.map((account) => accountRow(device, account, alert)),
  );
  return h(
    "tr",
    { class: "accounts-row", id: `accounts-of-${device.id}` },
    h(
      "td",
      { colSpan: 7 },
      h(
        "div",
        { class: "accounts", role: "group", "aria-labelledby": titleId },
        h("h3", { id: titleId, text: `Accounts of ${device.extension}` }),
        h("p", {
          class: "hint",
          text:
            `${modelName(device.model)} carries ${slots} SIP account${slots === 1 ? "" : "s"}` +
            ` (slot 1 is the device itself); ${used} in use.`,
        }),
        h(
          "div",
          { class: "scroll" },
          h(
            "table",
            { class: "grid inner" },
            h("caption", { class: "sr-only", text: `Accounts of ${device.extension}` }),
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["Slot", "Extension", "Owner", "Label", "Active"].map((name) =>
                  h("th", { scope: "col", text: name }),
                ),
                h("th", { scope: "col" }, h("span", { class: "sr-only", text: "Actions" })),
              ),
            ),
            body,
          ),
        ),
        alert,
        addForm(device, accounts, slots),
      ),
    ),
  );
}

/** Slot 1 as an account: the device's own extension, owner, label and active flag. */
function slotOne(device) {
  return {
    device_id: device.id,
    slot: 1,
    extension: device.extension,
    user_id: device.user_id,
    label: device.label,
    active: device.active,
  };
}

function ownerName(userId) {
  if (userId === null || userId === undefined) return "nobody";
  if (state.user && userId === state.user.id) return `${state.user.display_name} (this user)`;
  const owner = state.usersById.get(userId);
  return owner ? owner.display_name : `user ${userId}`;
}

function accountRow(device, account, alert) {
  const own = account.slot === 1;
  return h(
    "tr",
    { "data-slot": account.slot },
    h("td", { class: "num", text: own ? "1 (device)" : String(account.slot) }),
    h("td", { text: account.extension }),
    h("td", { text: ownerName(account.user_id) }),
    h("td", { text: account.label || "" }),
    h("td", {}, account.active ? "Yes" : h("span", { class: "badge off", text: "Inactive" })),
    h(
      "td",
      { class: "row-actions" },
      own
        ? null
        : h("button", {
            type: "button",
            class: "small danger",
            text: "Remove",
            "aria-label": `Remove account ${account.slot} of ${device.extension}`,
            onclick: () => removeAccount(account, alert),
          }),
    ),
  );
}

// --- adding an account -------------------------------------------------------------------

/** The lowest slot from 2 that no account of the device holds, or null when all are used. */
function nextFreeSlot(accounts, slots) {
  const taken = new Set(accounts.map((a) => a.slot));
  for (let slot = 2; slot <= slots; slot += 1) if (!taken.has(slot)) return slot;
  return null;
}

function field(id, label, control, { hint = null, kind = "" } = {}) {
  const error = h("p", { class: "field-error", role: "alert", id: `${id}-error` });
  control.id = id;
  control.setAttribute("aria-describedby", [hint && hint.id, error.id].filter(Boolean).join(" "));
  control.addEventListener("input", () => clearFieldError(control));
  control.addEventListener("change", () => clearFieldError(control));
  const attrs = { class: `field ${kind}`.trim() };
  return h("div", attrs, h("label", { for: id, text: label }), control, hint, error);
}

function clearFieldError(control) {
  if (control.getAttribute("aria-invalid") !== "true") return;
  control.removeAttribute("aria-invalid");
  say(byId(`${control.id}-error`), "");
}

function addForm(device, accounts, slots) {
  const key = device.id;
  const free = nextFreeSlot(accounts, slots);
  const slotHint = h("p", {
    class: "hint",
    id: `acc-slot-${key}-hint`,
    text: free === null ? `All ${slots} accounts are in use.` : `Next free slot: ${free}.`,
  });
  const slot = h("input", {
    type: "number",
    inputMode: "numeric",
    min: "2",
    max: String(slots),
    step: "1",
    autocomplete: "off",
    value: free === null ? "" : String(free),
  });
  const extension = h("input", { inputMode: "numeric", autocomplete: "off" });
  const owner = h("select", {});
  owner.append(new Option(`${state.user.display_name} (this user)`, "user"), new Option("Nobody", ""));
  const label = h("input", { autocomplete: "off", maxLength: 64 });
  const formAlert = h("p", { class: "field-error", role: "alert", id: `acc-form-${key}-error` });
  const controls = { slot, extension, owner, label };
  const form = h(
    "form",
    {
      class: "account-add",
      method: "post",
      action: "/console/",
      noValidate: true,
      "aria-label": `Add an account to ${device.extension}`,
      onsubmit: (event) => {
        event.preventDefault();
        addAccount(device, accounts, controls, formAlert);
      },
    },
    field(`acc-slot-${key}`, "Slot", slot, { hint: slotHint, kind: "slot" }),
    field(`acc-ext-${key}`, "Extension", extension),
    field(`acc-owner-${key}`, "Owner", owner, { kind: "owner" }),
    field(`acc-label-${key}`, "Label (optional)", label),
    h("button", {
      type: "submit",
      class: "primary",
      text: "Add account",
      "aria-label": `Add account to ${device.extension}`,
    }),
    formAlert,
  );
  return form;
}

function fieldError(control, text) {
  say(byId(`${control.id}-error`), text);
  control.setAttribute("aria-invalid", "true");
  control.focus();
}

async function addAccount(device, accounts, controls, formAlert) {
  const { slot, extension, owner, label } = controls;
  for (const control of Object.values(controls)) clearFieldError(control);
  say(formAlert, "");
  const number = slot.value.trim();
  if (!/^[0-9]{1,6}$/.test(number)) {
    fieldError(slot, "Type the slot number (2 and up).");
    return;
  }
  const wanted = Number(number);
  const holder = wanted === 1 ? device : accounts.find((a) => a.slot === wanted);
  if (holder) {
    // PUT would replace it: adding never overwrites an existing account.
    const what = wanted === 1 ? "the device itself" : `account ${holder.extension}`;
    fieldError(slot, `Slot ${wanted} is ${what}; choose a free slot.`);
    return;
  }
  const user = state.user;
  const body = {
    extension: extension.value.trim(),
    user_id: owner.value === "user" ? user.id : null,
    label: label.value.trim() || null,
    active: true,
  };
  try {
    await api("PUT", `/devices/${device.id}/accounts/${wanted}`, body);
  } catch (error) {
    const target = error instanceof ApiError ? fieldFor(error.field, controls) : null;
    if (target) fieldError(target, error.detail);
    else say(formAlert, `Not added: ${error.message}`);
    return;
  }
  const after = await reloadOpenUser(user.main_extension);
  const whose = body.user_id === null ? "no owner" : `owner ${user.display_name}`;
  panel.status(`Account ${wanted} of ${device.extension} added: ${body.extension}, ${whose}.${changeText(after)}`);
  const again = document.getElementById(`acc-ext-${device.id}`);
  if (again) again.focus();
}

/** The add form's control an API refusal is about, or null for the form's own alert. */
function fieldFor(name, controls) {
  const map = {
    slot: controls.slot,
    extension: controls.extension,
    sip_username: controls.extension, // it defaults to the extension
    user_id: controls.owner,
    move: controls.owner,
    label: controls.label,
  };
  return map[name] || null;
}

// --- removing an account -------------------------------------------------------------------

/**
 * Remove an account from its device (the SIP account goes; the device stays). When it is its
 * owner's primary line and they have others, their new primary line is chosen first (rule 3).
 * `alert`: where a refusal is shown.
 */
export async function removeAccount(account, alert) {
  const name = `${account.extension} (${accountName(account)})`;
  say(alert, "");
  let owner = null;
  if (account.user_id !== null) {
    try {
      owner = account.user_id === state.user.id ? state.user : await api("GET", `/users/${account.user_id}`);
      await ensureDevices((owner.accounts || []).map((a) => a.device_id));
    } catch (error) {
      say(alert, `Not removed: ${error.message}`);
      return;
    }
  }
  const others = owner
    ? linesOf(owner).filter((l) => !(l.device_id === account.device_id && l.slot === account.slot))
    : [];
  if (owner && isPrimaryLine(owner, account.device_id, account.slot) && others.length > 0) {
    const whose = owner.id === state.user.id ? "this user's" : `${owner.display_name}'s`;
    panel.askNewPrimary({
      title: `${name} is ${whose} primary line. Choose the new primary line before removing it.`,
      label: "New primary line",
      options: others.map((l) => ({ value: `${l.device_id}/${l.slot}`, text: l.text })),
      confirm: (value) => deleteAccount(account, name, owner, value, alert),
    });
    return;
  }
  await deleteAccount(account, name, owner, null, alert);
}

async function deleteAccount(account, name, owner, newPrimary, alert) {
  const [device, slot] = newPrimary === null ? [null, null] : newPrimary.split("/");
  const path = withQuery(`/devices/${account.device_id}/accounts/${account.slot}`, {
    new_primary: device,
    new_primary_slot: slot,
  });
  const user = state.user;
  try {
    await api("DELETE", path);
  } catch (error) {
    say(alert, `Not removed: ${error.message}`);
    return;
  }
  panel.closeNewPrimary();
  const after = await reloadOpenUser(user.main_extension);
  let text = `${name} removed.`;
  if (owner && newPrimary !== null) {
    const primary = linesOf(owner).find((l) => `${l.device_id}/${l.slot}` === newPrimary);
    if (primary) text += ` ${primary.extension} is now the primary line.`;
    if (owner.id !== user.id) {
      const now = await api("GET", `/users/${owner.id}`).catch(() => null);
      if (now && now.main_extension !== owner.main_extension) {
        text +=
          ` ${owner.display_name}'s main extension changed from ${owner.main_extension}` +
          ` to ${now.main_extension}.`;
      }
    }
  }
  panel.status(text + changeText(after));
  // The button is gone: keep the keyboard where it was (the device's accounts, or the lines).
  const heading =
    document.getElementById(`accounts-title-${account.device_id}`) || byId("devices-title");
  heading.tabIndex = -1;
  heading.focus();
}

/** Fetch the open user again and show them; a changed main extension is reported as one. */
async function reloadOpenUser(oldMain) {
  let user;
  try {
    user = await api("GET", `/users/${state.user.id}`);
  } catch (error) {
    say(byId("devices-alert"), `Saved, but this user could not be reloaded: ${error.message}`);
    return { ...state.user, main_extension_changed: undefined };
  }
  const changed =
    user.main_extension !== oldMain ? { main_extension_changed: { old: oldMain, new: user.main_extension } } : {};
  const view = { ...user, ...changed };
  panel.userChanged(view);
  return view;
}

function changeText(user) {
  const change = user.main_extension_changed;
  return change ? ` Main extension changed from ${change.old} to ${change.new}.` : "";
}
