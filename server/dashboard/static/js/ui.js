// DOM helpers and formatting. Every value from the server is put into the page as text
// (textContent, setAttribute), never as HTML, so a process's data cannot run code here.

export const STATE_NAMES = ["waiting", "running", "successful", "failed", "cancelled"];
export const EXECUTOR_STATES = ["pending", "approved", "rejected", "unregistered"];
const ZERO_TIME = "0001-01-01T00:00:00Z";
const SVG_NS = "http://www.w3.org/2000/svg";

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function setAttributes(node, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      node.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    } else if (key === "value" && "value" in node) {
      node.value = value;
    } else {
      node.setAttribute(key, value === true ? "" : String(value));
    }
  }
}

/** Replace a node's children (null, undefined and false are left out, arrays flattened). */
export function fill(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/** h("a", {href: "#/x", class: "link"}, "text", child, ...) */
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attrs);
  return append(node, children);
}

/** The same for SVG elements. */
export function s(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttributes(node, attrs);
  return append(node, children);
}

export function stateName(state) {
  return STATE_NAMES[state] ?? `state ${state}`;
}

export function stateBadge(state) {
  return h("span", { class: `badge state-${stateName(state)}`, "data-state": stateName(state) }, stateName(state));
}

export function isSet(time) {
  return Boolean(time) && time !== ZERO_TIME && !time.startsWith("0001-");
}

export function formatTime(time) {
  if (!isSet(time)) return "";
  const date = new Date(time);
  return Number.isNaN(date.getTime()) ? time : date.toLocaleString();
}

export function seconds(value) {
  if (!Number.isFinite(value)) return "";
  if (value < 1) return `${Math.round(value * 1000)} ms`;
  if (value < 120) return `${value.toFixed(1)} s`;
  if (value < 7200) return `${(value / 60).toFixed(1)} min`;
  if (value < 172800) return `${(value / 3600).toFixed(1)} h`;
  return `${(value / 86400).toFixed(1)} d`;
}

export function between(start, end) {
  if (!isSet(start)) return "";
  const until = isSet(end) ? new Date(end) : new Date();
  return seconds((until - new Date(start)) / 1000);
}

export function ago(time) {
  if (!isSet(time)) return "never";
  return `${between(time, null)} ago`;
}

export function short(id) {
  return id ? `${id.slice(0, 12)}…` : "";
}

export function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

export function link(href, ...children) {
  return h("a", { href }, ...children);
}

export function processLink(id) {
  return link(`#/process/${id}`, h("code", {}, short(id)));
}

export function table(headers, rows, empty = "Nothing here.") {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("table", {},
    h("thead", {}, h("tr", {}, headers.map((name) => h("th", {}, name)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell))))));
}

/** Definition list of [term, value] pairs, skipping empty values. */
export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs
    .filter(([, value]) => value !== "" && value !== null && value !== undefined)
    .map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

/** A button that asks once more before it acts: the first click arms it, the second runs it. */
export function confirmButton(label, confirmLabel, action, attrs = {}) {
  const button = h("button", { type: "button", ...attrs }, label);
  let armed = false;
  let disarm = null;
  button.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      button.textContent = confirmLabel;
      button.classList.add("armed");
      disarm = setTimeout(() => {
        armed = false;
        button.textContent = label;
        button.classList.remove("armed");
      }, 5000);
      return;
    }
    clearTimeout(disarm);
    button.disabled = true;
    try {
      await action();
    } finally {
      button.disabled = false;
      armed = false;
      button.textContent = label;
      button.classList.remove("armed");
    }
  });
  return button;
}

/** A button that runs an async action, disabled while it runs. */
export function actionButton(label, action, attrs = {}) {
  const button = h("button", { type: "button", ...attrs }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await action();
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

export function message(kind, text) {
  return h("div", { class: `message ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}
