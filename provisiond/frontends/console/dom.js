// Small DOM helpers. Everything is built with createElement and textContent, never by parsing
// HTML strings, so text from the API (names, user agents) can never become markup.

/** The element with this id (throws when the page lacks it: a bug, not a user error). */
export function byId(id) {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`missing element #${id}`);
  return element;
}

/**
 * Create an element. `attrs`: "class", "text", "on<event>" handlers, "data-*", "aria-*" and
 * "role" as attributes, booleans (hidden, disabled) and anything else as properties.
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name.startsWith("aria-") || name.startsWith("data-") || name === "role" || name === "for") {
      element.setAttribute(name, value === true ? "true" : String(value));
    } else element[name] = value;
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** Remove every child of `element`. */
export function clear(element) {
  element.replaceChildren();
}

/** Set a message element's text and show or hide it with the text. */
export function say(element, text) {
  element.textContent = text || "";
  element.classList.toggle("shown", Boolean(text));
}

/** A time from the API (ISO 8601) as "YYYY-MM-DD HH:MM:SS" in the browser's zone. */
export function formatTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

/** Call `fn` once the caller has stopped calling for `ms` milliseconds. */
export function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
