// The user's lines: the devices they own and the accounts they own on any device (a DECT
// handset on a shared base), with the primary choice and status; a multi-account device's row
// expands to its accounts (accounts.js). Adding an existing device through the extension
// autocomplete and "+", creating a new one, and removing one (the primary only once its
// successor is chosen).

import {
  accountName,
  accountsRow,
  accountsToggle,
  expanded,
  initAccounts,
  isMultiAccount,
  isPrimaryLine,
  linesOf,
  removeAccount,
} from "./accounts.js";
import { api, ApiError, withQuery } from "./api.js";
import { byId, clear, debounce, formatTime, h, say } from "./dom.js";
import { keysRow, keysShown, keysToggle, resetKeys } from "./keys.js";
import { ensureDevices, modelName, state } from "./state.js";
import { applyUserUpdate } from "./userform.js";

const AUTOCOMPLETE_LIMIT = 10;

/** Show a newer view of the open user everywhere (form, devices, users list). */
export function userChanged(user) {
  applyUserUpdate(user);
  renderDevices();
  document.dispatchEvent(new CustomEvent("user-changed", { detail: user }));
}

function status(text) {
  say(byId("devices-alert"), "");
  say(byId("devices-status"), text);
}

function alertText(text) {
  say(byId("devices-alert"), text);
}

/** A refusal about a device action: next to `fields`' controls when it names one. */
function showError(error, fields = {}) {
  const target = error instanceof ApiError && error.field ? fields[error.field] : undefined;
  if (target) {
    say(byId(target), error.detail);
    return;
  }
  alertText(error.message);
}

/** Reset the panel for the open user (or hide it for a new one). */
export function showDevicesFor(user) {
  byId("devices-panel").hidden = user === null;
  say(byId("devices-status"), "");
  say(byId("devices-alert"), "");
  closeRemovePrimary();
  resetAutocomplete();
  for (const id of ["new-extension", "new-mac"]) byId(id).value = "";
  byId("new-model").value = "";
  clearCreateErrors();
  expanded.clear();
  resetKeys();
  state.devices.clear();
  if (user) renderDevices();
}

/**
 * The lines table of the open user: their devices and the accounts they own (on any device),
 * primary first, then by extension; a device whose accounts are shown has them in the row below.
 */
export function renderDevices() {
  const user = state.user;
  const rows = byId("device-rows");
  clear(rows);
  for (const device of user.devices) state.devices.set(device.id, device);
  const accounts = user.accounts || [];
  const lines = [
    ...user.devices.map((device) => ({ device_id: device.id, slot: 1, extension: device.extension, device })),
    ...accounts.map((account) => ({ ...account, account })),
  ];
  const primaryFirst = (line) => Number(isPrimaryLine(user, line.device_id, line.slot));
  lines.sort(
    (a, b) =>
      primaryFirst(b) - primaryFirst(a) ||
      a.extension.localeCompare(b.extension, undefined, { numeric: true }) ||
      a.slot - b.slot,
  );
  for (const line of lines) {
    if (line.account) {
      rows.append(accountLineRow(user, line.account));
      continue;
    }
    rows.append(deviceRow(user, line.device));
    if (expanded.has(line.device.id) && isMultiAccount(line.device)) rows.append(accountsRow(line.device));
    if (keysShown(line.device.id)) rows.append(keysRow(line.device));
  }
  byId("no-devices").hidden = lines.length > 0;
  byId("device-table").hidden = lines.length === 0;
  // An account's device may be another user's: fetch what the row shows of it, then redraw.
  ensureDevices(accounts.map((a) => a.device_id)).then((fetched) => {
    if (fetched && state.user === user) renderDevices();
  });
}

function primaryChoice(primary, label, onclick) {
  return primary
    ? h("span", { class: "badge", text: "Primary" })
    : h("button", { type: "button", class: "small", text: "Make primary", "aria-label": label, onclick });
}

function deviceRow(user, device) {
  const primary = isPrimaryLine(user, device.id, 1);
  const extra = (device.accounts || []).length;
  const choice = primaryChoice(primary, `Make ${device.extension} the primary device`, () =>
    makePrimary(device.id, 1, `${device.extension} is now the primary device.`),
  );
  return h(
    "tr",
    { "data-device-id": device.id, class: primary ? "primary" : "" },
    h("td", {}, choice),
    h(
      "td",
      { class: "ext" },
      device.extension,
      device.label ? h("span", { class: "sub", text: device.label }) : null,
      extra > 0 ? h("span", { class: "sub", text: `+ ${extra} account${extra === 1 ? "" : "s"}` }) : null,
      isMultiAccount(device) ? accountsToggle(device) : null,
      keysToggle(device),
    ),
    h("td", {}, modelName(device.model)),
    h("td", { class: "mac" }, device.mac),
    h("td", { class: "site" }, siteChoice(device)),
    h("td", { class: "status" }, deviceStatus(device)),
    h(
      "td",
      { class: "row-actions" },
      h("button", {
        type: "button",
        class: "small danger",
        text: "Remove",
        "aria-label": `Remove ${device.extension} from this user`,
        onclick: () => removeDevice(device),
      }),
    ),
  );
}

/** An account the user owns on a device (theirs or another's): its device's model and MAC. */
function accountLineRow(user, account) {
  const device = state.devices.get(account.device_id);
  const name = accountName(account);
  const primary = isPrimaryLine(user, account.device_id, account.slot);
  const choice = primaryChoice(primary, `Make ${account.extension} the primary line`, () =>
    makePrimary(account.device_id, account.slot, `${account.extension} (${name}) is now the primary line.`),
  );
  const status = [];
  if (!account.active) status.push(h("span", { class: "badge off", text: "Inactive" }));
  if (device) status.push(...deviceStatus(device).filter((part) => !part.classList.contains("off")));
  return h(
    "tr",
    {
      "data-device-id": account.device_id,
      "data-slot": account.slot,
      class: primary ? "primary account" : "account",
    },
    h("td", {}, choice),
    h(
      "td",
      { class: "ext" },
      account.extension,
      h("span", { class: "sub", text: name.charAt(0).toUpperCase() + name.slice(1) }),
      account.label ? h("span", { class: "sub", text: account.label }) : null,
    ),
    h("td", {}, device ? modelName(device.model) : ""),
    h("td", { class: "mac" }, device ? device.mac : ""),
    h("td", { class: "site" }, device ? siteText(device) : ""),
    h("td", { class: "status" }, status),
    h(
      "td",
      { class: "row-actions" },
      h("button", {
        type: "button",
        class: "small danger",
        text: "Remove",
        "aria-label": `Remove account ${account.slot} of ${device ? device.extension : account.device_id}`,
        onclick: () => removeAccount(account, byId("devices-alert")),
      }),
    ),
  );
}

function siteText(device) {
  if (device.site_id === null || device.site_id === undefined) {
    return h("span", { class: "muted", text: "No site" });
  }
  const site = state.sites.get(device.site_id);
  return site ? `${site.name} (${site.policy})` : `site ${device.site_id}`;
}

/** The site the device belongs to (its files are served only there), changeable in place. */
function siteChoice(device) {
  const id = `site-of-${device.id}`;
  const select = h("select", { id, onchange: () => changeSite(device, select) });
  select.append(new Option("No site (first boot may bind it)", ""));
  for (const site of state.sites.values()) {
    select.append(new Option(`${site.name} (${site.policy})`, String(site.id)));
  }
  select.value = device.site_id === null || device.site_id === undefined ? "" : String(device.site_id);
  return [h("label", { class: "sr-only", for: id, text: `Site of ${device.extension}` }), select];
}

async function changeSite(device, select) {
  const siteId = select.value === "" ? null : Number(select.value);
  try {
    await api("PATCH", `/devices/${device.id}`, { site_id: siteId });
    device.site_id = siteId;
    const name = siteId === null ? "no site" : `site ${state.sites.get(siteId).name}`;
    status(`${device.extension} now belongs to ${name}.`);
  } catch (error) {
    select.value = device.site_id === null ? "" : String(device.site_id);
    showError(error);
  }
}

/** Last seen, IP and firmware as the phone last reported them. */
function deviceStatus(device) {
  const parts = [];
  if (!device.active) parts.push(h("span", { class: "badge off", text: "Inactive" }));
  const seen = device.last_seen;
  if (!seen) {
    parts.push(h("span", { class: "muted", text: "Never seen" }));
    return parts;
  }
  parts.push(
    h("span", { class: "line" }, "Last seen ", h("time", { dateTime: seen.at, text: formatTime(seen.at) })),
    h("span", { class: "line", text: `IP ${seen.ip || "unknown"}` }),
    h("span", { class: "line", text: `Firmware ${seen.firmware || "unknown"}` }),
  );
  return parts;
}

/** Make line (device, slot) the open user's primary: its extension becomes the main one. */
async function makePrimary(deviceId, slot, text) {
  const user = state.user;
  try {
    const answer = await api("PUT", `/users/${user.id}/primary-device`, { device_id: deviceId, slot });
    userChanged(answer);
    const change = answer.main_extension_changed;
    status(change ? `${text} Main extension changed from ${change.old} to ${change.new}.` : text);
  } catch (error) {
    showError(error);
  }
}

// --- removing a device or an account: the new primary first (rule 3) ---------------------

let removing = null; // what "Remove and change primary" does with the chosen value

async function removeDevice(device) {
  const user = state.user;
  if (isPrimaryLine(user, device.id, 1) && linesOf(user).length > 1) {
    // The API names a new primary *device* when a device leaves (DELETE ?new_primary=ID).
    const others = user.devices.filter((d) => d.id !== device.id);
    if (others.length === 0) {
      alertText(
        `${device.extension} is the primary line and this user's other lines are accounts: ` +
          `make one of them primary first, then remove ${device.extension}.`,
      );
      return;
    }
    askNewPrimary({
      title: `${device.extension} is the primary device. Choose the new primary device before removing it.`,
      label: "New primary device",
      options: others.map((d) => ({ value: String(d.id), text: `${d.extension} — ${modelName(d.model)} — ${d.mac}` })),
      confirm: (value) => unassign(device, Number(value)),
    });
    return;
  }
  await unassign(device, null);
}

/** Removing a primary line while others remain: the new primary is chosen first (rule 3). */
function askNewPrimary({ title, label, options, confirm }) {
  removing = confirm;
  say(byId("devices-alert"), "");
  byId("remove-primary-title").textContent = title;
  byId("new-primary-label").textContent = label;
  const select = byId("new-primary");
  select.replaceChildren(...options.map((o) => new Option(o.text, o.value)));
  byId("remove-primary").hidden = false;
  select.focus();
}

function closeRemovePrimary() {
  removing = null;
  byId("remove-primary").hidden = true;
}

async function unassign(device, newPrimary) {
  const user = state.user;
  try {
    const path = withQuery(`/users/${user.id}/devices/${device.id}`, { new_primary: newPrimary });
    const answer = await api("DELETE", path);
    closeRemovePrimary();
    userChanged(answer);
    let text = `${device.extension} removed from this user (the device stays in the inventory).`;
    if (newPrimary !== null) {
      const primary = answer.devices.find((d) => isPrimaryLine(answer, d.id, 1));
      if (primary) text += ` ${primary.extension} is now the primary device.`;
    }
    const change = answer.main_extension_changed;
    if (change) text += ` Main extension changed from ${change.old} to ${change.new}.`;
    status(text);
  } catch (error) {
    showError(error);
  }
}

// --- adding an existing device: the extension autocomplete ------------------------------

let options = [];
let active = -1;
let chosen = null;
let lookupSeq = 0;

function ownerText(device) {
  if (device.user_id === null) return "unassigned";
  if (state.user && device.user_id === state.user.id) return "already this user's";
  const owner = state.usersById.get(device.user_id);
  return owner ? `assigned to ${owner.display_name}` : `assigned to user ${device.user_id}`;
}

function resetAutocomplete() {
  options = [];
  chosen = null;
  byId("device-search").value = "";
  closeOptions();
  say(byId("err-device-search"), "");
  byId("move-confirm").hidden = true;
}

function closeOptions() {
  active = -1;
  const input = byId("device-search");
  input.setAttribute("aria-expanded", "false");
  input.removeAttribute("aria-activedescendant");
  byId("device-options").hidden = true;
}

function renderOptions(prefix) {
  const list = byId("device-options");
  clear(list);
  if (options.length === 0) {
    list.append(h("li", { class: "empty", role: "option", "aria-disabled": "true", text: `No device extension starts with ${prefix}` }));
  }
  options.forEach((device, index) => {
    list.append(
      h(
        "li",
        {
          id: `device-opt-${device.id}`,
          role: "option",
          "aria-selected": index === active ? "true" : "false",
          class: index === active ? "active" : "",
          onmousedown: (event) => event.preventDefault(), // keep the focus in the input
          onclick: () => choose(index),
        },
        h("strong", { text: device.extension }),
        ` · ${modelName(device.model)} · ${device.mac} · ${ownerText(device)}`,
      ),
    );
  });
  list.hidden = false;
  const input = byId("device-search");
  input.setAttribute("aria-expanded", "true");
  if (active >= 0) {
    input.setAttribute("aria-activedescendant", `device-opt-${options[active].id}`);
    byId(`device-opt-${options[active].id}`).scrollIntoView({ block: "nearest" });
  } else input.removeAttribute("aria-activedescendant");
}

async function lookup() {
  const prefix = byId("device-search").value.trim();
  const seq = ++lookupSeq;
  if (!/^[0-9]{1,16}$/.test(prefix)) {
    options = [];
    closeOptions();
    return;
  }
  try {
    const page = await api("GET", withQuery("/devices", { extension_prefix: prefix, limit: AUTOCOMPLETE_LIMIT }));
    if (seq !== lookupSeq) return; // a later keystroke already asked again
    options = page.items;
    active = -1;
    renderOptions(prefix);
  } catch (error) {
    showError(error);
  }
}

const lookupSoon = debounce(lookup, 150);

function choose(index) {
  chosen = options[index];
  byId("device-search").value = chosen.extension;
  closeOptions();
  say(byId("err-device-search"), "");
  byId("hint-device-search").textContent =
    `Chosen: ${chosen.extension} (${modelName(chosen.model)}, ${chosen.mac}). Press + to add it.`;
}

function onKey(event) {
  const open = !byId("device-options").hidden && options.length > 0;
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    if (options.length === 0) return;
    const step = event.key === "ArrowDown" ? 1 : -1;
    active = open ? (active + step + options.length) % options.length : step > 0 ? 0 : options.length - 1;
    renderOptions(byId("device-search").value.trim());
  } else if (event.key === "Enter" && open && active >= 0) {
    event.preventDefault(); // choose, do not add yet: "+" (or Enter again) adds
    choose(active);
  } else if (event.key === "Escape" && open) {
    event.preventDefault();
    closeOptions();
  }
}

function pickedDevice() {
  if (chosen) return chosen;
  const typed = byId("device-search").value.trim();
  return options.find((d) => d.extension === typed) || null;
}

async function addChosen(move) {
  const device = pickedDevice();
  say(byId("err-device-search"), "");
  if (!device) {
    say(byId("err-device-search"), "Type an extension and choose a device from the list.");
    byId("device-search").focus();
    return;
  }
  const user = state.user;
  if (device.user_id === user.id) {
    say(byId("err-device-search"), `${device.extension} is already one of this user's devices.`);
    return;
  }
  try {
    const path = withQuery(`/users/${user.id}/devices/${device.id}`, { move: move ? "true" : null });
    const answer = await api("PUT", path);
    resetAutocomplete();
    byId("hint-device-search").textContent =
      "Type an extension, choose a device with the arrow keys and Enter, then add it with +.";
    userChanged(answer);
    status(`${device.extension} added to ${answer.display_name}.`);
  } catch (error) {
    if (error instanceof ApiError && error.field === "move" && !move && error.status === 409 && device.user_id !== null) {
      const owner = state.usersById.get(device.user_id);
      byId("move-text").textContent =
        `${device.extension} belongs to ${owner ? owner.display_name : `user ${device.user_id}`}. Move it to this user?`;
      byId("move-confirm").hidden = false;
      byId("confirm-move").focus();
      return;
    }
    showError(error, { extension: "err-device-search", device_id: "err-device-search", move: "err-device-search" });
  }
}

// --- creating a new device ----------------------------------------------------------------

function clearCreateErrors() {
  for (const id of ["err-new-extension", "err-new-model", "err-new-mac"]) say(byId(id), "");
}

async function createDevice(event) {
  event.preventDefault();
  clearCreateErrors();
  const user = state.user;
  const body = {
    extension: byId("new-extension").value.trim(),
    model: byId("new-model").value,
    mac: byId("new-mac").value.trim(),
    user_id: user.id,
  };
  if (!body.model) {
    say(byId("err-new-model"), "Choose a model.");
    byId("new-model").focus();
    return;
  }
  try {
    const device = await api("POST", "/devices", body);
    userChanged(await api("GET", `/users/${user.id}`));
    for (const id of ["new-extension", "new-mac"]) byId(id).value = "";
    byId("new-model").value = "";
    status(`${device.extension} (${modelName(device.model)}, ${device.mac}) created and added.`);
    document.dispatchEvent(new CustomEvent("device-created", { detail: device }));
  } catch (error) {
    showError(error, { extension: "err-new-extension", model: "err-new-model", mac: "err-new-mac" });
  }
}

/** Wire the panel's events once. */
export function initDevices() {
  const input = byId("device-search");
  input.addEventListener("input", () => {
    chosen = null;
    byId("move-confirm").hidden = true;
    lookupSoon();
  });
  input.addEventListener("keydown", onKey);
  input.addEventListener("blur", closeOptions);
  byId("add-existing").addEventListener("submit", (event) => {
    event.preventDefault();
    addChosen(false);
  });
  byId("confirm-move").addEventListener("click", () => {
    byId("move-confirm").hidden = true;
    addChosen(true);
  });
  byId("cancel-move").addEventListener("click", () => {
    byId("move-confirm").hidden = true;
    input.focus();
  });
  byId("create-device").addEventListener("submit", createDevice);
  byId("confirm-remove").addEventListener("click", () => {
    if (removing) removing(byId("new-primary").value);
  });
  byId("cancel-remove").addEventListener("click", closeRemovePrimary);
  initAccounts({ userChanged, status, askNewPrimary, closeNewPrimary: closeRemovePrimary });
}
