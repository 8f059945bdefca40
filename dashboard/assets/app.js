// ja4-platform dashboard: a small single-page app over the sidecar's /api.
// Routes live in the URL hash (#/view?range=24h&f=ja4:…&x=ua:…), so every view is a deep
// link; the time range and filter chips carry across views. Every value from the store is
// put into the page as text (textContent), never as markup.
"use strict";
(function () {
  const $ = s => document.querySelector(s);
  let session = null;

  // ---- DOM helper -------------------------------------------------------------------
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    if (attrs) for (const k in attrs) {
      const v = attrs[k];
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "class") e.className = v;
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids.flat(Infinity)) if (k !== null && k !== undefined && k !== false)
      e.appendChild(typeof k === "string" || typeof k === "number" ? document.createTextNode(String(k)) : k);
    return e;
  }
  function toast(msg) {
    const t = h("div", { class: "toast", role: "status" }, msg);
    document.body.appendChild(t);
    setTimeout(() => t.remove(), 3500);
  }

  // ---- routing ---------------------------------------------------------------------
  function route() {
    const hash = location.hash.replace(/^#\/?/, "");
    const [view, qs] = hash.split("?");
    return { view: view || "overview", params: new URLSearchParams(qs || "") };
  }
  const CARRY = ["range", "from", "to", "f", "x"];
  function carried(params) {
    const p = new URLSearchParams();
    for (const [k, v] of params) if (CARRY.includes(k)) p.append(k, v);
    if (!p.has("range") && !p.has("from")) p.set("range", $("#range").value || "24h");
    return p;
  }
  function link(view, extra) {
    const p = carried(route().params);
    for (const k in extra || {}) p.set(k, extra[k]);
    return "#/" + view + "?" + p.toString();
  }
  function go(view, params) { location.hash = "#/" + view + "?" + params.toString(); }
  function addFilter(field, value, exclude) {
    const r = route();
    const p = new URLSearchParams(r.params);
    const k = exclude ? "x" : "f";
    const v = field + ":" + value;
    if (!p.getAll(k).includes(v)) p.append(k, v);
    p.delete("page");
    go(r.view, p);
  }
  function removeFilter(k, v) {
    const r = route();
    const p = new URLSearchParams();
    for (const [kk, vv] of r.params) if (!(kk === k && vv === v) && kk !== "page") p.append(kk, vv);
    go(r.view, p);
  }
  function setParam(key, value) {
    const r = route();
    const p = new URLSearchParams(r.params);
    if (value === null) p.delete(key); else p.set(key, value);
    go(r.view, p);
  }

  // ---- API ----------------------------------------------------------------------------
  // What a feature means, from the registry the session carries (ja4_ml::features).
  function featureMeaning(name) {
    const f = ((session && session.features) || []).find(x => x.name === name);
    return f ? f.meaning + " (" + f.unit + ")" : name;
  }

  async function api(path, params, body) {
    const opts = { headers: {}, credentials: "same-origin" };
    if (body !== undefined) {
      opts.method = "POST";
      opts.headers["content-type"] = "application/json";
      opts.headers["x-csrf-token"] = session ? session.csrf : "";
      opts.body = JSON.stringify(body);
    }
    const url = "/api/" + path + (params ? "?" + params.toString() : "");
    const r = await fetch(url, opts);
    if (r.status === 401 && path !== "login") { showLogin(); throw new Error("log in first"); }
    const j = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(j.error || r.statusText);
    return j;
  }
  function apiParams(extra) {
    const p = carried(route().params);
    for (const [k, v] of route().params) if (!CARRY.includes(k)) p.set(k, v);
    for (const k in extra || {}) p.set(k, extra[k]);
    return p;
  }

  // ---- formatting -----------------------------------------------------------------------
  const nf = new Intl.NumberFormat();
  const num = v => (v === null || v === undefined) ? "" : nf.format(v);
  const pct = v => (v * 100).toFixed(1) + " %";
  function ts(ms) {
    if (!ms) return "";
    const d = new Date(Number(ms));
    const p = n => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }
  function tshort(ms) {
    if (!ms) return "";
    const d = new Date(Number(ms));
    const p = n => String(n).padStart(2, "0");
    return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }
  const VERDICTS = [
    ["bot_critical", "#c92a2a", "Bot · critical"], ["bot_high", "#f03e3e", "Bot · high"],
    ["bot_medium", "#fd7e14", "Bot · medium"], ["bot_low", "#fab005", "Bot · low"],
    ["suspicious", "#fcc419", "Suspicious"], ["verified_bot", "#339af0", "Verified good bot"],
    ["legitimate_browser", "#22b8cf", "Legitimate browser"], ["human", "#51cf66", "Human"],
    ["unscored", "#adb5bd", "Not scored yet"],
  ];
  const verdictLabel = v => (VERDICTS.find(x => x[0] === v) || [v, "", v])[2];
  const badge = v => h("span", { class: "badge v-" + v }, verdictLabel(v));
  const threatBadge = t => h("span", { class: "badge v-" + (t === "none" ? "none" : "bot_" + t) }, t);

  // A cell value with filter (+) and exclude (−) buttons.
  function fcell(field, value, content) {
    const s = String(value);
    return [h("span", { class: "cell", title: s }, content === undefined ? s : content),
      h("button", { class: "f", title: "Filter on " + field + " = " + s, onclick: ev => { ev.stopPropagation(); addFilter(field, s, false); } }, "+"),
      h("button", { class: "f", title: "Exclude " + field + " = " + s, onclick: ev => { ev.stopPropagation(); addFilter(field, s, true); } }, "−")];
  }
  const ipLink = ip => h("a", { href: link("client", { ip }), class: "mono" }, ip);
  // The module's consistency flags (ja4_core::stack::flags), by name.
  const FLAGS = [[1, "ua-tls-library"], [2, "ua-tls-browser"], [4, "ua-h2-library"], [8, "ua-h2-browser"], [16, "tls-h2"], [32, "ua-os-ttl"]];
  const flagsLabel = f => FLAGS.filter(([b]) => Number(f || 0) & b).map(([, n]) => n).join(", ");
  const fpLink = (kind, v, short) => v ? h("a", { href: link("fingerprint", { kind, value: v }), class: "mono" + (short ? " cell short" : ""), title: v }, v) : "";

  // ---- generic table --------------------------------------------------------------
  // cols: [{key, label, num, sort, render(row)}]
  function table(cols, rows, opts) {
    opts = opts || {};
    const r = route();
    const sort = r.params.get("sort"), dir = r.params.get("dir") || "desc";
    const head = h("tr", null, cols.map(c => {
      const sorted = c.sort && sort === c.sort;
      const th = h("th", { class: [c.num ? "num" : "", c.sort ? "sortable" : "", sorted ? "sorted" : "", sorted && dir === "asc" ? "asc" : ""].join(" ") }, c.label);
      if (c.sort) th.addEventListener("click", () => {
        const p = new URLSearchParams(r.params);
        p.set("sort", c.sort);
        p.set("dir", sorted && dir === "desc" ? "asc" : "desc");
        p.delete("page");
        go(r.view, p);
      });
      return th;
    }));
    const body = h("tbody");
    if (!rows.length) body.appendChild(h("tr", null, h("td", { colspan: cols.length, class: "empty" }, "Nothing in this range")));
    rows.forEach(row => {
      const tr = h("tr", null, cols.map(c => h("td", { class: (c.num ? "num" : "") + (c.nowrap ? " nowrap" : "") }, c.render ? c.render(row) : (c.num ? num(row[c.key]) : String(row[c.key] ?? "")))));
      if (opts.onRow) { tr.style.cursor = "pointer"; tr.addEventListener("click", () => opts.onRow(row, tr)); }
      body.appendChild(tr);
    });
    return h("table", null, h("thead", null, head), body);
  }
  function pager(data) {
    const page = data.page || 0, limit = data.limit || 50, total = data.total ?? data.rows.length;
    const from = total ? page * limit + 1 : 0, to = Math.min(total, (page + 1) * limit);
    return h("div", { class: "pager" }, `${num(from)}–${num(to)} of ${num(total)}`,
      h("button", { class: "small", disabled: page === 0, onclick: () => setParam("page", String(page - 1)) }, "‹ Prev"),
      h("button", { class: "small", disabled: to >= total, onclick: () => setParam("page", String(page + 1)) }, "Next ›"));
  }
  function csvButton(path) {
    return h("a", { class: "btn", href: "/api/" + path + "?" + apiParams({ format: "csv" }).toString(), download: "" }, "⤓ CSV");
  }

  // ---- chips & shell ----------------------------------------------------------------
  function renderChips(ignored) {
    const r = route();
    const chips = $("#chips");
    chips.replaceChildren();
    const ign = new Set(ignored || []);
    let any = false;
    for (const [k, v] of r.params) {
      if (k !== "f" && k !== "x") continue;
      any = true;
      const i = v.indexOf(":");
      const label = (k === "x" ? "not " : "") + v.slice(0, i) + " = " + v.slice(i + 1);
      chips.appendChild(h("span", { class: "chip" + (k === "x" ? " exclude" : "") + (ign.has(v) ? " ignored" : ""), title: ign.has(v) ? "does not apply to this view" : "" },
        label, h("button", { title: "Remove filter", "aria-label": "Remove filter " + label, onclick: () => removeFilter(k, v) }, "×")));
    }
    if (any) chips.appendChild(h("button", { class: "small ghost", onclick: () => { const p = carried(new URLSearchParams()); p.set("range", $("#range").value); go(route().view, p); } }, "Clear all"));
    chips.hidden = !any;
  }
  function section(title, ...kids) { return h("div", { class: "card" }, h("h2", null, title), ...kids); }
  function kpi(label, value, small) { return h("div", { class: "card kpi" }, h("div", { class: "label" }, label), h("div", { class: "value" + (small ? " small" : "") }, value)); }

  // Buckets × classes → chart series.
  function seriesFrom(rows, step, from, to, classes) {
    const start = Math.floor(from / 1000 / step) * step, end = Math.floor(to / 1000 / step) * step;
    const x = [];
    for (let t = start; t <= end; t += step) x.push(t);
    const idx = new Map(x.map((t, i) => [t, i]));
    const by = new Map();
    rows.forEach(r => {
      if (!by.has(r.cls)) by.set(r.cls, new Array(x.length).fill(0));
      const i = idx.get(Number(r.t));
      if (i !== undefined) by.get(r.cls)[i] += Number(r.requests);
    });
    const series = classes.filter(c => by.has(c[0])).map(c => ({ name: c[0], color: c[1], label: c[2], values: by.get(c[0]) }));
    for (const [k, v] of by) if (!classes.find(c => c[0] === k)) series.push({ name: k, color: "#868e96", values: v });
    return { x, series };
  }
  function rangeOf() {
    const p = route().params;
    const now = Date.now();
    if (p.get("from")) return [Number(p.get("from")), Number(p.get("to") || now)];
    const r = p.get("range") || $("#range").value || "24h";
    const m = { m: 60e3, h: 3600e3, d: 86400e3 }[r.slice(-1)] * Number(r.slice(0, -1));
    return [now - m, now];
  }

  // ---- views -----------------------------------------------------------------------------
  const views = {};

  views.overview = async (root) => {
    const data = await api("overview", apiParams());
    renderChips(data.ignored_filters);
    const t = data.totals || {};
    root.append(
      h("h1", null, "Overview", h("span", { class: "sub" }, "traffic, verdicts and what stands out")),
      h("div", { class: "grid kpis" },
        kpi("Requests", num(t.requests)), kpi("Clients", num(t.clients)), kpi("Networks", num(t.networks)),
        kpi("JA4 fingerprints", num(t.ja4s)), kpi("Header orders", num(t.ja4hs)), kpi("ASNs", num(t.asns)),
        kpi("No-request conns", num(t.orphans)), kpi("HTTP/2 share", pct(t.h2_share || 0)), kpi("4xx share", pct(t.error_4xx_share || 0))));
    const [from, to] = rangeOf();
    const s = seriesFrom(data.series, data.bucket_seconds, from, to, VERDICTS);
    const chart = h("div", { id: "chart-traffic" });
    const byCls = {};
    data.scores.forEach(r => { byCls[r.cls] = (byCls[r.cls] || 0) + Number(r.clients); });
    const buckets = [...new Set(data.scores.map(r => Number(r.bucket)))].sort((a, b) => a - b);
    const hist = h("div", { id: "chart-scores" });
    const verdictRows = VERDICTS.filter(v => byCls[v[0]]).map(v => h("tr", { class: "toprow", onclick: () => addFilter("verdict", v[0]) },
      h("td", null, badge(v[0])), h("td", { class: "num" }, num(byCls[v[0]]))));
    root.append(h("div", { class: "grid two" },
      section("Requests over time by verdict", chart),
      section("Clients by verdict", h("table", null, h("tbody", null, verdictRows.length ? verdictRows : h("tr", null, h("td", { class: "empty" }, "No scores yet")))), hist)));
    Charts.bars(chart, { x: s.x, time: true, step: data.bucket_seconds, series: s.series, unit: "requests / " + stepLabel(data.bucket_seconds), onLegend: v => addFilter("verdict", v), title: "Requests over time by verdict" });
    const hs = VERDICTS.filter(v => byCls[v[0]]).map(v => ({ name: v[0], label: v[2], color: v[1], values: buckets.map(b => { const r = data.scores.find(x => Number(x.bucket) === b && x.cls === v[0]); return r ? Number(r.clients) : 0; }) }));
    Charts.bars(hist, { x: buckets.map(b => b.toFixed(2)), series: hs, unit: "clients", xTitle: "anomaly score (0 = typical, 1 = most anomalous)", xUnit: "score", height: 200, title: "Score distribution" });
    const tops = h("div", { class: "grid tops" });
    root.append(tops);
    const DIMS = [["ja4", "JA4"], ["ja4_a", "JA4 a (protocol, version, counts)"], ["ja4_b", "JA4 b (ciphers)"], ["ja4_c", "JA4 c (extensions)"], ["ja4h", "JA4H (HTTP headers)"], ["ja4t", "JA4T (TCP)"],
      ["h2", "HTTP/2 (Akamai)"], ["net", "Client networks"], ["ip", "Client IPs"], ["asn", "ASNs"], ["country", "Countries"], ["ua", "User agents"], ["host", "Hosts"], ["path", "Paths"]];
    await Promise.all(DIMS.map(async ([dim, title]) => {
      const card = section(title, h("div", { class: "loading" }, "loading…"));
      card.id = "top-" + dim;
      tops.appendChild(card);
      const d = await api("top", apiParams({ dim, limit: "10" }));
      const max = Math.max(1, ...d.rows.map(r => Number(r.requests)));
      const rows = d.rows.map(r => {
        const val = String(r.value);
        let label = h("span", { class: "cell mono", title: val }, val);
        if (dim === "ip") label = ipLink(val);
        else if (["ja4", "ja4h", "ja4t", "h2"].includes(dim)) label = h("a", { href: link("fingerprint", { kind: dim, value: val }), class: "cell mono", title: val, onclick: ev => ev.stopPropagation() }, val);
        const filterField = dim;
        return h("tr", { class: "toprow", title: "Filter on " + dim + " = " + val, onclick: () => addFilter(filterField, val) },
          h("td", null, label, r.label ? h("div", { class: "muted" }, String(r.label)) : null, h("div", { class: "bar" }, barFill(Number(r.requests) / max))),
          h("td", { class: "num" }, num(r.requests), h("div", { class: "muted" }, num(r.clients) + " clients")),
          h("td", null, h("button", { class: "f", title: "Exclude", onclick: ev => { ev.stopPropagation(); addFilter(filterField, val, true); } }, "−")));
      });
      card.replaceChildren(h("h2", null, title), h("table", null, h("tbody", null, rows.length ? rows : h("tr", null, h("td", { class: "empty" }, "Nothing in this range")))));
    }));
  };
  function barFill(f) { const i = h("i"); i.style.width = Math.max(1, Math.round(f * 100)) + "%"; return i; }
  function stepLabel(s) { return s >= 86400 ? (s / 86400) + " d" : s >= 3600 ? (s / 3600) + " h" : (s / 60) + " min"; }

  function withTitle(e, t) { e.title = t; return e; }
  function reasonsList(rs, max) {
    const all = rs || [];
    const ul = h("ul", { class: "reasons" }, all.slice(0, max || 4).map(r => h("li", null, r)));
    ul.title = all.join("\n");
    return ul;
  }
  function markButtons(kind, subject, compact) {
    const mk = (label, cls) => h("button", { class: "small" + (label === "confirmed_bot" ? " danger" : ""), onclick: async ev => {
      ev.stopPropagation();
      const note = prompt("Note for the audit log (optional):", "") ;
      if (note === null) return;
      try { await api("labels", null, { subject_kind: kind, subject, label, note }); toast("Marked " + subject + " as " + label.replace("_", " ")); }
      catch (e) { toast("Failed: " + e.message); }
    } }, cls);
    return compact
      ? h("span", { class: "actions" }, withTitle(mk("false_positive", "FP"), "Mark " + subject + " a false positive"), withTitle(mk("confirmed_bot", "Bot"), "Confirm " + subject + " is a bot"))
      : h("span", { class: "actions" }, mk("false_positive", "Mark false positive"), mk("confirmed_bot", "Confirm bot"));
  }

  views.detections = async (root) => {
    const d = await api("detections", apiParams());
    renderChips(d.ignored_filters);
    root.append(h("div", { class: "toolbar" }, h("h1", null, "Detections", h("span", { class: "sub" }, "clients the models flagged, latest per client, fingerprint, host and model")), h("span", { class: "spacer" }), csvButton("detections")));
    const cols = [
      { label: "Detected", sort: "detected_at", nowrap: true, render: r => h("span", { title: ts(r.detected_at) }, tshort(r.detected_at)) },
      { label: "Verdict", sort: "threat_rank", nowrap: true, render: r => [fcell("verdict", r.verdict, badge(r.verdict)), r.browser ? h("div", { class: "muted" }, r.browser) : null] },
      { label: "Score", num: true, sort: "score", render: r => Number(r.score).toFixed(3) },
      { label: "Client", sort: "ip", render: r => [ipLink(r.ip), h("button", { class: "f", title: "Filter", onclick: () => addFilter("ip", r.ip) }, "+")] },
      { label: "JA4", nowrap: true, render: r => [fpLink("ja4", r.ja4, true), h("button", { class: "f", onclick: () => addFilter("ja4", r.ja4) }, "+")] },
      { label: "Host", sort: "host", render: r => fcell("host", r.host) },
      { label: "Hits", num: true, sort: "hits" , key: "hits" },
      { label: "ASN", sort: "asn", nowrap: true, render: r => fcell("asn", r.asn) },
      { label: "Country", sort: "country", render: r => fcell("country", r.country) },
      { label: "Campaign", sort: "campaign_id", render: r => r.campaign_id >= 0 ? h("a", { href: link("campaign", { id: r.campaign_id }) }, "#" + (r.campaign_id % 1000)) : "" },
      { label: "Runs", num: true, sort: "recurrence", key: "recurrence" },
      { label: "Why", render: r => reasonsList(r.reasons, 2) },
      { label: "Mark", nowrap: true, render: r => markButtons("ip", r.ip, true) },
    ];
    root.append(h("div", { class: "card" }, table(cols, d.rows), pager(d)));
  };

  views.scores = async (root) => {
    const d = await api("scores", apiParams());
    renderChips(d.ignored_filters);
    root.append(h("div", { class: "toolbar" }, h("h1", null, "Scores", h("span", { class: "sub" }, "every client every scoring run scored")), h("span", { class: "spacer" }), csvButton("scores")));
    const cols = [
      { label: "Scored", sort: "scored_at", nowrap: true, render: r => h("span", { title: ts(r.scored_at) }, tshort(r.scored_at)) },
      { label: "Client", sort: "ip", render: r => ipLink(r.ip) },
      { label: "JA4", render: r => [fpLink("ja4", r.ja4), h("button", { class: "f", onclick: () => addFilter("ja4", r.ja4) }, "+")] },
      { label: "Host", render: r => fcell("host", r.host) },
      { label: "Verdict", render: r => fcell("verdict", r.verdict, badge(r.verdict)) },
      { label: "Bot score", num: true, sort: "bot_score", render: r => h("span", { title: "1 = automated … 99 = human-like; below 30 is flagged" }, String(r.bot_score)) },
      { label: "Score", num: true, sort: "score", render: r => Number(r.score).toFixed(3) },
      { label: "Forest", num: true, sort: "forest_score", render: r => Number(r.forest_score).toFixed(3) },
      { label: "Autoencoder", num: true, sort: "ae_rank", render: r => h("span", { title: "rank of the reconstruction error among the baseline's (raw error " + Number(r.ae_recon_error).toFixed(3) + ")" }, Number(r.ae_rank).toFixed(3)) },
      { label: "Hits", num: true, sort: "hits", key: "hits" },
      { label: "Model", render: r => fcell("model", r.model, r.model + " " + r.version) },
      { label: "Why", render: r => reasonsList(r.reasons) },
    ];
    root.append(h("div", { class: "card" }, table(cols, d.rows), pager(d)));
  };

  views.campaigns = async (root) => {
    const d = await api("campaigns", apiParams());
    renderChips(d.ignored_filters);
    root.append(h("div", { class: "toolbar" }, h("h1", null, "Campaigns", h("span", { class: "sub" }, "clients that behave alike, clustered by the models")), h("span", { class: "spacer" }), csvButton("campaigns")));
    const cols = [
      { label: "Campaign", sort: "campaign_id", render: r => h("a", { href: link("campaign", { id: r.campaign_id }) }, "#" + (r.campaign_id % 1000) + " · " + ts(Math.floor(r.campaign_id / 1000) * 3600e3)) },
      { label: "Verdict", render: r => badge(r.verdict) },
      { label: "Clients", num: true, sort: "clients", key: "clients" },
      { label: "Hits", num: true, sort: "total_hits", key: "total_hits" },
      { label: "Max score", num: true, sort: "max_score", render: r => Number(r.max_score).toFixed(3) },
      { label: "JA4s", render: r => h("div", null, (r.ja4s || []).map(j => h("div", null, fpLink("ja4", j)))) },
      { label: "Hosts", render: r => (r.hosts || []).join(", ") },
      { label: "Last seen", sort: "last_seen", render: r => ts(r.last_seen) },
    ];
    root.append(h("div", { class: "card" }, table(cols, d.rows, { onRow: r => { location.hash = link("campaign", { id: r.campaign_id }); } }), pager(d)));
  };

  views.campaign = async (root) => {
    const id = route().params.get("id");
    const d = await api("campaign", apiParams({ id }));
    renderChips([]);
    const s = d.shared || {};
    root.append(h("h1", null, "Campaign #" + (id % 1000), h("span", { class: "sub" }, d.members.length + " members · window from " + ts(Math.floor(id / 1000) * 3600e3))));
    const chart = h("div");
    const list = (title, xs, f) => h("div", null, h("h2", null, title), h("div", null, (xs || []).map(x => h("div", { class: "mono" }, f ? f(x) : String(x)))));
    root.append(h("div", { class: "grid two" }, section("Requests of the members", chart),
      section("What they share", h("div", { class: "grid" }, list("Header orders (JA4H)", s.ja4hs, v => fpLink("ja4h", v)), list("TCP (JA4T)", s.ja4ts, v => fpLink("ja4t", v)), list("Path patterns", s.path_patterns), list("ASNs", s.asns), list("User agents", s.uas)))));
    const [from, to] = rangeOf();
    const ser = seriesFrom(d.timeline, d.bucket_seconds, from, to, [["requests", "#f03e3e", "requests"]]);
    Charts.bars(chart, { x: ser.x, time: true, step: d.bucket_seconds, series: ser.series, unit: "requests / " + stepLabel(d.bucket_seconds) });
    root.append(h("div", { class: "card" }, h("h2", null, "Members"), table([
      { label: "Client", render: r => ipLink(r.ip) }, { label: "JA4", render: r => fpLink("ja4", r.ja4) }, { label: "Host", key: "host" },
      { label: "Verdict", render: r => badge(r.verdict) }, { label: "Score", num: true, render: r => Number(r.score).toFixed(3) },
      { label: "Hits", num: true, key: "hits" }, { label: "Why", render: r => reasonsList(r.reasons) }], d.members)));
  };

  views.fingerprint = async (root) => {
    const p = route().params;
    const kind = p.get("kind") || "ja4", value = p.get("value") || "";
    const d = await api("fingerprint", apiParams({ kind, value }));
    renderChips([]);
    const s = d.summary || {};
    const app = s.application || s.ja4_application;
    root.append(h("h1", null, kind.toUpperCase() + " ", h("span", { class: "mono" }, value), app ? h("span", { class: "sub" }, "known as " + app + (s.category ? " (" + s.category + ")" : "")) : h("span", { class: "sub" }, "no known application")));
    root.append(h("div", { class: "toolbar" }, markButtons(kind, value), session.role === "admin" && kind === "ja4" ? listButtons("ja4", value) : null,
      h("button", { class: "small", onclick: () => addFilter(kind, value) }, "Filter all views on it")));
    root.append(h("div", { class: "grid kpis" }, kpi("Requests", num(s.requests)), kpi("Clients", num(s.clients)), kpi("ASNs", num(s.asns)),
      kpi("User agents", num(s.user_agents)), kpi("Paths", num(s.paths)), kpi("HTTP/2 share", pct(s.h2_share || 0)),
      kpi("First seen", ts(s.first_seen), true), kpi("Last seen", ts(s.last_seen), true)));
    const chart = h("div");
    root.append(h("div", { class: "grid two" }, section("Requests over time by status", chart), section("Top user agents", h("div", null, (s.top_uas || []).map(u => h("div", { class: "mono" }, u))))));
    const [from, to] = rangeOf();
    const ser = seriesFrom(d.timeline, d.bucket_seconds, from, to, STATUS);
    Charts.bars(chart, { x: ser.x, time: true, step: d.bucket_seconds, series: ser.series, unit: "requests / " + stepLabel(d.bucket_seconds) });
    root.append(h("div", { class: "card" }, h("h2", null, "Clients using it"), table([
      { label: "Client", render: r => ipLink(r.ip) }, { label: "Requests", num: true, key: "requests" }, { label: "Paths", num: true, key: "paths" },
      { label: "ASN", render: r => r.asn + (r.as_name ? " " + r.as_name : "") }, { label: "Country", key: "country" },
      { label: "User agent", render: r => h("span", { class: "cell", title: r.ua }, r.ua) }, { label: "Last seen", render: r => ts(r.last_seen) }], d.clients)));
  };
  const STATUS = [["2xx", "#51cf66", "2xx"], ["3xx", "#339af0", "3xx"], ["4xx", "#fd7e14", "4xx"], ["5xx", "#e03131", "5xx"], ["no request", "#adb5bd", "no request"]];

  function listButtons(kind, value) {
    const mk = action => h("button", { class: "small" + (action === "deny" ? " danger" : ""), onclick: async () => {
      const note = prompt("Note for the audit log (optional):", "");
      if (note === null) return;
      try { await api("lists", null, { kind, value, action, note }); toast((action === "remove" ? "Removed " : "Added to the " + action + " list: ") + value); render(); }
      catch (e) { toast("Failed: " + e.message); }
    } }, action === "remove" ? "Remove from lists" : action === "allow" ? "Allow-list" : action === "challenge" ? "Challenge-list" : "Deny-list");
    return h("span", { class: "actions" }, mk("allow"), mk("challenge"), mk("deny"), mk("remove"));
  }

  views.client = async (root) => {
    const ip = route().params.get("ip") || "";
    const d = await api("client", apiParams({ ip }));
    renderChips([]);
    const s = d.summary || {};
    const latest = d.scores[0];
    root.append(h("h1", null, "Client ", h("span", { class: "mono" }, d.ip), latest ? h("span", { class: "sub" }, badge(latest.verdict)) : null));
    root.append(h("div", { class: "toolbar" }, markButtons("ip", d.ip), session.role === "admin" ? listButtons("ip", d.ip) : null,
      h("button", { class: "small", onclick: () => addFilter("ip", d.ip) }, "Filter all views on it"),
      (d.lists || []).map(l => h("span", { class: "badge v-" + (l.action === "deny" ? "bot_high" : "human") }, "on " + l.action + " list")),
      (d.labels || []).map(l => h("span", { class: "badge v-none" }, "marked " + l.label.replace("_", " ") + " by " + l.analyst))));
    const crawler = s.crawler_name ? `${s.crawler_name} (rule: ${s.crawler_rule}, action: ${s.crawler_action})` : "none";
    const verified = s.bot_ip_name ? `${s.bot_ip_name}${s.bot_ip_verified ? " — in published ranges" : ""}` : "—";
    root.append(h("div", { class: "grid two" },
      section("Identity", h("dl", { class: "kv" },
        h("dt", null, "ASN"), h("dd", null, String(s.asn ?? ""), " ", s.as_name || ""),
        h("dt", null, "Country"), h("dd", null, s.country || "—"),
        h("dt", null, "ASN reputation"), h("dd", null, s.asn_reputation || "—"),
        h("dt", null, "Crawler rule"), h("dd", null, crawler),
        h("dt", null, "Known bot range"), h("dd", null, verified),
        h("dt", null, "Verification"), h("dd", null, latest && latest.verdict === "verified_bot" ? "verified (published range or forward-confirmed reverse DNS)" : latest && (latest.reasons || []).some(r => /spoof|unverified/i.test(r)) ? "claims a crawler but failed verification" : "—"),
        h("dt", null, "Requests"), h("dd", null, num(s.requests) + " (+" + num(s.orphans) + " connections without a request)"),
        h("dt", null, "Hosts / paths"), h("dd", null, num(s.hosts) + " / " + num(s.paths)),
        h("dt", null, "First / last seen"), h("dd", null, ts(s.first_seen) + " → " + ts(s.last_seen)))),
      section("Requests over time", (() => { const c = h("div"); setTimeout(() => { const [from, to] = rangeOf(); const ser = seriesFrom(d.timeline, d.bucket_seconds, from, to, STATUS); Charts.bars(c, { x: ser.x, time: true, step: d.bucket_seconds, series: ser.series, unit: "requests / " + stepLabel(d.bucket_seconds), height: 200 }); }); return c; })())));
    if ((d.actions || []).length) root.append(section("What mitigation did", table([
      { label: "Action", render: r => actionLabel(r.action) }, { label: "Reason", render: r => r.reason || "—" },
      { label: "Requests", num: true, render: r => num(r.requests) }, { label: "Last", nowrap: true, render: r => ts(r.last_seen) }], d.actions)));
    root.append(h("div", { class: "card" }, h("h2", null, "Fingerprints seen"), table([
      { label: "JA4", render: r => fpLink("ja4", r.ja4) }, { label: "JA4H", render: r => fpLink("ja4h", r.ja4h) }, { label: "JA4T", render: r => fpLink("ja4t", r.ja4t) },
      { label: "HTTP/2", render: r => fpLink("h2", r.h2, true) },
      { label: "Contradicts", render: r => flagsLabel(r.consistency) },
      { label: "TLS", key: "tls_version" }, { label: "ALPN", key: "alpn" }, { label: "HTTP", key: "protocol" },
      { label: "User agent", render: r => h("span", { class: "cell", title: r.ua }, r.ua) }, { label: "Known as", key: "application" },
      { label: "Requests", num: true, key: "requests" }], d.fingerprints)));
    root.append(h("div", { class: "card" }, h("h2", null, "Scores over time and what drove them"), table([
      { label: "Scored", render: r => ts(r.scored_at) }, { label: "Verdict", render: r => badge(r.verdict) },
      { label: "Bot score", num: true, render: r => String(r.bot_score) },
      { label: "Score", num: true, render: r => Number(r.score).toFixed(3) }, { label: "Forest", num: true, render: r => Number(r.forest_score).toFixed(3) },
      { label: "Autoencoder", num: true, render: r => h("span", { title: "raw error " + Number(r.ae_recon_error).toFixed(3) }, Number(r.ae_rank).toFixed(3)) }, { label: "JA4", render: r => fpLink("ja4", r.ja4) },
      { label: "Why", render: r => reasonsList(r.reasons) },
      { label: "Features", render: r => h("div", { class: "mono" }, Object.entries(r.features || {}).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1])).slice(0, 6).map(([k, v]) => h("div", { title: featureMeaning(k) }, k + " = " + (Math.round(v * 1000) / 1000)))) }], d.scores)));
    const reqCard = h("div", { class: "card" }, h("div", { class: "toolbar" }, h("h2", null, "Raw requests"), h("span", { class: "spacer" }), csvButton("client/requests")), h("div", { class: "loading" }, "loading…"));
    root.append(reqCard);
    const rq = await api("client/requests", apiParams({ ip }));
    const cols = [
      { label: "Time", nowrap: true, render: r => ts(r.ts) }, { label: "Method", key: "method" }, { label: "Host", key: "host" },
      { label: "Path", render: r => h("span", { class: "cell mono", title: r.path + (r.query ? "?" + r.query : "") }, r.path + (r.query ? "?" + r.query : "")) },
      { label: "Status", num: true, key: "status" }, { label: "Action", render: r => r.action ? actionLabel(r.action) : "" }, { label: "HTTP", key: "protocol" }, { label: "JA4H", render: r => h("span", { class: "mono" }, r.ja4h) },
      { label: "Headers", num: true, render: r => String((r.header_names || []).length) }];
    const t = table(cols, rq.rows, { onRow: (r, tr) => {
      if (tr.nextSibling && tr.nextSibling.classList && tr.nextSibling.classList.contains("detail")) { tr.nextSibling.remove(); return; }
      const lines = ["Header order: " + (r.header_names || []).join(", "), "User-Agent: " + r.ua, "Accept: " + r.accept, "Accept-Language: " + r.accept_language,
        "Accept-Encoding: " + r.accept_encoding, "Sec-Fetch: site=" + r.sec_fetch_site + " mode=" + r.sec_fetch_mode + " dest=" + r.sec_fetch_dest,
        "Sec-CH-UA: " + r.sec_ch_ua + " platform=" + r.sec_ch_ua_platform, "Cookie: " + (r.has_cookie ? "yes" : "no") + "   Referer: " + (r.has_referer ? "yes" : "no"),
        "TLS: " + r.tls_version + " SNI=" + r.sni + "   JA4=" + r.ja4, "HTTP/2: " + (r.h2 || "—") + "   contradictions: " + (flagsLabel(r.consistency) || "none"), "TCP SYN: ttl=" + r.syn_ttl + " window=" + r.syn_window + " mss=" + r.syn_mss + "   JA4T=" + r.ja4t, "Client port: " + r.client_port];
      tr.after(h("tr", { class: "detail" }, h("td", { colspan: cols.length }, h("pre", null, lines.join("\n")))));
    } });
    reqCard.replaceChildren(reqCard.firstChild, t, pager(rq));
  };

  const ACTIONS = [
    ["block", "#e03131", "Blocked"], ["tarpit", "#c92a2a", "Tarpitted"], ["challenge", "#fd7e14", "Challenged"],
    ["challenge_failed", "#fab005", "Challenge failed"], ["challenge_passed", "#22b8cf", "Challenge solved"],
    ["pass", "#339af0", "Let through on a pass"], ["allow", "#51cf66", "Allowed"],
    ["count:block", "#9c36b5", "Would block (count mode)"], ["count:tarpit", "#862e9c", "Would tarpit (count mode)"],
    ["count:challenge", "#cc5de8", "Would challenge (count mode)"],
  ];
  const actionLabel = a => (ACTIONS.find(x => x[0] === a) || [a, "", a])[2];

  views.mitigation = async (root) => {
    const d = await api("mitigation", apiParams());
    renderChips(d.ignored_filters);
    const by = Object.fromEntries(d.actions.map(r => [r.action, r]));
    const n = a => Number((by[a] || {}).requests || 0);
    const total = d.actions.reduce((t, r) => t + Number(r.requests), 0);
    const challenged = Number((by.challenge || {}).challenged_clients || 0), solved = Number((by.challenge_passed || {}).solved_clients || 0);
    root.append(
      h("h1", null, "Mitigation", h("span", { class: "sub" }, "what mod_ja4 allowed, challenged, blocked and rate-limited")),
      h("div", { class: "grid kpis" },
        kpi("Requests decided", num(total)), kpi("Allowed", num(n("allow") + n("pass"))), kpi("Challenged", num(n("challenge"))),
        kpi("Blocked", num(n("block") + n("tarpit"))), kpi("Challenge solve rate", challenged ? pct(Math.min(1, solved / challenged)) : "—"),
        kpi("Would act (count mode)", num(n("count:block") + n("count:tarpit") + n("count:challenge")))));
    if (!total) {
      root.append(section("No decisions in this range", h("p", { class: "muted" },
        "mod_ja4 records what it does once JA4Mitigation is Count or Enforce (see the README: JA4Mitigation, JA4Action, JA4RateLimit).")));
      return;
    }
    const [from, to] = rangeOf();
    const ser = seriesFrom(d.series, d.bucket_seconds, from, to, ACTIONS);
    const chart = h("div", { id: "chart-mitigation" });
    root.append(h("div", { class: "grid two" },
      section("Requests over time by action", chart),
      section("By action", table([{ label: "Action", render: r => fcell("action", r.action, actionLabel(r.action)) },
        { label: "Requests", num: true, render: r => num(r.requests) }, { label: "Clients", num: true, render: r => num(r.clients) }], d.actions))));
    Charts.bars(chart, { x: ser.x, time: true, step: d.bucket_seconds, series: ser.series, unit: "requests / " + stepLabel(d.bucket_seconds), onLegend: a => addFilter("action", a), title: "Requests over time by action" });
    root.append(section("Why: mitigated requests by reason", table([
      { label: "Action", render: r => actionLabel(r.action) },
      { label: "Reason", render: r => r.reason === "decision" ? "sidecar decision" : r.reason },
      { label: "Verdict", render: r => r.verdict === "bot" ? h("span", { class: "badge v-bot_high" }, "Bot") : r.verdict ? badge(r.verdict) : "—" },
      { label: "Requests", num: true, render: r => num(r.requests) }, { label: "Clients", num: true, render: r => num(r.clients) }], d.reasons)));
    root.append(h("div", { class: "grid two" },
      section("Most mitigated clients", table([
        { label: "Client", render: r => ipLink(r.value) }, { label: "JA4", render: r => fpLink("ja4", r.example, true) },
        { label: "Mitigated", num: true, render: r => num(r.mitigated) }, { label: "Last action", render: r => actionLabel(r.last_action) },
        { label: "Last seen", nowrap: true, render: r => tshort(r.last_seen) }], d.clients)),
      section("Most mitigated JA4s", table([
        { label: "JA4", render: r => fpLink("ja4", r.value, true) }, { label: "Clients", num: true, render: r => num(r.clients) },
        { label: "Mitigated", num: true, render: r => num(r.mitigated) }], d.ja4s))));
  };

  views.audit = async (root) => {
    const d = await api("audit", apiParams());
    renderChips(d.ignored_filters);
    root.append(h("div", { class: "toolbar" }, h("h1", null, "Audit log", h("span", { class: "sub" }, "logins, marks, list changes, exports")), h("span", { class: "spacer" }), csvButton("audit")));
    root.append(h("div", { class: "card" }, table([
      { label: "Time", sort: "ts", nowrap: true, render: r => ts(r.ts) }, { label: "Who", sort: "actor", render: r => fcell("actor", r.actor) },
      { label: "Role", key: "role" }, { label: "Action", sort: "action", render: r => fcell("action", r.action) },
      { label: "Target", render: r => h("span", { class: "mono" }, r.target) }, { label: "OK", render: r => r.success ? "✓" : h("span", { class: "error" }, "✗") },
      { label: "From", render: r => h("span", { class: "mono" }, r.client_ip) },
      { label: "Details", render: r => h("span", { class: "muted" }, Object.entries(r.details || {}).map(([k, v]) => k + "=" + v).join(" ")) }], d.rows), pager(d)));
  };

  views.admin = async (root) => {
    renderChips([]);
    root.append(h("h1", null, "Administration"));
    if (session.role !== "admin") { root.append(h("p", { class: "error" }, "This page needs the admin role.")); return; }
    const [u, l] = await Promise.all([api("users"), api("lists")]);
    const name = h("input", { placeholder: "name", id: "new-user" }), role = h("select", null, h("option", null, "analyst"), h("option", null, "admin")),
      pw = h("input", { type: "password", placeholder: "password (10+ characters)", id: "new-password" });
    root.append(h("div", { class: "grid two" },
      section("Users", table([{ label: "Name", key: "name" }, { label: "Role", key: "role" }, { label: "Created", render: r => ts(r.created * 1000) },
        { label: "", render: r => h("button", { class: "small", onclick: async () => { try { await api("users", null, { name: r.name, disabled: !r.disabled }); render(); } catch (e) { toast(e.message); } } }, r.disabled ? "Enable" : "Disable") }], u.rows),
        h("form", { class: "inline", onsubmit: async ev => { ev.preventDefault(); try { await api("users", null, { name: name.value, role: role.value, password: pw.value }); toast("Saved " + name.value); render(); } catch (e) { toast(e.message); } } },
          name, role, pw, h("button", { class: "primary", type: "submit" }, "Add / reset"))),
      section("Allow and deny lists", table([{ label: "Kind", key: "kind" }, { label: "Value", render: r => h("span", { class: "mono" }, r.value) }, { label: "Action", key: "action" },
        { label: "By", key: "analyst" }, { label: "Note", key: "note" }, { label: "When", render: r => ts(r.updated_at) },
        { label: "Expires", render: r => r.expires_at ? ts(r.expires_at) : "never" }], l.rows))));
  };

  // ---- shell --------------------------------------------------------------------------
  let seq = 0;
  async function render() {
    if (!session) return;
    const my = ++seq;
    const r = route();
    const range = r.params.get("range");
    if (range) $("#range").value = range;
    document.querySelectorAll("#nav a").forEach(a => a.classList.toggle("active", a.dataset.view === r.view || (r.view === "campaign" && a.dataset.view === "campaigns")));
    for (const a of document.querySelectorAll("#nav a")) a.setAttribute("href", link(a.dataset.view));
    const root = h("div");
    const v = views[r.view] || views.overview;
    const holder = $("#view");
    holder.replaceChildren(h("div", { class: "loading" }, "loading…"));
    try {
      const pending = v(root);
      holder.replaceChildren(root);
      await pending;
    } catch (e) {
      if (my === seq) holder.replaceChildren(h("div", { class: "card error" }, "Could not load this view: " + e.message));
    }
  }
  function showLogin() {
    session = null;
    $("#top").hidden = true; $("#chips").hidden = true; $("#view").replaceChildren();
    $("#login").hidden = false;
    $("#login-user").focus();
  }
  async function start() {
    try { session = await api("session"); } catch (e) { return; }
    $("#login").hidden = true;
    $("#top").hidden = false;
    $("#who").textContent = session.user + " · " + session.role;
    $("#nav-admin").hidden = session.role !== "admin";
    render();
  }
  function theme(t) {
    document.documentElement.dataset.theme = t;
    try { localStorage.setItem("ja4-theme", t); } catch (e) { /* private mode */ }
  }
  document.addEventListener("DOMContentLoaded", () => {
    let t = null;
    try { t = localStorage.getItem("ja4-theme"); } catch (e) { /* private mode */ }
    theme(t || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"));
    $("#theme").addEventListener("click", () => { theme(document.documentElement.dataset.theme === "dark" ? "light" : "dark"); render(); });
    $("#range").value = route().params.get("range") || "24h";
    $("#range").addEventListener("change", () => {
      const r = route(); const p = new URLSearchParams(r.params);
      p.delete("from"); p.delete("to"); p.delete("page"); p.set("range", $("#range").value); go(r.view, p);
    });
    $("#logout").addEventListener("click", async () => { try { await api("logout", null, {}); } catch (e) { /* already out */ } showLogin(); });
    $("#login").addEventListener("submit", async ev => {
      ev.preventDefault();
      const err = $("#login-error");
      err.hidden = true;
      try {
        session = await api("login", null, { user: $("#login-user").value, password: $("#login-password").value });
        $("#login-password").value = "";
        start();
      } catch (e) { err.textContent = e.message === "log in first" ? "Wrong user or password." : e.message; err.hidden = false; }
    });
    window.addEventListener("hashchange", render);
    start();
  });
})();
