// The dashboard: sign in with a private key (kept in this tab only), then the colony's views.
// Every request is signed here, as the SDK signs it; the server keeps nothing for the page.

import { Api } from "./api.js";
import { idFromPrivateKey } from "./crypto.js";
import { process, workflow } from "./detail.js";
import { h, message, short } from "./ui.js";
import { crons, executors, files, generators, overview, processes, submit, workflows } from "./views.js";

const KEY_SLOT = "colonies.prvkey"; // sessionStorage, only when the user asks to stay signed in
const COLONY_SLOT = "colonies.colony"; // localStorage: the colony name is not a secret

const MEMBER_VIEWS = {
  overview: ["Overview", overview],
  processes: ["Processes", processes],
  workflows: ["Workflows", workflows],
  executors: ["Executors", executors],
  crons: ["Crons", crons],
  generators: ["Generators", generators],
  files: ["Files", files],
  submit: ["Submit", submit],
};
const OWNER_VIEWS = { executors: ["Executors", executors] };

const root = document.getElementById("app");
let session = null;
let current = null;

function roleText(roles) {
  return roles.map((role) => {
    if (role.role === "colonyowner") return "colony owner";
    if (role.role === "serverowner") return "server owner";
    return `${role.role} ${role.name}`;
  }).join(", ");
}

async function signIn(prvkey, colony, remember) {
  const id = idFromPrivateKey(prvkey); // throws with a clear message for a malformed key
  const api = new Api(prvkey);
  const identity = await api.call({ msgtype: "getidentitymsg", colonyname: colony });
  const member = identity.roles.find((role) => (role.role === "user" || role.role === "executor")
    && role.state === 1);
  const isOwner = identity.roles.some((role) => role.role === "colonyowner");
  if (!member && !isOwner) {
    throw new Error(`The key with id ${short(id)} is not a member of colony "${colony}" (nor its owner). `
      + "Check the key and the colony name.");
  }
  if (remember) sessionStorage.setItem(KEY_SLOT, prvkey);
  localStorage.setItem(COLONY_SLOT, colony);
  session = { api, id, colony, roles: identity.roles, isMember: Boolean(member), isOwner };
  if (!location.hash || location.hash === "#/" || location.hash === "#/signin") {
    location.hash = session.isMember ? "#/overview" : "#/executors";
  }
  route();
}

function signOut() {
  sessionStorage.removeItem(KEY_SLOT);
  session = null;
  current?.stop();
  current = null;
  location.hash = "#/signin";
  showSignIn();
}

function keyFrom(text) {
  const match = text.match(/\b[0-9a-fA-F]{64}\b/);
  return match ? match[0].toLowerCase() : text.trim();
}

function showSignIn(problem) {
  const key = h("input", { name: "prvkey", type: "password", autocomplete: "off", spellcheck: "false",
    placeholder: "64 hex characters", "aria-label": "private key" });
  const file = h("input", { name: "keyfile", type: "file", "aria-label": "key file" });
  const colony = h("input", { name: "colony", autocomplete: "off",
    value: localStorage.getItem(COLONY_SLOT) || "dev", "aria-label": "colony" });
  const remember = h("input", { name: "remember", type: "checkbox" });
  const status = h("div", { class: "signin-status" }, problem ? message("error", problem) : null);
  const button = h("button", { type: "submit" }, "Sign in");
  file.addEventListener("change", async () => {
    const chosen = file.files?.[0];
    if (chosen) key.value = keyFrom(await chosen.text());
  });
  const form = h("form", { class: "signin" },
    h("h1", {}, "Colonies"),
    h("p", {}, "Sign in with your private key. It stays in this page: every request is signed here and "
      + "the key is never sent."),
    h("label", {}, "Private key", key),
    h("label", {}, "…or a key file", file),
    h("label", {}, "Colony", colony),
    h("label", { class: "inline" }, remember, "Stay signed in in this tab (session storage)"),
    button, status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    status.replaceChildren(message("info", "Signing in…"));
    try {
      await signIn(keyFrom(key.value), colony.value.trim(), remember.checked);
    } catch (error) {
      status.replaceChildren(message("error", error.message));
    } finally {
      button.disabled = false;
    }
  });
  root.replaceChildren(form);
  key.focus();
}

function parseHash() {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const [name, arg] = path.split("/");
  return { name: name || "overview", arg: arg || "", params: new URLSearchParams(query || "") };
}

function shell(views, active, content) {
  return h("div", { class: "shell" },
    h("header", {},
      h("span", { class: "brand" }, "Colonies"),
      h("nav", { class: "main" }, Object.entries(views).map(([name, [label]]) =>
        h("a", { href: `#/${name}`, class: name === active ? "active" : "" }, label))),
      h("span", { class: "who", "data-who": session.id },
        `${roleText(session.roles)} · colony ${session.colony} · `, h("code", {}, short(session.id))),
      h("button", { type: "button", class: "signout", onclick: signOut }, "Sign out")),
    h("main", {}, content));
}

function route() {
  if (!session) return;
  current?.stop();
  const { name, arg, params } = parseHash();
  const views = session.isMember ? MEMBER_VIEWS : OWNER_VIEWS;
  let rendered;
  if (name === "process" && arg && session.isMember) {
    rendered = process(session, params, arg);
  } else if (name === "workflow" && arg && session.isMember) {
    rendered = workflow(session, params, arg);
  } else if (views[name]) {
    rendered = views[name][1](session, params);
  } else {
    const fallback = session.isMember ? "overview" : "executors";
    rendered = { node: message("info", `Nothing at "${name}"; see ${fallback}.`), stop() {} };
  }
  current = rendered;
  const active = name === "process" ? "processes" : name === "workflow" ? "workflows" : name;
  root.replaceChildren(shell(views, active, rendered.node));
}

window.addEventListener("hashchange", route);

const remembered = sessionStorage.getItem(KEY_SLOT);
if (remembered) {
  signIn(remembered, localStorage.getItem(COLONY_SLOT) || "dev", true).catch((error) => {
    sessionStorage.removeItem(KEY_SLOT);
    showSignIn(error.message);
  });
} else {
  showSignIn();
}
