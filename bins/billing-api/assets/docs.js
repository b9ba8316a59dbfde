// billing-api: renders the OpenAPI document (/openapi.json) as a reference
// page. Served by the binary itself at /docs/docs.js; loads nothing else.
"use strict";

const METHODS = ["get", "put", "post", "patch", "delete", "head", "options", "trace"];

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (name === "class") node.className = value; else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function refName(ref) { return ref.split("/").pop(); }

function resolve(doc, value) {
  let seen = 0;
  while (value && value.$ref && seen < 16) {
    const parts = value.$ref.replace(/^#\//, "").split("/");
    value = parts.reduce((node, key) => (node ? node[key] : undefined), doc);
    seen += 1;
  }
  return value || {};
}

// A JSON-like outline of a schema; named schemas stay as their name.
function outline(doc, schema, depth) {
  if (!schema) return "any";
  if (schema.$ref) return refName(schema.$ref);
  if (depth > 3) return "…";
  const pad = "  ".repeat(depth + 1);
  for (const key of ["oneOf", "anyOf", "allOf"]) {
    if (schema[key]) return schema[key].map((s) => outline(doc, s, depth)).join(key === "allOf" ? " & " : " | ");
  }
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  const type = Array.isArray(schema.type) ? schema.type.join(" | ") : schema.type;
  if (type === "array" || (schema.items && !schema.properties)) return "[" + outline(doc, schema.items, depth) + "]";
  if (schema.properties) {
    const required = new Set(schema.required || []);
    const lines = Object.entries(schema.properties).map(([name, property]) =>
      pad + name + (required.has(name) ? "" : "?") + ": " + outline(doc, property, depth + 1));
    return "{\n" + lines.join(",\n") + "\n" + "  ".repeat(depth) + "}";
  }
  return (type || "any") + (schema.format ? " (" + schema.format + ")" : "");
}

function contentBlock(doc, content) {
  const block = el("div");
  for (const [type, media] of Object.entries(content || {})) {
    block.append(el("div", {}, el("code", {}, type)));
    if (media.schema) block.append(el("pre", {}, outline(doc, media.schema, 0)));
    if (media.example !== undefined) block.append(el("pre", {}, JSON.stringify(media.example, null, 2)));
  }
  return block;
}

function parametersTable(doc, parameters) {
  if (!parameters || parameters.length === 0) return null;
  const table = el("table", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "in"),
    el("th", {}, "required"), el("th", {}, "type"), el("th", {}, "description")));
  for (const raw of parameters) {
    const p = resolve(doc, raw);
    table.append(el("tr", {}, el("td", {}, el("code", {}, p.name)), el("td", {}, p.in),
      el("td", {}, p.required ? "yes" : "no"), el("td", {}, el("code", {}, outline(doc, p.schema, 0))),
      el("td", {}, p.description || "")));
  }
  return table;
}

function responsesTable(doc, responses) {
  const table = el("table", {}, el("tr", {}, el("th", {}, "status"), el("th", {}, "description"), el("th", {}, "body")));
  for (const [status, raw] of Object.entries(responses || {})) {
    const response = resolve(doc, raw);
    table.append(el("tr", {}, el("td", {}, el("code", {}, status)), el("td", {}, response.description || ""),
      el("td", {}, contentBlock(doc, response.content))));
  }
  return table;
}

function operationBlock(doc, path, method, operation) {
  const secured = (operation.security || doc.security || []).length > 0;
  const body = el("div", { class: "body" });
  if (operation.description) body.append(el("p", {}, operation.description));
  if (secured) body.append(el("p", { class: "lock" }, "Requires Authorization: Bearer <token>."));
  const parameters = parametersTable(doc, operation.parameters);
  if (parameters) body.append(el("h4", {}, "Parameters"), parameters);
  if (operation.requestBody) {
    const request = resolve(doc, operation.requestBody);
    body.append(el("h4", {}, "Request body" + (request.required ? "" : " (optional)")), contentBlock(doc, request.content));
  }
  body.append(el("h4", {}, "Responses"), responsesTable(doc, operation.responses));
  const details = el("details", { class: "operation", "data-search": (method + " " + path + " " + (operation.summary || "") + " " + (operation.description || "")).toLowerCase() },
    el("summary", {}, el("span", { class: "method " + method }, method), el("span", { class: "path" }, path),
      el("span", { class: "summary" }, operation.summary || "")),
    body);
  return details;
}

function render(doc) {
  document.getElementById("title").textContent = doc.info.title;
  document.title = doc.info.title + " — API reference";
  document.getElementById("version").textContent = "version " + doc.info.version + " · OpenAPI " + doc.openapi;
  document.getElementById("description").textContent = doc.info.description || "";
  const byTag = new Map();
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      const tag = (operation.tags && operation.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operationBlock(doc, path, method, operation));
    }
  }
  const main = document.getElementById("operations");
  main.replaceChildren();
  for (const [tag, blocks] of byTag) {
    main.append(el("section", { class: "tag" }, el("h2", {}, tag), ...blocks));
  }
  const schemas = document.getElementById("schemas");
  for (const [name, schema] of Object.entries((doc.components && doc.components.schemas) || {})) {
    schemas.append(el("details", { class: "operation", "data-search": name.toLowerCase() },
      el("summary", {}, el("span", { class: "path" }, name)),
      el("div", { class: "body" }, schema.description ? el("p", {}, schema.description) : null,
        el("pre", {}, outline(doc, Object.assign({}, schema, { $ref: undefined }), 0)))));
  }
  document.getElementById("schemas-section").hidden = false;
  document.body.dataset.rendered = String(main.querySelectorAll("details.operation").length);
}

function filter(text) {
  const needle = text.trim().toLowerCase();
  for (const node of document.querySelectorAll("details.operation")) {
    node.hidden = needle !== "" && !node.dataset.search.includes(needle);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("filter").addEventListener("input", (event) => filter(event.target.value));
  fetch("/openapi.json", { headers: { Accept: "application/json" } })
    .then((response) => {
      if (!response.ok) throw new Error("/openapi.json answered " + response.status);
      return response.json();
    })
    .then(render)
    .catch((error) => {
      const status = document.getElementById("status");
      status.textContent = "Cannot load the API document: " + error.message;
      status.className = "error";
    });
});
