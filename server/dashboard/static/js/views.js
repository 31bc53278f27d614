// The colony's list views: overview, processes, workflows, executors, crons, generators, files,
// and the submit form. A view is render(session, params) -> {node, stop()}.

import {
  EXECUTOR_STATES, STATE_NAMES, actionButton, ago, facts, formatTime, h, link, message,
  processLink, s, seconds, short, stateBadge, table,
} from "./ui.js";

/** Run ``work`` now and every ``ms`` until stopped; an error is shown in ``status``. */
export function repeat(work, ms, status) {
  let stopped = false;
  let timer = null;
  const run = async () => {
    try {
      await work();
      status?.replaceChildren();
    } catch (error) {
      status?.replaceChildren(message("error", error.message));
    }
    if (!stopped) timer = setTimeout(run, ms);
  };
  run();
  return () => { stopped = true; clearTimeout(timer); };
}

function view(title, ...children) {
  return h("section", { class: "view" }, h("h2", {}, title), ...children);
}

function counts(entry) {
  return STATE_NAMES.map((name) => h("span", { class: `count state-${name}` }, String(entry[name] ?? 0)));
}

function throughputChart(series) {
  const width = 600;
  const height = 90;
  const bar = width / series.successful.length;
  const highest = Math.max(1, ...series.successful.map((n, i) => n + series.failed[i]));
  const bars = series.successful.map((ok, i) => {
    const failed = series.failed[i];
    const okHeight = (ok / highest) * (height - 10);
    const failedHeight = (failed / highest) * (height - 10);
    return s("g", {},
      s("title", {}, `${series.successful.length - i} min ago: ${ok} successful, ${failed} failed`),
      s("rect", { class: "bar-ok", x: i * bar, y: height - okHeight, width: bar - 1, height: okHeight }),
      s("rect", { class: "bar-failed", x: i * bar, y: height - okHeight - failedHeight, width: bar - 1,
        height: failedHeight }));
  });
  const total = series.successful.reduce((a, b) => a + b, 0) + series.failed.reduce((a, b) => a + b, 0);
  return h("figure", { class: "chart" },
    s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": "processes ended per minute over the last hour" }, bars),
    h("figcaption", {}, `${total} processes ended in the last hour (per minute; failed in red)`));
}

export function overview(session) {
  const status = h("div");
  const body = h("div", { class: "overview" }, h("p", { class: "empty" }, "Loading…"));
  const stop = repeat(async () => {
    const data = await session.api.call({ msgtype: "getcolonyoverviewmsg", colonyname: session.colony });
    const totals = Object.fromEntries(STATE_NAMES.map((name) => [name, 0]));
    for (const entry of data.executortypes) for (const name of STATE_NAMES) totals[name] += entry[name];
    const oldest = data.oldestwaiting;
    body.replaceChildren(
      h("div", { class: "totals" }, STATE_NAMES.map((name) => h("a", {
        class: `total state-${name}`, href: `#/processes?state=${STATE_NAMES.indexOf(name)}`,
        "data-total": name,
      }, h("strong", {}, String(totals[name])), h("span", {}, name)))),
      h("h3", {}, "By executor type"),
      table(["executor type", ...STATE_NAMES, "oldest waiting"], data.executortypes.map((entry) => [
        link(`#/processes?state=0&executortype=${encodeURIComponent(entry.executortype)}`, entry.executortype),
        ...counts(entry),
        entry.oldestwaitingtime ? ago(entry.oldestwaitingtime) : "",
      ]), "No processes yet."),
      h("h3", {}, "Throughput"),
      throughputChart(data.throughput),
      h("h3", {}, "Oldest waiting process"),
      oldest ? facts([
        ["process", processLink(oldest.processid)],
        ["function", oldest.spec?.funcname || ""],
        ["executor type", oldest.spec?.conditions?.executortype || ""],
        ["waiting for", ago(oldest.submissiontime).replace(" ago", "")],
      ]) : h("p", { class: "empty" }, "Nothing is waiting."));
  }, 3000, status);
  return { node: view("Overview", status, body), stop };
}

function filterForm(params, fields, onSubmit) {
  const inputs = Object.fromEntries(fields.map(([name]) => [name, h("input", {
    name, value: params.get(name) || "", autocomplete: "off",
  })]));
  const form = h("form", { class: "filters" },
    fields.map(([name, label]) => h("label", {}, label, inputs[name])),
    h("button", { type: "submit" }, "Apply"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onSubmit(Object.fromEntries(fields.map(([name]) => [name, inputs[name].value.trim()])));
  });
  return form;
}

function navigate(path, values) {
  const query = new URLSearchParams(Object.entries(values).filter(([, value]) => value !== "" && value !== null));
  location.hash = `#/${path}?${query}`;
}

function stateTabs(path, params, current) {
  return h("nav", { class: "tabs" }, STATE_NAMES.map((name, state) => {
    const values = Object.fromEntries(params);
    return h("a", {
      href: `#/${path}?${new URLSearchParams({ ...values, state: String(state), after: "", previous: "" })}`,
      class: state === current ? "active" : "",
    }, name);
  }));
}

function processRow(process) {
  const ended = process.state >= 2;
  return [
    processLink(process.processid),
    process.spec?.funcname || "",
    process.spec?.conditions?.executortype || "",
    process.spec?.label || "",
    process.initiatorname || "",
    formatTime(process.submissiontime),
    ended ? formatTime(process.endtime) : formatTime(process.starttime),
    stateBadge(process.state),
  ];
}

export function processes(session, params) {
  const state = Number(params.get("state") ?? 0);
  const status = h("div");
  const list = h("div", {}, h("p", { class: "empty" }, "Loading…"));
  const filters = filterForm(params, [["executortype", "Executor type"], ["label", "Label"],
    ["initiator", "Initiator"]], (values) => navigate("processes", { state, ...values }));
  const after = params.get("after") || "";
  const previous = (params.get("previous") || "").split(",").filter(Boolean);
  const stop = repeat(async () => {
    const page = await session.api.call({
      msgtype: "findprocessesmsg", colonyname: session.colony, state, count: 50, after,
      executortype: params.get("executortype") || "", label: params.get("label") || "",
      initiator: params.get("initiator") || "",
    });
    const base = Object.fromEntries(params);
    const pager = h("div", { class: "pager" },
      previous.length || after ? h("a", { href: `#/processes?${new URLSearchParams({
        ...base, after: previous.at(-1) === "-" ? "" : (previous.at(-1) || ""),
        previous: previous.slice(0, -1).join(","),
      })}` }, "← Previous") : null,
      page.next ? h("a", { href: `#/processes?${new URLSearchParams({
        ...base, after: page.next, previous: [...previous, after || "-"].join(","),
      })}` }, "Next →") : null);
    list.replaceChildren(table(
      ["process", "function", "executor type", "label", "initiator", "submitted",
        state >= 2 ? "ended" : "started", "state"],
      page.processes.map(processRow), `No ${STATE_NAMES[state]} processes.`), pager);
  }, 4000, status);
  return { node: view("Processes", stateTabs("processes", params, state), filters, status, list, logSearch(session)),
    stop };
}

function logSearch(session) {
  const input = h("input", { name: "text", placeholder: "text in logs", autocomplete: "off" });
  const days = h("input", { name: "days", type: "number", min: "1", max: "30", value: "7" });
  const results = h("div");
  const form = h("form", { class: "filters" }, h("label", {}, "Search logs", input),
    h("label", {}, "Days", days), h("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!input.value.trim()) return;
    try {
      const found = await session.api.call({
        msgtype: "searchlogsmsg", colonyname: session.colony, text: input.value.trim(),
        days: Number(days.value) || 7, count: 100,
      });
      results.replaceChildren(table(["process", "executor", "time", "message"], (found || []).map((entry) => [
        entry.processid ? processLink(entry.processid) : "", entry.executorname,
        new Date(entry.timestamp / 1e6).toLocaleString(), h("code", {}, entry.message),
      ]), "No log line matches."));
    } catch (error) {
      results.replaceChildren(message("error", error.message));
    }
  });
  return h("div", { class: "log-search" }, h("h3", {}, "Logs"), form, results);
}

export function workflows(session, params) {
  const state = Number(params.get("state") ?? 1);
  const status = h("div");
  const list = h("div", {}, h("p", { class: "empty" }, "Loading…"));
  const stop = repeat(async () => {
    const graphs = await session.api.call({
      msgtype: "getprocessgraphsmsg", colonyname: session.colony, count: 100, state,
    });
    list.replaceChildren(table(["workflow", "initiator", "submitted", "processes", "state"],
      (graphs || []).map((graph) => [
        link(`#/workflow/${graph.processgraphid}`, h("code", {}, short(graph.processgraphid))),
        graph.initiatorname, formatTime(graph.submissiontime), String((graph.processids || []).length),
        stateBadge(graph.state),
      ]), `No ${STATE_NAMES[state]} workflows (the latest 100 are listed).`));
  }, 4000, status);
  return { node: view("Workflows", stateTabs("workflows", params, state), status, list), stop };
}

export function executors(session) {
  const status = h("div");
  const list = h("div", {}, h("p", { class: "empty" }, "Loading…"));
  const stop = repeat(async () => {
    const all = await session.api.call({ msgtype: "getexecutorsmsg", colonyname: session.colony });
    const running = new Map();
    if (session.isMember) {
      const page = await session.api.call({
        msgtype: "findprocessesmsg", colonyname: session.colony, state: 1, count: 100,
      });
      for (const process of page.processes) {
        const list = running.get(process.assignedexecutorid) || [];
        list.push(process);
        running.set(process.assignedexecutorid, list);
      }
    }
    list.replaceChildren(table(["name", "type", "state", "last heard from", "location", "running", ""],
      (all || []).map((executor) => [
        executor.executorname, executor.executortype,
        h("span", { class: `badge executor-${EXECUTOR_STATES[executor.state]}` }, EXECUTOR_STATES[executor.state]),
        ago(executor.lastheardfromtime), executor.locationname || "",
        h("span", {}, (running.get(executor.executorid) || []).map((p) => processLink(p.processid))),
        session.isOwner ? ownerActions(session, executor) : "",
      ]), "No executors registered."));
  }, 4000, status);
  return { node: view("Executors", status, list), stop };
}

function ownerActions(session, executor) {
  const act = (msgtype) => actionButton(msgtype === "approveexecutormsg" ? "Approve" : "Reject", async () => {
    await session.api.call({ msgtype, colonyname: session.colony, executorname: executor.executorname });
    location.hash = `#/executors?t=${Date.now()}`;
  });
  return h("span", { class: "actions" },
    executor.state !== 1 ? act("approveexecutormsg") : null,
    executor.state !== 2 ? act("rejectexecutormsg") : null);
}

export function crons(session) {
  const status = h("div");
  const list = h("div");
  const stop = repeat(async () => {
    const all = await session.api.call({ msgtype: "getcronsmsg", colonyname: session.colony, count: 100 });
    list.replaceChildren(table(["name", "schedule", "next run", "last run", "last workflow"],
      (all || []).map((cron) => [
        cron.name, cron.interval > 0 ? `every ${seconds(cron.interval)}` : h("code", {}, cron.cronexpression),
        formatTime(cron.nextrun), formatTime(cron.lastrun),
        cron.prevprocessgraphid ? link(`#/workflow/${cron.prevprocessgraphid}`,
          h("code", {}, short(cron.prevprocessgraphid))) : "",
      ]), "No crons."));
  }, 5000, status);
  return { node: view("Crons", status, list), stop };
}

export function generators(session) {
  const status = h("div");
  const list = h("div");
  const stop = repeat(async () => {
    const all = await session.api.call({ msgtype: "getgeneratorsmsg", colonyname: session.colony, count: 100 });
    list.replaceChildren(table(["name", "trigger", "timeout", "queued", "last run"],
      (all || []).map((generator) => [
        generator.name, String(generator.trigger), generator.timeout > 0 ? seconds(generator.timeout) : "",
        String(generator.queuesize ?? 0), formatTime(generator.lastrun),
      ]), "No generators."));
  }, 5000, status);
  return { node: view("Generators", status, list), stop };
}

export function files(session, params) {
  const label = params.get("label") || "";
  const status = h("div");
  const body = h("div");
  const load = async () => {
    const [labels, snapshots] = await Promise.all([
      session.api.call({ msgtype: "getfilelabelsmsg", colonyname: session.colony, name: "", exact: false }),
      session.api.call({ msgtype: "getsnapshotsmsg", colonyname: session.colony }),
    ]);
    const parts = [
      h("h3", {}, "Labels"),
      table(["label", "files"], (labels || []).map((entry) => [
        link(`#/files?label=${encodeURIComponent(entry.name)}`, entry.name), String(entry.files),
      ]), "No files."),
    ];
    if (label) {
      const inLabel = await session.api.call({ msgtype: "getfilesmsg", colonyname: session.colony, label });
      parts.push(h("h3", {}, `Files in ${label}`), table(["name", "size", "checksum"],
        (inLabel || []).map((file) => [file.name, String(file.size), h("code", {}, short(file.checksum))]),
        "No files under this label."));
    }
    parts.push(h("h3", {}, "Snapshots"), table(["name", "label", "files", "added"],
      (snapshots || []).map((snapshot) => [
        snapshot.name, snapshot.label, String((snapshot.fileids || []).length), formatTime(snapshot.added),
      ]), "No snapshots."));
    body.replaceChildren(...parts);
  };
  const stop = repeat(load, 10000, status);
  return { node: view("Files and snapshots", status, body), stop };
}

export function submit(session) {
  const status = h("div");
  const select = h("select", { name: "function" });
  const args = h("textarea", { name: "args", rows: "3", spellcheck: "false" }, "[]");
  const kwargs = h("textarea", { name: "kwargs", rows: "3", spellcheck: "false" }, "{}");
  const maxexec = h("input", { name: "maxexectime", type: "number", value: "-1" });
  const retries = h("input", { name: "maxretries", type: "number", value: "0", min: "0" });
  const form = h("form", { class: "submit" },
    h("label", {}, "Function", select), h("label", {}, "args (JSON list)", args),
    h("label", {}, "kwargs (JSON object)", kwargs), h("label", {}, "Max exec time (s, -1: none)", maxexec),
    h("label", {}, "Max retries", retries), h("button", { type: "submit" }, "Submit"));
  let registry = [];
  const stop = repeat(async () => {
    if (registry.length) return;
    registry = (await session.api.call({ msgtype: "getfunctionsmsg", colonyname: session.colony })) || [];
    const seen = new Set();
    select.replaceChildren(...registry.filter((fn) => {
      const key = `${fn.executortype}/${fn.funcname}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    }).map((fn) => h("option", { value: `${fn.executortype}\u0000${fn.funcname}` },
      `${fn.funcname} (${fn.executortype})`)));
    if (!registry.length) status.replaceChildren(message("info", "No executor has registered a function yet."));
  }, 10000, null);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let parsedArgs;
    let parsedKwargs;
    try {
      parsedArgs = JSON.parse(args.value || "[]");
      if (!Array.isArray(parsedArgs)) throw new Error("args must be a JSON list");
    } catch (error) {
      status.replaceChildren(message("error", `args: ${error.message}`));
      return;
    }
    try {
      parsedKwargs = JSON.parse(kwargs.value || "{}");
      if (parsedKwargs === null || typeof parsedKwargs !== "object" || Array.isArray(parsedKwargs)) {
        throw new Error("kwargs must be a JSON object");
      }
    } catch (error) {
      status.replaceChildren(message("error", `kwargs: ${error.message}`));
      return;
    }
    if (!select.value) {
      status.replaceChildren(message("error", "Choose a function first."));
      return;
    }
    const [executortype, funcname] = select.value.split("\u0000");
    try {
      const process = await session.api.call({
        msgtype: "submitfuncspecmsg",
        spec: {
          funcname, args: parsedArgs, kwargs: parsedKwargs, maxexectime: Number(maxexec.value),
          maxretries: Number(retries.value), maxwaittime: -1,
          conditions: { colonyname: session.colony, executortype },
        },
      });
      location.hash = `#/process/${process.processid}`;
    } catch (error) {
      status.replaceChildren(message("error", error.message));
    }
  });
  return { node: view("Submit a function", status, form, h("p", { class: "hint" },
    "Functions come from the colony's function registry (what executors registered).")), stop };
}

