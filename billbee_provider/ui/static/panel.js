// The "Billbee request" tab. Reads its task from the URL, asks the panel's JSON routes
// (same origin, the Airflow session cookie), and builds the page with textContent only:
// nothing from the server is ever parsed as HTML.
"use strict";

const query = new URLSearchParams(window.location.search);
const ref = {
  dag_id: query.get("dag_id") || "",
  run_id: query.get("run_id") || "",
  task_id: query.get("task_id") || "",
  map_index: query.get("map_index") || "-1",
};
const refQuery = new URLSearchParams(ref).toString();
const POLL_MS = 2000;
const REJECTS_PAGE = 50;
let pollTimer = null;

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(path, options = {}, extra = "") {
  const response = await fetch(`api/${path}?${refQuery}${extra}`, { credentials: "same-origin", ...options });
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    const detail = data && data.detail ? (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail)) : response.statusText;
    throw new ApiError(response.status, detail);
  }
  return data;
}

function post(path, body = {}) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function section(title, id, ...children) {
  return el("section", { id, "aria-labelledby": `${id}-title` }, el("h2", { id: `${id}-title` }, title), ...children);
}

function table(headers, rows, attrs = {}) {
  return el(
    "table",
    attrs,
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c ?? "–"))))),
  );
}

function problemList(problems, count) {
  const items = problems.map((p) => {
    const cut = p.indexOf(": ");
    return cut > 0 ? el("li", {}, el("code", {}, p.slice(0, cut)), ": ", p.slice(cut + 2)) : el("li", {}, p);
  });
  const more = count && count > problems.length ? el("p", { class: "muted" }, `${count} problems in all.`) : null;
  return [el("ul", { class: "problems" }, items), more];
}

function status(kind, text) {
  return el("p", { class: `status ${kind}`, role: kind === "bad" ? "alert" : "status" }, text);
}

// -- customer tasks -------------------------------------------------------------------

function httpMessage(req) {
  // The request as it goes over the wire: request line, headers, blank line, body.
  const head = [`${req.method} ${req.url}`, ...req.headers.map(([name, value]) => `${name}: ${value}`)].join("\n");
  return `${head}\n\n${req.body}`;
}

function requestSection(data) {
  if (!data.rendered) {
    return section(
      "Request",
      "request",
      el("p", { class: "muted" }, "The task has not rendered its request yet: it shows here once the task has started. A dry run (param dry_run) renders and validates it without sending."),
    );
  }
  return section(
    "Request",
    "request",
    el("p", { class: "muted" }, "As the task sends it; the API key and password are shown as ***."),
    el("pre", { id: "request-message", class: "body" }, httpMessage(data.request)),
  );
}

function validationBlock(req, checkedAt) {
  const when = checkedAt ? el("span", { class: "muted" }, ` (checked ${checkedAt})`) : null;
  if (req.valid) return el("div", { id: "validation-result" }, status("ok", "Valid against the Billbee schema."), when);
  return el(
    "div",
    { id: "validation-result" },
    status("bad", `${req.problem_count} problem(s): Billbee would refuse this body.`),
    when,
    problemList(req.problems, req.problem_count),
  );
}

function validationSection(data) {
  if (!data.rendered) return null;
  const holder = el("div", {}, validationBlock(data.request));
  const button = el("button", {
    id: "validate-button",
    type: "button",
    onclick: async () => {
      button.disabled = true;
      try {
        const result = await post("validate");
        holder.replaceChildren(validationBlock(result.request, new Date().toLocaleTimeString()));
      } catch (err) {
        holder.replaceChildren(status("bad", `Validate failed: ${err.message}`));
      } finally {
        button.disabled = false;
      }
    },
  }, "Validate");
  return section("Validation", "validation", el("p", { class: "muted" }, "Checks the body against Billbee's schema. Never sends anything."), button, holder);
}

function describeAnswer(answer) {
  if (!answer) return [el("p", { class: "muted", id: "run-answer" }, "No answer yet: the task has not sent its request.")];
  const parts = [];
  const o = answer.outcome;
  if (o === "created" || o === "returned" || o === "existing") {
    const what = o === "existing" ? "Already in Billbee (found by e-mail on a later try): " : "Created: ";
    parts.push(status("ok", `${what}Id ${answer.Id ?? "–"}${answer.Number ? `, Number ${answer.Number}` : ""}`));
  } else if (o === "dry_run") {
    parts.push(status("warn", "Dry run: validated, nothing was sent."));
  } else if (o === "invalid") {
    parts.push(status("bad", "The body is invalid; nothing was sent."));
  } else {
    const code = answer.error_code != null ? `ErrorCode ${answer.error_code} ${answer.error_name || ""}` : "";
    parts.push(status("bad", `Failed${answer.status ? `: HTTP ${answer.status}` : ""}${code ? `, ${code}` : ""}`));
    if (answer.message) parts.push(el("pre", { class: "message" }, answer.message));
  }
  if (answer.problems && answer.problems.length) parts.push(...problemList(answer.problems));
  if (answer.elapsed_ms != null && answer.status != null) parts.push(el("p", { class: "muted" }, `Billbee answered in ${Number(answer.elapsed_ms).toFixed(1)} ms (HTTP ${answer.status}).`));
  return [el("div", { id: "run-answer" }, parts)];
}

function responseSection(data) {
  if (!data.sends) {
    return section("Billbee's answer to this run", "response", el("p", { class: "muted", id: "run-answer" }, "This task only validates the body; it sends nothing. The create task's tab shows Billbee's answer."));
  }
  return section("Billbee's answer to this run", "response", ...describeAnswer(data.response));
}

function testResult(result) {
  const r = result.response;
  const rows = [
    ["Outcome", r.outcome],
    ["HTTP status", r.status],
    ["Id", r.Id],
    ["ErrorCode", r.error_code != null ? `${r.error_code} ${r.error_name || ""}` : null],
    ["Time", r.elapsed_ms != null ? `${r.elapsed_ms} ms` : null],
  ];
  return el(
    "div",
    { id: "test-result" },
    status(r.outcome === "created" ? "ok" : "bad", r.outcome === "created" ? `Billbee created customer Id ${r.Id}.` : `Not created (${r.outcome}).`),
    table(["", ""], rows, { class: "facts" }),
    r.message ? el("pre", { class: "message" }, r.message) : null,
    r.problems && r.problems.length ? problemList(r.problems) : null,
    r.envelope != null ? [el("h3", {}, "Response body"), el("pre", { class: "body", id: "test-envelope" }, JSON.stringify(r.envelope, null, 2))] : null,
  );
}

function sendsTable(sends) {
  if (!sends || !sends.length) return el("p", { class: "muted", id: "test-sends" }, "No test sends yet.");
  return table(
    ["When (UTC)", "Who", "Outcome", "HTTP", "Id", "Host"],
    sends.map((s) => [s.when, s.who, s.outcome, s.status, s.Id, s.host]),
    { id: "test-sends" },
  );
}

function testRequestSection(data) {
  if (!data.rendered || !data.sends) return null;
  const rights = data.rights;
  const result = el("div", {});
  const sendsHolder = el("div", {}, sendsTable(data.test_sends));
  const confirm = rights.confirm_host
    ? el("label", {}, `Type the host name (${rights.confirm_host}) to confirm: `, el("input", { id: "confirm-host", type: "text", autocomplete: "off" }))
    : null;
  const canSend = rights.test_request && data.request && data.request.valid;
  const button = el("button", {
    id: "test-request-button",
    type: "button",
    class: "danger",
    disabled: !canSend,
    onclick: async () => {
      button.disabled = true;
      result.replaceChildren(el("p", { class: "muted" }, "Sending…"));
      try {
        const input = document.getElementById("confirm-host");
        const answer = await post("test-request", { confirm_host: input ? input.value : null });
        result.replaceChildren(testResult(answer));
        sendsHolder.replaceChildren(sendsTable(answer.test_sends));
      } catch (err) {
        result.replaceChildren(status("bad", `Test request refused (${err.status || "error"}): ${err.message}`));
      } finally {
        button.disabled = false;
      }
    },
  }, "Test request");
  const why = !rights.test_request
    ? el("p", { class: "muted", id: "test-request-disabled" }, rights.test_request_reason)
    : data.request && !data.request.valid
      ? el("p", { class: "muted", id: "test-request-disabled" }, "Fix the problems above first.")
      : null;
  return section(
    "Test request",
    "test-request",
    el("p", { class: "warning" }, "Sends this body to Billbee now, through the task's connection: it creates a real customer. The send is recorded below and in Airflow's audit log."),
    confirm,
    button,
    why,
    result,
    el("h3", {}, "Test sends of this task"),
    sendsHolder,
  );
}

// -- every Billbee task ---------------------------------------------------------------

function connectionSection(data) {
  const c = data.connection;
  const result = el("div", { id: "connection-result" });
  const button = el("button", {
    id: "test-connection-button",
    type: "button",
    disabled: !data.rights.test_connection,
    onclick: async () => {
      button.disabled = true;
      result.replaceChildren(el("p", { class: "muted" }, "Testing…"));
      try {
        const answer = await post("test-connection");
        result.replaceChildren(status(answer.ok ? "ok" : "bad", answer.message));
      } catch (err) {
        result.replaceChildren(status("bad", `Connection test refused (${err.status || "error"}): ${err.message}`));
      } finally {
        button.disabled = false;
      }
    },
  }, "Test connection");
  return section(
    "Connection",
    "connection",
    el("p", {}, "Connection ", el("code", {}, c.conn_id), c.base_url ? [": ", el("code", {}, c.base_url)] : null),
    c.problem ? status("bad", c.problem) : null,
    button,
    data.rights.test_connection ? null : el("p", { class: "muted" }, "Connection tests are disabled ([core] test_connection)."),
    result,
  );
}

function header(data) {
  const t = data.task;
  const title = data.kind === "import" ? "Billbee import" : "Billbee request";
  const mapped = Number(t.map_index) >= 0 ? ` [${t.map_index}]` : "";
  return el(
    "header",
    {},
    el("h1", {}, title),
    el("p", { class: "muted" }, `${t.task_id}${mapped} · ${t.operator || "?"} · try ${t.try_number ?? "–"} · ${t.state || "no state"}`),
  );
}

// -- import tasks ---------------------------------------------------------------------

function fmtSeconds(s) {
  if (s === null || s === undefined) return "unknown";
  const t = Math.round(s);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  return `${h ? `${h} h ` : ""}${m ? `${m} min ` : ""}${t % 60} s`;
}

function progressSection(imp, taskState) {
  const p = imp.progress;
  if (!p) return section("Progress", "progress", el("p", { class: "muted" }, imp.note || "No progress yet: the create task writes it once it runs."));
  return section(
    "Progress",
    "progress",
    el("progress", { max: p.rows_total || 1, value: p.rows_done || 0, "aria-label": "rows done" }),
    table(
      ["State", "Rows done", "Creates/s", "429s", "ETA"],
      [[shownState(p.state, taskState), `${p.rows_done} / ${p.rows_total}`, Number(p.creates_per_s || 0).toFixed(2), p.throttled_429, p.state === "running" ? fmtSeconds(p.eta_s) : "–"]],
      { id: "progress-table" },
    ),
  );
}

const ACTIVE_STATES = ["running", "queued", "scheduled", "up_for_retry", "up_for_reschedule", "deferred", "restarting"];

function shownState(progressState, taskState) {
  // A killed task leaves "running" in its progress file: the task's own state is the truth.
  if (progressState === "running" && !ACTIVE_STATES.includes(taskState || "")) return `stopped (task ${taskState || "not running"})`;
  return progressState;
}

function summarySection(imp) {
  const s = imp.summary;
  if (!s) return null;
  const counts = Object.entries(s.counts || {}).map(([k, v]) => [k, v]);
  const facts = [
    ["rows read", s.rows_read],
    ["rejected (validation)", s.rejected_by_validation],
    ["rejected by Billbee", s.rejected_by_billbee],
    ["create phase (s)", s.create_seconds],
    ["rate (creates/s)", s.rate_per_second],
    ["429s seen", s.throttled_429],
  ];
  return section(
    "Summary",
    "summary",
    el(
      "div",
      { class: "row" },
      table(["", ""], facts, { class: "facts", id: "summary-facts" }),
      el("div", {}, el("h3", {}, "Valid rows, by outcome"), table(["Outcome", "Rows"], counts, { id: "summary-counts" })),
    ),
  );
}

// Built once and kept across refreshes: the page shown and the table stay while the tab polls.
let rejects = null;

function rejectsSection() {
  if (rejects) {
    rejects.load();
    return rejects.node;
  }
  const holder = el("div", { id: "rejects" }, el("p", { class: "muted" }, "Loading rejects…"));
  let offset = 0;
  async function load() {
    try {
      const page = await api("rejects", {}, `&offset=${offset}&limit=${REJECTS_PAGE}`);
      if (!page.total) {
        holder.replaceChildren(el("p", { class: "muted" }, "No rejected rows."));
        return;
      }
      const last = Math.min(offset + page.rows.length, page.total);
      const prev = el("button", { type: "button", disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - REJECTS_PAGE); load(); } }, "Previous");
      const next = el("button", { type: "button", disabled: last >= page.total, onclick: () => { offset += REJECTS_PAGE; load(); } }, "Next");
      holder.replaceChildren(
        table(["Row", "Line", "Stage", "Field", "Reason"], page.rows.map((r) => [r.row, r.line, r.stage, r.field ? el("code", {}, r.field) : "–", r.reason]), { id: "rejects-table" }),
        el("p", { class: "pager" }, prev, ` ${offset + 1}–${last} of ${page.total} `, next),
      );
    } catch (err) {
      holder.replaceChildren(status("bad", `Rejects cannot be shown: ${err.message}`));
    }
  }
  rejects = { node: section("Rejected rows", "rejects-section", holder), load };
  load();
  return rejects.node;
}

function filesSection(imp) {
  const links = ["results", "rejects"]
    .filter((name) => imp.files && imp.files[name])
    .map((name) => el("li", {}, el("a", { href: `api/file?${refQuery}&name=${name}`, download: true }, `${name}.csv`), " ", el("code", { class: "muted" }, imp.files[name])));
  if (!links.length) return null;
  return section("Files", "files", el("ul", {}, links));
}

// -- page -----------------------------------------------------------------------------

function renderCustomer(data) {
  return [header(data), responseSection(data), requestSection(data), validationSection(data), testRequestSection(data), connectionSection(data)];
}

function renderImport(data) {
  const imp = data.import;
  return [header(data), progressSection(imp, data.task.state), summarySection(imp), imp.files && imp.files.rejects ? rejectsSection() : null, filesSection(imp), connectionSection(data)];
}

async function refresh() {
  const root = document.getElementById("panel");
  let data;
  try {
    data = await api("task");
  } catch (err) {
    root.replaceChildren(status("bad", err.status === 404 ? "No such task instance." : `The panel cannot load: ${err.message}`));
    return;
  }
  if (data.kind === "other") {
    root.replaceChildren(header(data), el("p", { class: "muted" }, "This task is not one of the Billbee operators: nothing to show here."));
    return;
  }
  root.replaceChildren(...(data.kind === "customer" ? renderCustomer(data) : renderImport(data)).filter(Boolean));
  clearTimeout(pollTimer);
  // An import's summary and rejects come when its run ends (report), after the create task.
  const runActive = data.kind === "import" && ["running", "queued"].includes(data.task.run_state || "");
  if (ACTIVE_STATES.includes(data.task.state || "") || runActive) pollTimer = setTimeout(refresh, POLL_MS);
}

refresh();
