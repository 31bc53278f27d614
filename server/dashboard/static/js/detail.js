// One process (spec, data, timings, logs tailing live, attributes, actions) and one workflow
// (its DAG, coloured by state and updated live over /pubsub).

import { drawGraph } from "./dag.js";
import {
  STATE_NAMES, actionButton, between, confirmButton, facts, fill, formatTime, h, json, link, message,
  processLink, short, stateBadge, stateName, table,
} from "./ui.js";
import { repeat } from "./views.js";

const LOG_BATCH = 500;
const MAX_LOG_LINES = 5000; // the page keeps the latest lines of a long log
const ATTRIBUTE_TYPES = { 1: "in", 2: "out", 3: "err", 4: "env" };

function section(title, ...children) {
  return h("section", { class: "view" }, h("h2", {}, title), ...children);
}

function logTail(session, processId) {
  const lines = h("pre", { class: "logs", "aria-live": "polite" });
  const seen = new Set();
  let since = 0;
  const poll = async () => {
    for (;;) {
      const entries = (await session.api.call({
        msgtype: "getlogsmsg", colonyname: session.colony, processid: processId, count: LOG_BATCH, since,
      })) || [];
      for (const entry of entries) {
        // Timestamps are nanoseconds, beyond a double's exact integers: a line seen again after
        // rounding is skipped by its text and time.
        const key = `${entry.timestamp}\u0000${entry.message}`;
        if (seen.has(key)) continue;
        seen.add(key);
        lines.append(h("span", { class: "log-line" }, entry.message.endsWith("\n") ? entry.message
          : `${entry.message}\n`));
        if (lines.childElementCount > MAX_LOG_LINES) lines.firstElementChild.remove();
        since = Math.max(since, entry.timestamp - 1000);
      }
      if (entries.length < LOG_BATCH) return;
    }
  };
  return { element: lines, poll, isEmpty: () => seen.size === 0 };
}

function actions(session, process, refresh, status) {
  const run = (work) => async () => {
    try {
      await work();
      status.replaceChildren();
      await refresh();
    } catch (error) {
      status.replaceChildren(message("error", error.message));
    }
  };
  const buttons = [];
  const inGraph = Boolean(process.processgraphid);
  if (process.state <= 1) {
    buttons.push(inGraph
      ? confirmButton("Cancel workflow", "Cancel the whole workflow?", run(() => session.api.call({
        msgtype: "cancelprocessgraphmsg", processgraphid: process.processgraphid })), { "data-action": "cancel" })
      : confirmButton("Cancel", "Really cancel?", run(() => session.api.call({
        msgtype: "cancelprocessmsg", processid: process.processid })), { "data-action": "cancel" }));
  }
  if (process.state >= 3 && !inGraph) {
    buttons.push(actionButton("Resubmit", async () => {
      try {
        const copy = await session.api.call({ msgtype: "submitfuncspecmsg", spec: process.spec });
        location.hash = `#/process/${copy.processid}`;
      } catch (error) {
        status.replaceChildren(message("error", error.message));
      }
    }, { "data-action": "resubmit" }));
  }
  if (process.state !== 1 && !inGraph) {
    buttons.push(confirmButton("Remove", "Really remove?", async () => {
      try {
        await session.api.call({ msgtype: "removeprocessmsg", processid: process.processid });
        location.hash = "#/processes";
      } catch (error) {
        status.replaceChildren(message("error", error.message));
      }
    }, { "data-action": "remove" }));
  }
  return h("div", { class: "actions" }, buttons);
}

export function process(session, params, processId) {
  const status = h("div"); // reading the process (cleared once a read succeeds)
  const actionStatus = h("div"); // what an action answered (kept until the next action)
  const header = h("div");
  const body = h("div");
  const logs = logTail(session, processId);
  const logBox = h("div", {}, h("h3", {}, "Logs"), logs.element);
  let ended = false;
  let shown = "";
  const refresh = async () => {
    const process = await session.api.call({ msgtype: "getprocessmsg", processid: processId });
    // Drawn again only when it changed, so an armed button or an open spec stays as it is.
    const seen = JSON.stringify(process);
    if (seen === shown) return process;
    shown = seen;
    const spec = process.spec || {};
    const conditions = spec.conditions || {};
    header.replaceChildren(
      h("p", { class: "title" }, h("strong", {}, spec.funcname || "(no function)"), " ", stateBadge(process.state)),
      actions(session, process, refresh, actionStatus));
    fill(body,
      facts([
        ["process", h("code", {}, process.processid)],
        ["workflow", process.processgraphid ? link(`#/workflow/${process.processgraphid}`,
          h("code", {}, short(process.processgraphid))) : ""],
        ["node", spec.nodename || ""],
        ["executor type", conditions.executortype || ""],
        ["label", spec.label || ""],
        ["initiator", process.initiatorname || ""],
        ["assigned executor", process.assignedexecutorid ? h("code", {}, short(process.assignedexecutorid)) : ""],
        ["submitted", formatTime(process.submissiontime)],
        ["started", formatTime(process.starttime)],
        ["ended", formatTime(process.endtime)],
        ["waited", between(process.submissiontime, process.starttime)],
        ["ran", between(process.starttime, process.endtime)],
        ["retries", `${process.retries} of ${spec.maxretries ?? 0}`],
        ["priority", String(spec.priority ?? 0)],
        ["parents", (process.parents || []).length ? h("span", {}, process.parents.map(processLink)) : ""],
        ["children", (process.children || []).length ? h("span", {}, process.children.map(processLink)) : ""],
      ]),
      h("h3", {}, "Arguments"), json({ args: spec.args ?? [], kwargs: spec.kwargs ?? {} }),
      h("h3", {}, "Input"), json(process.in ?? []),
      h("h3", {}, "Output"), h("div", { "data-field": "output" }, json(process.out ?? [])),
      (process.errors || []).length ? [h("h3", {}, "Errors"),
        h("pre", { class: "errors", "data-field": "errors" }, process.errors.join("\n"))] : null,
      h("h3", {}, "Attributes"),
      table(["key", "value", "type"], (process.attributes || []).map((attribute) => [
        attribute.key, h("code", {}, attribute.value), ATTRIBUTE_TYPES[attribute.attributetype] || "",
      ]), "No attributes."),
      h("details", {}, h("summary", {}, "Function spec"), json(spec)));
    ended = process.state >= 2;
    return process;
  };
  let stopped = false;
  let timer = null;
  const tick = async () => {
    try {
      await refresh();
      await logs.poll();
      status.replaceChildren();
    } catch (error) {
      status.replaceChildren(message("error", error.message));
    }
    if (!stopped && !ended) timer = setTimeout(tick, 1000);
    else if (ended) await logs.poll().catch(() => {});
  };
  tick();
  return {
    node: section("Process", status, header, actionStatus, body, logBox),
    stop: () => { stopped = true; clearTimeout(timer); },
  };
}

/** The workflow's state as its processes' states imply it (the server's follows the same rule). */
function graphState(states) {
  const all = Object.values(states);
  const has = (name) => all.some((state) => stateName(state) === name);
  if (all.length && all.every((state) => state >= 2)) {
    return STATE_NAMES.indexOf(has("failed") ? "failed" : has("cancelled") ? "cancelled" : "successful");
  }
  return STATE_NAMES.indexOf(has("running") || all.some((state) => state >= 2) ? "running" : "waiting");
}

function showTally(element, states) {
  const counts = Object.fromEntries(STATE_NAMES.map((name) => [name, 0]));
  for (const state of Object.values(states)) counts[stateName(state)] += 1;
  element.replaceChildren(...STATE_NAMES.map((name) => h("span", { class: `count state-${name}` },
    `${counts[name]} ${name}`)));
}

export function workflow(session, params, graphId) {
  const status = h("div");
  const summary = h("div");
  const holder = h("div", { class: "dag-holder" }, h("p", { class: "empty" }, "Loading…"));
  const live = h("span", { class: "live", "data-live": "no" }, "connecting…");
  const tally = h("p", { class: "tally" });
  const badge = h("span", { "data-field": "graphstate" });
  const states = {};
  let drawing = null;
  let subscription = null;
  let stopped = false;
  let reload = null;
  const select = (id) => { location.hash = `#/process/${id}`; };

  const load = async () => {
    const graph = await session.api.call({ msgtype: "getprocessgraphmsg", processgraphid: graphId });
    for (const node of graph.nodes || []) {
      if (!(node.id in states)) states[node.id] = STATE_NAMES.indexOf("waiting");
    }
    drawing = drawGraph(graph, states, select);
    showTally(tally, states);
    fill(badge, stateBadge(graph.state));
    holder.replaceChildren(drawing.element);
    summary.replaceChildren(facts([
      ["workflow", h("code", {}, graph.processgraphid)],
      ["initiator", graph.initiatorname],
      ["submitted", formatTime(graph.submissiontime)],
      ["state", badge],
    ]), tally, h("div", { class: "actions" },
      graph.state <= 1 ? confirmButton("Cancel workflow", "Cancel the whole workflow?", async () => {
        try {
          await session.api.call({ msgtype: "cancelprocessgraphmsg", processgraphid: graphId });
        } catch (error) {
          status.replaceChildren(message("error", error.message));
        }
      }, { "data-action": "cancel" }) : null,
      graph.state !== 1 ? confirmButton("Remove workflow", "Really remove it?", async () => {
        try {
          await session.api.call({ msgtype: "removeprocessgraphmsg", processgraphid: graphId });
          location.hash = "#/workflows";
        } catch (error) {
          status.replaceChildren(message("error", error.message));
        }
      }, { "data-action": "remove" }) : null));
  };

  const scheduleReload = () => {
    if (reload) return;
    reload = setTimeout(async () => {
      reload = null;
      try { await load(); } catch (error) { status.replaceChildren(message("error", error.message)); }
    }, 300);
  };

  const onStates = (payload) => {
    let unknown = false;
    for (const [id, state] of Object.entries(payload.states || {})) {
      states[id] = state;
      if (drawing?.has(id)) drawing.setState(id, state);
      else unknown = true;
    }
    showTally(tally, states);
    fill(badge, stateBadge(graphState(states)));
    // A process the drawing lacks was added by add_child; once every process has ended, the
    // workflow has too (read its final state).
    if (unknown || Object.values(states).every((state) => state >= 2)) scheduleReload();
  };

  const follow = () => {
    if (stopped) return;
    subscription = session.api.subscribe(
      { msgtype: "subscribeprocessgraphmsg", processgraphid: graphId, timeout: 600 },
      (payload) => {
        live.textContent = "live";
        live.setAttribute("data-live", "yes");
        onStates(payload);
      },
      (error) => {
        live.textContent = error ? `reconnecting (${error.message || error})` : "reconnecting…";
        live.setAttribute("data-live", "no");
        if (!stopped) setTimeout(follow, error ? 3000 : 200);
      });
  };

  load().then(follow, (error) => status.replaceChildren(message("error", error.message)));
  return {
    node: section("Workflow", status, h("p", {}, live), summary, holder),
    stop: () => { stopped = true; clearTimeout(reload); subscription?.close(); },
  };
}
