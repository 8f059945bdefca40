// ja4-platform dashboard charts: small SVG stacked bar charts with axes, units, legend and
// tooltips. No dependencies; every label is set as text (never as markup).
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  function el(tag, attrs, parent) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function niceMax(v) {
    if (v <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }
  function fmt(n) {
    if (n >= 1e9) return (n / 1e9).toFixed(n >= 1e10 ? 0 : 1) + "G";
    if (n >= 1e6) return (n / 1e6).toFixed(n >= 1e7 ? 0 : 1) + "M";
    if (n >= 1e3) return (n / 1e3).toFixed(n >= 1e4 ? 0 : 1) + "k";
    return String(Math.round(n * 100) / 100);
  }
  function pad(n) { return String(n).padStart(2, "0"); }
  function timeLabel(t, step) {
    const d = new Date(t * 1000);
    if (step >= 86400) return (d.getMonth() + 1) + "/" + d.getDate();
    const hm = pad(d.getHours()) + ":" + pad(d.getMinutes());
    return step >= 3600 && d.getHours() === 0 ? (d.getMonth() + 1) + "/" + d.getDate() : hm;
  }
  let tip;
  function showTip(ev, lines) {
    if (!tip) { tip = document.createElement("div"); tip.className = "tip"; document.body.appendChild(tip); }
    tip.replaceChildren();
    lines.forEach((l, i) => { const d = document.createElement("div"); d.textContent = l; if (i === 0) d.style.fontWeight = "600"; tip.appendChild(d); });
    tip.hidden = false;
    tip.style.left = Math.min(ev.clientX + 12, window.innerWidth - 240) + "px";
    tip.style.top = (ev.clientY + 12) + "px";
  }
  function hideTip() { if (tip) tip.hidden = true; }

  // opts: {x: [labels or unix seconds], time: bool, step: seconds, series: [{name, color, values}],
  //        unit: "requests", xUnit: "", height, onLegend(name)}
  function bars(container, opts) {
    container.replaceChildren();
    container.classList.add("chart");
    const W = 800, H = opts.height || 240, L = 52, R = 12, T = 24, B = 34;
    const n = opts.x.length;
    const totals = new Array(n).fill(0);
    opts.series.forEach(s => s.values.forEach((v, i) => { totals[i] += v || 0; }));
    const max = niceMax(Math.max(0, ...totals));
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.title || "chart" }, container);
    const g = el("g", { class: "grid" }, svg);
    const ticks = 4;
    for (let i = 0; i <= ticks; i++) {
      const y = T + (H - T - B) * (1 - i / ticks);
      el("line", { x1: L, x2: W - R, y1: y, y2: y }, g);
      const t = el("text", { x: L - 6, y: y + 4, "text-anchor": "end" }, svg);
      t.textContent = fmt(max * i / ticks);
    }
    const unit = el("text", { x: L, y: 12, "text-anchor": "start" }, svg);
    unit.textContent = opts.unit || "";
    const bw = (W - L - R) / Math.max(1, n);
    const every = Math.max(1, Math.ceil(n / 8));
    for (let i = 0; i < n; i++) {
      let y = H - B;
      const x = L + i * bw;
      opts.series.forEach(s => {
        const v = s.values[i] || 0;
        if (v <= 0) return;
        const h = (H - T - B) * v / max;
        y -= h;
        el("rect", { x: x + Math.min(1, bw * .1), y, width: Math.max(1, bw - Math.max(1, bw * .2)), height: h, fill: s.color }, svg);
      });
      if (i % every === 0) {
        const t = el("text", { x: x + bw / 2, y: H - B + 16, "text-anchor": "middle" }, svg);
        t.textContent = opts.time ? timeLabel(opts.x[i], opts.step) : String(opts.x[i]);
      }
      const hit = el("rect", { x, y: T, width: bw, height: H - T - B, fill: "transparent" }, svg);
      hit.addEventListener("mousemove", ev => {
        const head = opts.time ? new Date(opts.x[i] * 1000).toLocaleString() : (opts.xUnit || "") + " " + opts.x[i];
        const lines = [head];
        opts.series.forEach(s => { if (s.values[i]) lines.push(s.name + ": " + Number(s.values[i]).toLocaleString()); });
        lines.push("total: " + totals[i].toLocaleString() + " " + (opts.unit || ""));
        showTip(ev, lines);
      });
      hit.addEventListener("mouseleave", hideTip);
    }
    el("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }, el("g", { class: "axis" }, svg));
    if (opts.xTitle) {
      const t = el("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" }, svg);
      t.textContent = opts.xTitle;
    }
    const legend = document.createElement("div");
    legend.className = "legend";
    opts.series.forEach(s => {
      const sp = document.createElement("span");
      const sw = document.createElement("i");
      sw.style.background = s.color;
      sp.appendChild(sw);
      sp.appendChild(document.createTextNode(s.label || s.name));
      if (opts.onLegend) { sp.title = "Filter on " + (s.label || s.name); sp.addEventListener("click", () => opts.onLegend(s.name)); }
      legend.appendChild(sp);
    });
    container.appendChild(legend);
  }
  window.Charts = { bars, fmt };
})();
