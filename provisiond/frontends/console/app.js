// The console's entry point: sign-in, the users list, and which user is open (#/users/ID).
// Everything it shows comes from the admin API; the token is in sessionStorage only.

import {
  api,
  clearToken,
  getToken,
  setToken,
  setUnauthorizedHandler,
  withQuery,
} from "./api.js";
import { initDevices, showDevicesFor } from "./devices.js";
import { byId, clear, debounce, h, say } from "./dom.js";
import { fillModelSelect, loadReference, state } from "./state.js";
import {
  refresh as refreshUnprovisioned,
  showUnprovisionedFor,
  startPolling,
  stopPolling,
} from "./unprovisioned.js";
import { initUserForm, showPlatformHints, showUser } from "./userform.js";

const USERS_LIMIT = 100;

// --- signing in and out ---------------------------------------------------------------

function showSignin(message = "") {
  byId("app").hidden = true;
  byId("sign-out").hidden = true;
  byId("signin").hidden = false;
  say(byId("signin-error"), message);
  byId("token").focus();
}

async function signIn(event) {
  event.preventDefault();
  const input = byId("token");
  const token = input.value.trim();
  if (!token) {
    say(byId("signin-error"), "Type an API token.");
    input.focus();
    return;
  }
  try {
    await api("GET", withQuery("/users", { limit: 1 }), undefined, { token, quiet401: true });
  } catch (error) {
    say(byId("signin-error"), signinProblem(error));
    input.select();
    return;
  }
  setToken(token);
  input.value = "";
  await enter();
}

function signinProblem(error) {
  if (error.status === 401) {
    return "This token was not accepted. Check it, or create one with: provisiond token create NAME";
  }
  if (error.status === 429) return "Too many refused tokens from this address: wait a few minutes.";
  return `Sign-in failed: ${error.message}`;
}

function signOut(message = "") {
  clearToken();
  stopPolling();
  state.user = null;
  showSignin(message);
}

/** After sign-in (or a reload with a token in this tab): load everything, open the route. */
async function enter() {
  byId("signin").hidden = true;
  byId("app").hidden = false;
  byId("sign-out").hidden = false;
  say(byId("signin-error"), "");
  try {
    await loadReference();
  } catch (error) {
    if (error.status !== 401) say(byId("user-list-status"), `Cannot load the console: ${error.message}`);
    return;
  }
  fillModelSelect(byId("new-model"));
  showPlatformHints();
  await loadUsers();
  await route();
  startPolling();
}

// --- the users list --------------------------------------------------------------------

async function loadUsers() {
  const search = byId("user-search").value.trim();
  try {
    const page = await api("GET", withQuery("/users", { search, limit: USERS_LIMIT }));
    for (const user of page.items) state.usersById.set(user.id, user);
    renderUsers(page, search);
  } catch (error) {
    say(byId("user-list-status"), error.message);
  }
}

function renderUsers(page, search) {
  const list = byId("user-list");
  clear(list);
  const openId = state.user ? state.user.id : null;
  for (const user of page.items) {
    const link = h(
      "a",
      { href: `#/users/${user.id}`, "aria-current": user.id === openId ? "page" : null },
      h("span", { class: "name", text: user.display_name }),
      h("span", { class: "sub", text: `${user.username} · ${user.main_extension}` }),
    );
    list.append(h("li", {}, link));
  }
  const shown = page.items.length;
  let text = `${page.total} user${page.total === 1 ? "" : "s"}`;
  if (search) text += ` matching “${search}”`;
  if (shown < page.total) text += `, first ${shown} shown`;
  say(byId("user-list-status"), text);
}

function markOpenUser() {
  const openId = state.user ? String(state.user.id) : null;
  for (const link of byId("user-list").querySelectorAll("a")) {
    const current = openId !== null && link.getAttribute("href") === `#/users/${openId}`;
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

// --- which user is open ------------------------------------------------------------------

async function route() {
  const hash = location.hash;
  const match = /^#\/users\/([0-9]{1,10})$/.exec(hash);
  if (hash === "#/users/new") openUser(null);
  else if (match) {
    try {
      openUser(await api("GET", `/users/${match[1]}`));
    } catch (error) {
      closeUser(error.status === 404 ? "That user does not exist (any more)." : error.message);
    }
  } else if (hash === "" || hash === "#" || hash.startsWith("#/")) closeUser("");
}

function openUser(user) {
  byId("empty-detail").hidden = true;
  byId("user-form").hidden = false;
  showUser(user);
  showDevicesFor(user);
  showUnprovisionedFor(user);
  byId("crumbs").textContent = user ? `Users › ${user.display_name} › Devices` : "Users › New user";
  markOpenUser();
  if (user === null) byId("f-username").focus();
}

function closeUser(message) {
  state.user = null;
  byId("user-form").hidden = true;
  byId("devices-panel").hidden = true;
  byId("unprov-panel").hidden = true;
  const empty = byId("empty-detail");
  empty.hidden = false;
  empty.textContent = message || "Choose a user in the list, or create one.";
  byId("crumbs").textContent = "Users › Devices";
  markOpenUser();
}

function userSaved(user, created) {
  state.usersById.set(user.id, user);
  byId("crumbs").textContent = `Users › ${user.display_name} › Devices`;
  if (created) {
    // pushState fires no hashchange: the form already shows the saved user and its message.
    history.pushState(null, "", `#/users/${user.id}`);
    showDevicesFor(user);
    showUnprovisionedFor(user);
  }
  loadUsers();
}

// --- start -------------------------------------------------------------------------------

function start() {
  setUnauthorizedHandler(() =>
    signOut("The server no longer accepts this token. Sign in again."),
  );
  byId("signin-form").addEventListener("submit", signIn);
  byId("sign-out").addEventListener("click", () => signOut("Signed out."));
  const search = byId("user-search");
  search.addEventListener("input", debounce(loadUsers, 200));
  byId("user-search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadUsers();
  });
  byId("new-user").addEventListener("click", () => {
    if (location.hash === "#/users/new") openUser(null);
    else location.hash = "#/users/new";
  });
  byId("unprov-refresh").addEventListener("click", () => refreshUnprovisioned(true));
  window.addEventListener("hashchange", () => {
    if (getToken()) route();
  });
  document.addEventListener("user-changed", (event) => {
    state.usersById.set(event.detail.id, event.detail);
    loadUsers();
  });
  document.addEventListener("device-created", () => refreshUnprovisioned(true));
  initUserForm({ saved: userSaved });
  initDevices();
  if (getToken()) enter();
  else showSignin();
}

start();
