// A workflow drawn as its DAG: nodes in layers by their longest path from a root, each layer
// wrapped into rows so a 5,000-node map step stays a page tall rather than a mile wide.

import { s, stateName } from "./ui.js";

const NODE_W = 150;
const NODE_H = 34;
const GAP_X = 22;
const GAP_Y = 46;
const ROW_WRAP = 30; // nodes per row within a layer
const MARGIN = 16;

/** Layers of node ids: depth = longest path from a node without parents. */
export function layers(nodes, edges) {
  const parents = new Map(nodes.map((node) => [node.id, []]));
  const children = new Map(nodes.map((node) => [node.id, []]));
  for (const edge of edges) {
    if (!parents.has(edge.target) || !children.has(edge.source)) continue;
    parents.get(edge.target).push(edge.source);
    children.get(edge.source).push(edge.target);
  }
  const depth = new Map();
  const pending = new Map(nodes.map((node) => [node.id, parents.get(node.id).length]));
  let frontier = nodes.filter((node) => pending.get(node.id) === 0).map((node) => node.id);
  frontier.forEach((id) => depth.set(id, 0));
  while (frontier.length) {
    const next = [];
    for (const id of frontier) {
      for (const child of children.get(id)) {
        depth.set(child, Math.max(depth.get(child) ?? 0, depth.get(id) + 1));
        pending.set(child, pending.get(child) - 1);
        if (pending.get(child) === 0) next.push(child);
      }
    }
    frontier = next;
  }
  const byDepth = [];
  for (const node of nodes) {
    const d = depth.get(node.id) ?? 0; // a cycle cannot be submitted; be safe anyway
    (byDepth[d] ||= []).push(node.id);
  }
  return byDepth.filter(Boolean);
}

/** Positions {id: {x, y}} and the drawing's size. */
export function layout(nodes, edges) {
  const positions = new Map();
  let y = MARGIN;
  let width = 0;
  for (const layer of layers(nodes, edges)) {
    for (let start = 0; start < layer.length; start += ROW_WRAP) {
      const row = layer.slice(start, start + ROW_WRAP);
      row.forEach((id, i) => positions.set(id, { x: MARGIN + i * (NODE_W + GAP_X), y }));
      width = Math.max(width, MARGIN * 2 + row.length * (NODE_W + GAP_X) - GAP_X);
      y += NODE_H + GAP_Y;
    }
  }
  return { positions, width: Math.max(width, 200), height: y - GAP_Y + MARGIN };
}

function label(text) {
  return text.length > 18 ? `${text.slice(0, 17)}…` : text;
}

/**
 * An SVG of the graph; ``states`` maps process id -> state number; ``onSelect(id)`` on click.
 * Returns {element, setState(id, state), has(id)}.
 */
export function drawGraph(graph, states, onSelect) {
  const nodes = graph.nodes || [];
  const edges = graph.edges || [];
  const { positions, width, height } = layout(nodes, edges);
  const edgeLayer = s("g", { class: "edges" });
  for (const edge of edges) {
    const from = positions.get(edge.source);
    const to = positions.get(edge.target);
    if (!from || !to) continue;
    edgeLayer.append(s("line", {
      x1: from.x + NODE_W / 2, y1: from.y + NODE_H, x2: to.x + NODE_W / 2, y2: to.y, class: "edge",
    }));
  }
  const nodeLayer = s("g", { class: "nodes" });
  const groups = new Map();
  for (const node of nodes) {
    const at = positions.get(node.id);
    const name = node.data?.label || node.id.slice(0, 8);
    const group = s("g", {
      class: `node state-${stateName(states[node.id])}`, transform: `translate(${at.x},${at.y})`,
      "data-process": node.id, "data-name": name, "data-state": stateName(states[node.id]),
      tabindex: "0", role: "button",
    },
    s("title", {}, `${name} (${stateName(states[node.id])})`),
    s("rect", { width: NODE_W, height: NODE_H, rx: 6, ry: 6 }),
    s("text", { x: NODE_W / 2, y: NODE_H / 2 + 4, "text-anchor": "middle" }, label(name)));
    group.addEventListener("click", () => onSelect(node.id));
    group.addEventListener("keydown", (event) => { if (event.key === "Enter") onSelect(node.id); });
    groups.set(node.id, group);
    nodeLayer.append(group);
  }
  const element = s("svg", {
    class: "dag", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `workflow of ${nodes.length} processes`,
  }, edgeLayer, nodeLayer);
  return {
    element,
    has: (id) => groups.has(id),
    setState(id, state) {
      const group = groups.get(id);
      if (!group) return;
      const name = stateName(state);
      group.setAttribute("class", `node state-${name}`);
      group.setAttribute("data-state", name);
      group.querySelector("title").textContent = `${group.getAttribute("data-name")} (${name})`;
    },
  };
}
