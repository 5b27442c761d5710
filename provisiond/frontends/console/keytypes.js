// The key types of the console (issue 16), shared by keys.js (what the phone shows) and
// keyeditor.js (the lists to edit), so that neither has to import the other for them.

export const TYPE_NAMES = {
  line: "Line",
  blf: "BLF (busy lamp)",
  speed_dial: "Speed dial",
  park: "Park",
  dnd: "Do not disturb",
  url: "URL",
};
export const ALL_TYPES = Object.keys(TYPE_NAMES);
export const PLACEHOLDERS = {
  line: "account slot (empty: 1)",
  blf: "extension",
  speed_dial: "number",
  park: "orbit (or empty)",
  dnd: "no value",
  url: "https://…",
};
export const LABEL_MAX = 64;

/** "1 key", "3 keys". */
export function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}
