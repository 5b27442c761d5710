// The user form: main extension, custom CLI, and the Team App and Client panels.
// A refusal is shown next to the control it is about (the API names it in "field"), and a
// licence refusal names its licence module. Which option needs which switch, and which feature
// takes which licence, come from the server's rules (state.rules, GET /api/v1/rules).

import { api, ApiError } from "./api.js";
import { byId, say } from "./dom.js";
import { reloadLicences, state } from "./state.js";

const TEXT_FIELDS = ["username", "display_name", "main_extension", "cli_custom"];
const APP_FLAGS = ["enabled", "smart_working", "gsm_mode"];
const CLIENT_FLAGS = ["enabled", "smart_working", "web_phone", "video_calls"];
const ALL_FIELDS = [
  ...TEXT_FIELDS,
  ...APP_FLAGS.map((name) => `team_app.${name}`),
  "team_app.gsm_number",
  "team_app.fallback_timeout_s",
  "team_app.callback_enabled",
  ...CLIENT_FLAGS.map((name) => `client.${name}`),
];

/** The id of the control for an API field name ("team_app.enabled" -> "f-team_app-enabled"). */
export function controlId(field) {
  return `f-${field.replace(".", "-")}`;
}

function errorId(field) {
  return `err-${field.replace(".", "-")}`;
}

const control = (field) => byId(controlId(field));

/** Wire the form's events; `saved(user, created)` runs after a successful save. */
export function initUserForm({ saved }) {
  byId("user-form").addEventListener("submit", (event) => {
    event.preventDefault();
    save(saved);
  });
  // A switch that other controls need: re-derive which of them can be used.
  byId("user-form").addEventListener("change", (event) => {
    const field = fieldOf(event.target);
    if (field && gating().some((rule) => rule.needs === field)) syncDependants();
  });
  for (const field of ["main_extension", "cli_custom"]) {
    control(field).addEventListener("input", showPresentedCli);
  }
  // A refusal is about the value that was sent: it goes once the person changes that value.
  for (const field of ALL_FIELDS) {
    const clearOwn = () => {
      if (control(field).getAttribute("aria-invalid") === "true") clearError(field);
    };
    control(field).addEventListener("input", clearOwn);
    control(field).addEventListener("change", clearOwn);
  }
}

/** Show `user` in the form (null: an empty form for a new user). */
export function showUser(user) {
  state.user = user;
  clearErrors();
  say(byId("form-status"), "");
  say(byId("main-ext-change"), "");
  byId("user-title").textContent = user ? user.display_name : "New user";
  for (const field of TEXT_FIELDS) control(field).value = (user && user[field]) || "";
  const app = user ? user.team_app : {};
  const client = user ? user.client : {};
  for (const name of APP_FLAGS) control(`team_app.${name}`).checked = Boolean(app[name]);
  for (const name of CLIENT_FLAGS) control(`client.${name}`).checked = Boolean(client[name]);
  control("team_app.gsm_number").value = app.gsm_number || "";
  // Inherited values stay empty so that the settings' default keeps applying.
  control("team_app.fallback_timeout_s").value =
    user && !app.fallback_timeout_inherited ? String(app.fallback_timeout_s) : "";
  control("team_app.callback_enabled").value =
    user && !app.callback_inherited ? String(app.callback_enabled) : "";
  syncDependants();
  showPresentedCli();
  showPlatformHints();
}

/** Take a newer view of the open user from a devices action; the main extension may change. */
export function applyUserUpdate(user) {
  const previous = state.user;
  state.user = user;
  byId("user-title").textContent = user.display_name;
  if (!previous || previous.main_extension !== user.main_extension) {
    control("main_extension").value = user.main_extension;
    clearError("main_extension");
  }
  const change = user.main_extension_changed;
  if (change) {
    say(byId("main-ext-change"), `Changed from ${change.old} to ${change.new} with the primary device.`);
  }
  showPresentedCli();
}

/** The licence counts, the Team App defaults and the MCS state, next to their controls. */
export function showPlatformHints() {
  placeLicenceHints();
  for (const element of document.querySelectorAll(".licence[data-module]")) {
    const module = element.dataset.module;
    const seats = state.licences[module];
    element.textContent =
      !seats || seats.count === 0
        ? `Licence ${module}: not installed`
        : `Licence ${module}: ${seats.used} of ${seats.count} in use`;
  }
  const settings = state.settings;
  if (!settings) return;
  const team = settings.team_app;
  byId("default-fallback").textContent = `${team.fallback_timeout_s} s`;
  control("team_app.fallback_timeout_s").placeholder = `${team.fallback_timeout_s} (default)`;
  byId("callback-default").textContent =
    `Default from settings (${team.callback_enabled ? "on" : "off"})`;
  byId("mcs-hint").textContent = settings.mcs_interconnected
    ? "Smart working is available: the platform is interconnected with MCS."
    : "Smart working needs the platform interconnected with MCS (now off in the settings).";
}

function showPresentedCli() {
  const cli = control("cli_custom").value.trim();
  byId("presented-cli").textContent = cli || control("main_extension").value.trim() || "–";
}

/** The API field name of a control ("f-team_app-enabled" -> "team_app.enabled"), or null. */
function fieldOf(element) {
  const id = element && element.id;
  return id && id.startsWith("f-") ? id.slice(2).replace("-", ".") : null;
}

/** The rules that make a control usable only while another is on (switches and parameters). */
function gating() {
  const kinds = ["switch", "parameter"];
  return state.rules.dependencies.filter((rule) => kinds.includes(rule.kind));
}

/** A switch is in effect when it is on and so is every switch it needs. */
function inEffect(field) {
  return control(field).checked && usable(field);
}

function usable(field) {
  return gating().every((rule) => rule.field !== field || inEffect(rule.needs));
}

/**
 * Options need their switches: an option whose switch is off is disabled and turned off, as
 * the API does; a parameter of an option that is off is disabled and keeps its value.
 */
function syncDependants() {
  const rules = gating();
  for (const field of new Set(rules.map((rule) => rule.field))) {
    const box = control(field);
    const enabled = usable(field);
    box.disabled = !enabled;
    const isSwitched = rules.some((rule) => rule.field === field && rule.kind === "switch");
    if (!enabled && isSwitched) box.checked = false;
  }
}

/** A licence hint beside each feature that takes a seat (once; showPlatformHints fills it). */
function placeLicenceHints() {
  for (const { feature, module } of state.rules.licences) {
    const id = `lic-${module}`;
    if (document.getElementById(id)) continue;
    const hint = document.createElement("p");
    hint.id = id;
    hint.className = "hint licence";
    hint.dataset.module = module;
    const box = control(feature);
    box.closest(".field").insertBefore(hint, byId(errorId(feature)));
    const described = box.getAttribute("aria-describedby");
    box.setAttribute("aria-describedby", described ? `${id} ${described}` : id);
  }
}

/** The form as an API body (every field, so a save writes what the person sees). */
function collect() {
  const text = (field) => control(field).value.trim();
  const flag = (field) => control(field).checked;
  const timeout = control("team_app.fallback_timeout_s");
  if (timeout.validity.badInput) {
    throw new ApiError(422, {
      error: "invalid",
      detail: "the fallback timeout must be a whole number of seconds",
      field: "team_app.fallback_timeout_s",
    });
  }
  const callback = control("team_app.callback_enabled").value;
  return {
    username: text("username"),
    display_name: text("display_name"),
    main_extension: text("main_extension"),
    cli_custom: text("cli_custom") || null,
    team_app: {
      enabled: flag("team_app.enabled"),
      smart_working: flag("team_app.smart_working"),
      gsm_mode: flag("team_app.gsm_mode"),
      gsm_number: text("team_app.gsm_number") || null,
      fallback_timeout_s: timeout.value === "" ? null : Number(timeout.value),
      callback_enabled: callback === "" ? null : callback === "true",
    },
    client: {
      enabled: flag("client.enabled"),
      smart_working: flag("client.smart_working"),
      web_phone: flag("client.web_phone"),
      video_calls: flag("client.video_calls"),
    },
  };
}

async function save(saved) {
  clearErrors();
  say(byId("form-status"), "");
  const creating = state.user === null;
  const button = byId("save-user");
  button.disabled = true;
  try {
    const body = collect();
    const user = creating
      ? await api("POST", "/users", body)
      : await api("PATCH", `/users/${state.user.id}`, body);
    await reloadLicences();
    showUser(user);
    say(byId("form-status"), creating ? `User ${user.username} created.` : "Saved.");
    saved(user, creating);
  } catch (error) {
    showFormError(error);
  } finally {
    button.disabled = false;
  }
}

/** Put an API refusal next to its control; anything else above the form. */
export function showFormError(error) {
  const field = error instanceof ApiError ? error.field : null;
  if (field && ALL_FIELDS.includes(field)) {
    const message = error.module
      ? `Refused by licence ${error.module}: ${error.detail}.`
      : `${sentence(error.detail)}`;
    say(byId(errorId(field)), message);
    const box = control(field);
    box.setAttribute("aria-invalid", "true");
    if (!box.disabled) box.focus();
    return;
  }
  say(byId("form-alert"), `Not saved: ${error.message}`);
}

function sentence(text) {
  const value = String(text || "");
  return value.charAt(0).toUpperCase() + value.slice(1) + (value.endsWith(".") ? "" : ".");
}

function clearError(field) {
  say(byId(errorId(field)), "");
  control(field).removeAttribute("aria-invalid");
}

function clearErrors() {
  for (const field of ALL_FIELDS) clearError(field);
  say(byId("form-alert"), "");
}
