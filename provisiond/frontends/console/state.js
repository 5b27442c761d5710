// What the panels share: the open user and the reference data the forms need.

import { api } from "./api.js";

export const state = {
  /** The open user as the API last answered it, or null (none, or a new user). */
  user: null,
  /** Users from the last list answer, by id (to name the owner of a device). */
  usersById: new Map(),
  /** The model catalogue, by id. */
  models: new Map(),
  /** Effective platform settings. */
  settings: null,
  /** Licence modules: {MODULE: {count, used}}. */
  licences: {},
  /**
   * The rules as data (GET /rules): {licence_modules, licences: [{feature, module}],
   * dependencies: [{field, needs, kind, detail}]}. The user form derives its cascades,
   * disabled controls and licence hints from them.
   */
  rules: { licence_modules: [], licences: [], dependencies: [] },
  /** Sites (networks with a policy), by id: a device's files are served only in its own. */
  sites: new Map(),
  /**
   * Devices the lines table shows, by id: the open user's own, and the devices their accounts
   * are on (a DECT base may be another user's); null for one that could not be read.
   */
  devices: new Map(),
};

/** Load the catalogue, the settings, the licences and the rules (after sign-in). */
export async function loadReference() {
  const [models, settings, licences, sites, rules] = await Promise.all([
    api("GET", "/models"),
    api("GET", "/settings"),
    api("GET", "/licences"),
    api("GET", "/sites"),
    api("GET", "/rules"),
  ]);
  state.rules = rules;
  state.models = new Map(models.map((model) => [model.id, model]));
  state.sites = new Map(sites.map((site) => [site.id, site]));
  state.settings = settings;
  state.licences = licences;
}

/** Reload the licence counts (after a change that may have used or freed seats). */
export async function reloadLicences() {
  state.licences = await api("GET", "/licences");
}

/** Fetch the devices with these ids that are not known yet; true when any was fetched. */
export async function ensureDevices(ids) {
  const missing = [...new Set(ids)].filter((id) => !state.devices.has(id));
  const found = await Promise.all(missing.map((id) => api("GET", `/devices/${id}`).catch(() => null)));
  missing.forEach((id, index) => state.devices.set(id, found[index]));
  return missing.length > 0;
}

/** How many SIP accounts a model carries (slot 1 is the device itself); 1 when unknown. */
export function modelAccounts(id) {
  const model = state.models.get(id);
  return model && Number.isInteger(model.accounts) && model.accounts > 0 ? model.accounts : 1;
}

/** "Yealink T46S" for a model id; the id itself when the catalogue does not know it. */
export function modelName(id) {
  const model = state.models.get(id);
  if (!model) return id || "";
  return `${capitalise(model.vendor)} ${model.name}`;
}

/** A model id matching an unprovisioned phone's vendor and model guess, or "". */
export function guessModel(vendor, guess) {
  if (!vendor) return "";
  const wanted = (guess || "").toLowerCase().replace(/[^a-z0-9]/g, "");
  const candidates = [...state.models.values()].filter((m) => m.vendor === vendor);
  if (!wanted) return "";
  const exact = candidates.find((m) => m.name.toLowerCase().replace(/[^a-z0-9]/g, "") === wanted);
  if (exact) return exact.id;
  const byId = candidates.find((m) => m.id.replace(/[^a-z0-9]/g, "").endsWith(wanted));
  return byId ? byId.id : "";
}

/** Vendor names as people write them. */
const VENDOR_NAMES = {
  yealink: "Yealink",
  polycom: "Poly",
  cisco_sep: "Cisco",
  cisco_spa: "Cisco",
  grandstream: "Grandstream",
  snom: "Snom",
  fanvil: "Fanvil",
  gigaset: "Gigaset",
  aastra: "Aastra",
  panasonic: "Panasonic",
  htek: "Htek",
};

export function capitalise(vendor) {
  if (!vendor) return "";
  return VENDOR_NAMES[vendor] || vendor.charAt(0).toUpperCase() + vendor.slice(1);
}

/** Fill a <select> with the catalogue, grouped by vendor, with a leading empty choice. */
export function fillModelSelect(select, chosen = "") {
  select.replaceChildren(new Option("Choose a model", ""));
  const groups = new Map();
  for (const model of state.models.values()) {
    const vendor = capitalise(model.vendor);
    if (!groups.has(vendor)) groups.set(vendor, []);
    groups.get(vendor).push(model);
  }
  for (const [vendor, models] of groups) {
    const group = document.createElement("optgroup");
    group.label = vendor;
    for (const model of models) group.append(new Option(modelName(model.id), model.id));
    select.append(group);
  }
  select.value = chosen;
}
