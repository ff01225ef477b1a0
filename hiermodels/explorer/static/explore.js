"use strict";
// The hiermodels shrinkage explorer. Plain JavaScript and inline SVG: no library,
// no network. Every displayed number carries its full-precision value in a
// data-value attribute, so the page can be checked against the Python API.
(function () {
  const DATA = JSON.parse(document.getElementById("hm-data").textContent);
  const ROOT = document.getElementById("hm-explorer");
  const SVGNS = "http://www.w3.org/2000/svg";
  const COLORS = {
    raw: "#7f7f7f", eb: "#1f77b4", morris: "#ff7f0e", fb: "#2ca02c",
    truth: "#000000", js: "#9467bd", pooled: "#d62728", js0: "#8c564b", band: "#e3eee3",
  };

  // ------------------------------------------------------------ DOM helpers
  function html(tag, attrs, parent, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }
  function svg(tag, attrs, parent, text) {
    const node = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }
  function fmt(x, digits) {
    if (x === null || x === undefined || !isFinite(x)) return "–";
    const a = Math.abs(x);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return x.toExponential(2);
    return x.toFixed(digits === undefined ? 3 : digits);
  }
  // A number shown to people, with its exact value for machines.
  function setNumber(node, x, digits) {
    node.dataset.value = x === null || !isFinite(x) ? "" : String(x);
    node.textContent = fmt(x, digits);
  }
  function cell(row, field, x, digits) {
    const td = html("td", { "data-field": field }, row);
    setNumber(td, x, digits);
    return td;
  }
  function panel(parent, heading, note) {
    const box = html("section", { class: "panel" }, parent);
    html("h2", {}, box, heading);
    if (note) html("p", { class: "note" }, box, note);
    return box;
  }
  function legend(parent, items) {
    const box = html("div", { class: "legend" }, parent);
    for (const [label, color, shape] of items) {
      const item = html("span", { class: "legend-item" }, box);
      const icon = svg("svg", { width: 22, height: 12 }, item);
      if (shape === "line") svg("line", { x1: 1, x2: 21, y1: 6, y2: 6, stroke: color, "stroke-width": 2 }, icon);
      else if (shape === "dash") svg("line", { x1: 1, x2: 21, y1: 6, y2: 6, stroke: color, "stroke-width": 2, "stroke-dasharray": "4 3" }, icon);
      else if (shape === "band") svg("rect", { x: 1, y: 1, width: 20, height: 10, fill: color }, icon);
      else if (shape === "ring") svg("circle", { cx: 11, cy: 6, r: 5, fill: "none", stroke: color, "stroke-width": 1.5 }, icon);
      else if (shape === "open") svg("circle", { cx: 11, cy: 6, r: 4, fill: "white", stroke: color, "stroke-width": 1.5 }, icon);
      else svg("circle", { cx: 11, cy: 6, r: 4, fill: color }, icon);
      html("span", {}, item, label);
    }
    return box;
  }
  function slider(parent, id, label, min, max, step, value) {
    const row = html("div", { class: "control" }, parent);
    html("label", { for: id }, row, label);
    const input = html("input", { type: "range", id: id, min: min, max: max, step: step }, row);
    input.value = value;
    const out = html("output", { id: id.replace("-slider", "-value"), for: id }, row);
    return { input: input, out: out };
  }

  // ------------------------------------------------------------ maths
  function sum(a) { let s = 0; for (const x of a) s += x; return s; }
  const LANCZOS = [0.99999999999980993, 676.5203681218851, -1259.1392167224028,
    771.32342877765313, -176.61502916214059, 12.507343278686905,
    -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  function lgamma(x) {
    if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lgamma(1 - x);
    x -= 1;
    let a = LANCZOS[0];
    const t = x + 7.5;
    for (let i = 1; i < 9; i++) a += LANCZOS[i] / (x + i);
    return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
  }
  function betaln(a, b) { return lgamma(a) + lgamma(b) - lgamma(a + b); }
  // mulberry32: a small seeded generator, so a seed gives the same draws in every browser.
  function generator(seed) {
    let state = seed >>> 0;
    function uniform() {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
    }
    return function normal() {
      return Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
    };
  }

  // ------------------------------------------------------------ charts
  function linear(d0, d1, r0, r1) {
    const f = (x) => r0 + (x - d0) / (d1 - d0) * (r1 - r0);
    f.domain = [d0, d1];
    return f;
  }
  function niceTicks(lo, hi, count) {
    const span = hi - lo;
    if (!(span > 0)) return [lo];
    const raw = span / (count || 5);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => span / s <= (count || 5)) || 10 * mag;
    const ticks = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-12 * span; t += step) ticks.push(+t.toPrecision(12));
    return ticks;
  }
  // Tick labels with as many decimals as the spacing needs: 200, 0.25, not 200.00, 0.25.
  function tickLabels(ticks) {
    const step = ticks.length > 1 ? ticks[1] - ticks[0] : Math.abs(ticks[0]) || 1;
    const digits = clamp(-Math.floor(Math.log10(step) + 1e-9), 0, 6);
    return ticks.map((t) => [t, fmt(t, digits)]);
  }
  // A chart: an svg with margins, an x and a y scale, axes and labels.
  function chart(parent, opts) {
    const width = opts.width || 640, height = opts.height || 260;
    const m = { left: 62, right: 16, top: opts.top || 12, bottom: 44 };
    // data-plot: the plotting area (left top right bottom), where every curve stays; data-y: the y range
    const root = svg("svg", { width: width, height: height, class: "chart", id: opts.id,
      "data-plot": [m.left, m.top, width - m.right, height - m.bottom].join(" "), "data-y": opts.y.join(" ") }, parent);
    const x = linear(opts.x[0], opts.x[1], m.left, width - m.right);
    const y = linear(opts.y[0], opts.y[1], height - m.bottom, m.top);
    const axes = svg("g", { class: "axes" }, root);
    svg("line", { x1: m.left, x2: width - m.right, y1: height - m.bottom, y2: height - m.bottom, class: "axis" }, axes);
    svg("line", { x1: m.left, x2: m.left, y1: m.top, y2: height - m.bottom, class: "axis" }, axes);
    const xticks = opts.xticks || tickLabels(niceTicks(opts.x[0], opts.x[1], 6));
    for (const [t, label] of xticks) {
      svg("line", { x1: x(t), x2: x(t), y1: height - m.bottom, y2: height - m.bottom + 4, class: "axis" }, axes);
      svg("text", { x: x(t), y: height - m.bottom + 16, "text-anchor": "middle", class: "tick" }, axes, label);
    }
    if (opts.yticks !== false) {
      const yticks = opts.yticks || tickLabels(niceTicks(opts.y[0], opts.y[1], 5));
      for (const [t, label] of yticks) {
        svg("line", { x1: m.left - 4, x2: m.left, y1: y(t), y2: y(t), class: "axis" }, axes);
        svg("text", { x: m.left - 6, y: y(t) + 4, "text-anchor": "end", class: "tick" }, axes, label);
      }
    }
    svg("text", { x: (m.left + width - m.right) / 2, y: height - 6, "text-anchor": "middle", class: "label" }, axes, opts.xlabel);
    if (opts.ylabel) svg("text", { x: 14, y: (m.top + height - m.bottom) / 2, "text-anchor": "middle", class: "label",
      transform: `rotate(-90 14 ${(m.top + height - m.bottom) / 2})` }, axes, opts.ylabel);
    const layer = svg("g", {}, root);
    return { root: root, layer: layer, x: x, y: y, m: m, width: width, height: height };
  }
  // The part of segment a–b inside box [xlo, xhi, ylo, yhi] (Liang–Barsky), as fractions [t0, t1] of it.
  function clipSegment(a, b, box) {
    let t0 = 0, t1 = 1;
    const dx = b[0] - a[0], dy = b[1] - a[1];
    for (const [p, q] of [[-dx, a[0] - box[0]], [dx, box[1] - a[0]], [-dy, a[1] - box[2]], [dy, box[3] - a[1]]]) {
      if (p === 0) { if (q < 0) return null; continue; }
      const r = q / p;
      if (p < 0) { if (r > t1) return null; t0 = Math.max(t0, r); } else { if (r < t0) return null; t1 = Math.min(t1, r); }
    }
    return [t0, t1];
  }
  // A curve through data points, cut where it leaves the scales' domains: what lies outside is
  // not drawn (no flat line along an edge), and the curve resumes where it comes back.
  function clippedPath(xs, ys, points) {
    const box = [Math.min(...xs.domain), Math.max(...xs.domain), Math.min(...ys.domain), Math.max(...ys.domain)];
    let d = "";
    let pen = false;
    const at = (a, b, t) => [xs(a[0] + t * (b[0] - a[0])), ys(a[1] + t * (b[1] - a[1]))];
    for (let j = 1; j < points.length; j++) {
      const a = points[j - 1], b = points[j];
      const part = a.every(isFinite) && b.every(isFinite) ? clipSegment(a, b, box) : null;
      if (part === null) { pen = false; continue; }
      const [p0, p1] = [at(a, b, part[0]), at(a, b, part[1])];
      if (!pen || part[0] > 0) d += "M" + p0[0].toFixed(2) + "," + p0[1].toFixed(2);
      d += "L" + p1[0].toFixed(2) + "," + p1[1].toFixed(2);
      pen = part[1] === 1;
    }
    return d;
  }
  // The stretches of a grid where flags hold, in words: "τ > 0.25", "0.1 < τ < 0.3", "τ < 0.01".
  function stretches(flags, values, name) {
    const out = [];
    for (let j = 0; j < flags.length; j++) {
      if (!flags[j] || (j > 0 && flags[j - 1])) continue;
      let e = j;
      while (e + 1 < flags.length && flags[e + 1]) e++;
      const lo = fmt(values[j], 3), hi = fmt(values[e], 3);
      if (j === 0 && e === flags.length - 1) out.push(`every ${name}`);
      else if (j === 0) out.push(`${name} ≤ ${hi}`);
      else if (e === flags.length - 1) out.push(`${name} ≥ ${lo}`);
      else out.push(`${lo} ≤ ${name} ≤ ${hi}`);
    }
    return out.join(" and ");
  }
  function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }
  function vline(c, xv, color, cls) {
    return svg("line", { x1: c.x(xv), x2: c.x(xv), y1: c.m.top, y2: c.height - c.m.bottom, stroke: color, class: cls || "marker" }, c.layer);
  }
  function rangeOf(values) {
    const v = values.filter((a) => a !== null && isFinite(a));
    return [Math.min(...v), Math.max(...v)];
  }
  function pad([lo, hi], frac) {
    const d = (hi - lo) * frac || Math.abs(lo) * frac || 1;
    return [lo - d, hi + d];
  }
  // A log-scale slider position with a stop at 0: position 0 is 0, 1..N log-spaced.
  function logPositions(lo, hi, n) {
    return {
      value: (s) => (s <= 0 ? 0 : lo * Math.pow(hi / lo, (s - 1) / (n - 1))),
      position: (v) => (v <= 0 ? 0 : clamp(1 + (n - 1) * Math.log(v / lo) / Math.log(hi / lo), 1, n)),
      ticks: function () {
        const out = [[0, "0"]];
        for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
          for (const m of [1, 3]) {
            const v = m * Math.pow(10, e);
            if (v >= lo && v <= hi && this.position(v) > 0.06 * n) out.push([this.position(v), String(+v.toPrecision(2))]);
          }
        }
        return out;
      },
      n: n,
    };
  }

  // A data label inside a sentence: "Player" reads "player"; acronyms such as "ID" stay.
  function inText(name) {
    return /^[A-Z][a-z]/.test(name) ? name[0].toLowerCase() + name.slice(1) : name;
  }
  function header(description) {
    html("h1", {}, ROOT, DATA.title);
    if (description) html("p", { class: "intro" }, ROOT, description);
  }
  function footer(text) { html("p", { class: "note footer" }, ROOT, text); }

  // ------------------------------------------------------------ normal–normal
  function normalExplorer() {
    const k = DATA.y.length;
    const y = DATA.y, v = DATA.se.map((s) => s * s), z = DATA.z;
    const pct = Math.round(DATA.ci_prob * 100);
    const scale = logPositions(DATA.tau_range[0], DATA.tau_range[1], 1000);
    const state = { tau: DATA.estimates.ml.tau };
    const unitWord = inText(DATA.unit_name);
    header(`Each ${unitWord}'s ${DATA.value_name} y is measured with a known standard error; ` +
      "the true values are drawn from N(μ, τ²). Move τ: every estimate moves between its raw value " +
      "(τ large: no pooling) and the pooled mean (τ = 0: complete pooling).");

    function at(tau) {
      const t2 = tau * tau;
      const w = v.map((vi) => 1 / (vi + t2));
      const mu = sum(w.map((wi, i) => wi * y[i])) / sum(w);
      const B = v.map((vi) => vi / (vi + t2));
      const ebMean = y.map((yi, i) => mu + (1 - B[i]) * (yi - mu));
      const ebSd = v.map((vi, i) => Math.sqrt((1 - B[i]) * vi));
      const loglik = sum(y.map((yi, i) => -0.5 * Math.log(2 * Math.PI * (v[i] + t2)) - 0.5 * (yi - mu) ** 2 / (v[i] + t2)));
      const out = { mu: mu, B: B, ebMean: ebMean, ebSd: ebSd, loglik: loglik };
      if (DATA.morris) {
        // Morris (1983) at A = tau^2: B corrected by (k-3)/(k-1), variance of the mean and of B added.
        const Bm = v.map((vi) => (k - 3) / (k - 1) * vi / (vi + t2));
        out.morrisMean = y.map((yi, i) => yi - Bm[i] * (yi - mu));
        out.morrisSd = y.map((yi, i) => Math.sqrt(v[i] * (1 - (k - 1) / k * Bm[i]) + 2 / (k - 3) * Bm[i] ** 2 * (yi - mu) ** 2));
      }
      if (DATA.truth) out.tse = sum(out.ebMean.map((e, i) => (e - DATA.truth[i]) ** 2));
      return out;
    }

    // controls
    const controls = html("section", { class: "controls" }, ROOT);
    const s = slider(controls, "tau-slider", "τ (prior SD, log scale; left end τ = 0)", 0, scale.n, 1, Math.round(scale.position(state.tau)));
    const readout = html("div", { class: "readout" }, controls);
    html("span", {}, readout, "pooled mean μ(τ) = ");
    const muOut = html("span", { id: "mu-value" }, readout);
    html("span", {}, readout, "   log-likelihood = ");
    const llOut = html("span", { id: "loglik-value" }, readout);
    const buttons = html("div", { class: "buttons" }, controls);
    const marks = [];
    for (const [key, est] of Object.entries(DATA.estimates)) marks.push([key, est.label, est.tau, COLORS.pooled]);
    if (DATA.morris_a !== undefined && DATA.morris_a !== null) marks.push(["morris", "Morris Â", Math.sqrt(DATA.morris_a), COLORS.morris]);
    if (DATA.james_stein && DATA.james_stein.tau !== null) marks.push(["js", "James–Stein", DATA.james_stein.tau, COLORS.js]);
    for (const [key, label, tau] of marks) {
      const b = html("button", { type: "button", "data-set-tau": key }, buttons, `${label}: τ = ${fmt(tau, 4)}`);
      b.addEventListener("click", () => setTau(tau));
    }
    const zeroNotes = marks.filter((mk) => mk[2] === 0).map((mk) => mk[1]);
    if (zeroNotes.length) html("p", { class: "note" }, controls,
      `${zeroNotes.join(", ")}: τ̂ = 0, a boundary estimate (complete pooling), marked at the left end.`);

    // shrinkage panel
    const shrinkBox = panel(ROOT, `Estimates and ${pct}% intervals at the chosen τ`,
      "Plain EB and Morris intervals are recomputed in the page at the chosen τ (Morris's formula with A = τ²; " +
      "at the Morris Â it is exactly Morris's interval). The full-Bayes intervals average over the posterior of (μ, τ), " +
      "so they do not depend on the slider: they are fixed, computed in Python on a grid.");
    const legendItems = [["raw y", COLORS.raw, "open"], ["EB posterior mean", COLORS.eb, "dot"],
      ["pooled mean μ(τ)", COLORS.pooled, "dash"], ["plain EB interval", COLORS.eb, "line"]];
    if (DATA.morris) legendItems.push(["Morris interval", COLORS.morris, "line"]);
    legendItems.push(["full-Bayes interval (fixed)", COLORS.fb, "line"]);
    if (DATA.truth) legendItems.push(["truth (rest of season)", COLORS.truth, "dot"]);
    legend(shrinkBox, legendItems);
    // Filled in by draw(): why Morris differs from plain EB, and what a zero-width EB interval means.
    const morrisNote = DATA.morris ? html("p", { class: "note", id: "morris-note" }, shrinkBox) : null;
    const zeroWidthNote = html("p", { class: "note", id: "eb-zero-width-note" }, shrinkBox);
    const fb = DATA.full_bayes;
    const xr = pad(rangeOf([...y.map((yi, i) => yi - 2.2 * DATA.se[i]), ...y.map((yi, i) => yi + 2.2 * DATA.se[i]), ...fb.lower, ...fb.upper, ...(DATA.truth || [])]), 0.02);
    const order = y.map((_, i) => i).sort((a, b) => y[a] - y[b]);
    const rowH = 26;
    const sc = chart(shrinkBox, { id: "shrinkage-chart", x: xr, y: [k, 0], height: k * rowH + 60, xlabel: DATA.value_name, yticks: false });
    order.forEach((i, r) => svg("text", { x: sc.m.left - 6, y: sc.y(r + 0.5) + 4, "text-anchor": "end", class: "tick" }, sc.root, DATA.units[i]));
    const dyn = svg("g", {}, sc.layer);

    // tau panels
    const tauBox = panel(ROOT, "τ: likelihood and full-Bayes posterior",
      `Top: the log-likelihood of τ with μ profiled out (μ = the precision-weighted mean). Bottom: the posterior density of τ ` +
      `under the full-Bayes hyperpriors ${fb.priors}, computed in Python on a grid of ${fb.tau.length} values of τ (μ integrated out exactly). ` +
      "Vertical lines: the estimates; the grey band follows the slider.");
    // Estimates closer than a few pixels share one label, "ML, REML: τ = 0", instead of a pile of labels.
    const markGroups = [];
    for (const mk of [...marks].sort((a, b) => a[2] - b[2])) {
      const last = markGroups[markGroups.length - 1];
      if (last && scale.position(mk[2]) - scale.position(last[0][2]) < 0.006 * scale.n) last.push(mk);
      else markGroups.push([mk]);
    }
    for (const group of markGroups) group.sort((a, b) => marks.indexOf(a) - marks.indexOf(b));
    const markLabel = (group) => {
      const values = group.map((mk) => (mk[2] === 0 ? "0" : fmt(mk[2], 4)));
      return values.every((v) => v === values[0]) ? `${group.map((mk) => mk[1]).join(", ")}: τ = ${values[0]}`
        : group.map((mk, j) => `${mk[1]}: τ = ${values[j]}`).join(", ");
    };
    // the labels sit in a strip above the plotting area, one line per group, clear of the curves
    const labelTop = 14 + 11 * markGroups.length;
    const positions = [];
    for (let p = 0; p <= scale.n; p += 4) positions.push(p);
    const llCurve = positions.map((p) => at(scale.value(p)).loglik);
    const llRange = rangeOf(llCurve);
    // A likelihood matters within a few units of its maximum: the panel shows the top LL_DEPTH units.
    const LL_DEPTH = 15;
    const lc = chart(tauBox, { id: "loglik-chart", x: [0, scale.n], y: pad([Math.max(llRange[0], llRange[1] - LL_DEPTH), llRange[1]], 0.05), height: 220 + labelTop, top: labelTop,
      xticks: scale.ticks(), xlabel: "τ", ylabel: "log-likelihood" });
    svg("path", { d: clippedPath(lc.x, lc.y, positions.map((p, j) => [p, llCurve[j]])), class: "curve", stroke: COLORS.eb }, lc.layer);
    if (llRange[0] < lc.y.domain[0]) {
      const below = llCurve.map((l) => l < lc.y.domain[0]);
      html("p", { class: "note", id: "loglik-clip-note" }, tauBox,
        `The log-likelihood axis reaches about ${LL_DEPTH} units below its maximum; where the curve falls further ` +
        `(${stretches(below, positions.map((p) => scale.value(p)), "τ")}) it leaves the panel and is not drawn.`);
    }
    const dc = chart(tauBox, { id: "posterior-chart", x: [0, scale.n], y: [0, Math.max(...fb.density) * 1.08], height: 200 + labelTop, top: labelTop,
      xticks: scale.ticks(), xlabel: "τ", ylabel: "posterior density" });
    svg("path", { d: clippedPath(dc.x, dc.y, fb.tau.map((t, j) => [scale.position(t), fb.density[j]])), class: "curve", stroke: COLORS.fb }, dc.layer);
    for (const c of [lc, dc]) markGroups.forEach((group, g) => {
      for (const [, , tau, color] of group) vline(c, scale.position(tau), color, "marker");
      const px = c.x(scale.position(group[0][2]));
      // a label that would run off the chart's right edge ends at its line instead (10px text: about 5.5px a character)
      const right = px + 3 + 5.5 * markLabel(group).length > c.width;
      svg("line", { x1: px, x2: px, y1: 4 + 11 * g, y2: c.m.top, stroke: "#bbb", class: "thin" }, c.layer);
      svg("text", { x: right ? px - 3 : px + 3, y: 12 + 11 * g, "text-anchor": right ? "end" : "start", class: "mark-label",
        fill: group.length === 1 ? group[0][3] : "#444" }, c.layer, markLabel(group));
    });
    const cursors = [lc, dc].map((c) => vline(c, 0, "#444", "cursor"));

    // baseball: total squared error
    let tseOut = null, tseCursor = null;
    if (DATA.truth) {
      const tseBox = panel(ROOT, "Total squared error against the rest-of-season averages",
        "Σ (estimate − truth)² over the players, as τ moves; horizontal lines: the raw averages and James–Stein" +
        (DATA.james_stein && DATA.james_stein.tau !== null ? "; the vertical purple line: the τ at which EB shrinks as much as James–Stein." : "."));
      const tseCurve = positions.map((p) => at(scale.value(p)).tse);
      const rawTse = sum(y.map((yi, i) => (yi - DATA.truth[i]) ** 2));
      const jsTse = DATA.james_stein ? sum(DATA.james_stein.estimates.map((e, i) => (e - DATA.truth[i]) ** 2)) : null;
      const tr = pad(rangeOf([...tseCurve, rawTse, jsTse]), 0.05);
      legend(tseBox, [["EB at τ", COLORS.eb, "line"], ["raw", COLORS.raw, "dash"], ["James–Stein", COLORS.js, "dash"]]);
      const tc = chart(tseBox, { id: "tse-chart", x: [0, scale.n], y: tr, height: 220, xticks: scale.ticks(), xlabel: "τ", ylabel: "total squared error" });
      svg("path", { d: clippedPath(tc.x, tc.y, positions.map((p, j) => [p, tseCurve[j]])), class: "curve", stroke: COLORS.eb }, tc.layer);
      for (const [val, color] of [[rawTse, COLORS.raw], [jsTse, COLORS.js]]) {
        if (val !== null) svg("line", { x1: tc.m.left, x2: tc.width - tc.m.right, y1: tc.y(val), y2: tc.y(val), stroke: color, class: "marker" }, tc.layer);
      }
      if (DATA.james_stein && DATA.james_stein.tau !== null) vline(tc, scale.position(DATA.james_stein.tau), COLORS.js, "marker");
      tseCursor = vline(tc, 0, "#444", "cursor");
      const tseRow = html("p", { class: "readout" }, tseBox);
      html("span", {}, tseRow, "EB at τ: ");
      tseOut = html("span", { id: "tse-eb" }, tseRow);
      html("span", {}, tseRow, "   raw: ");
      setNumber(html("span", { id: "tse-raw" }, tseRow), rawTse, 4);
      if (jsTse !== null) { html("span", {}, tseRow, "   James–Stein: "); setNumber(html("span", { id: "tse-js" }, tseRow), jsTse, 4); }
    }

    // table
    const tableBox = panel(ROOT, "Every number at the chosen τ",
      `B = se²/(se² + τ²) is the weight on the pooled mean; intervals are ${pct}%. Full-Bayes columns are fixed.` +
      (DATA.morris ? " The Morris columns shrink less and are wider than plain EB's, as explained under the first chart." : ""));
    const table = html("table", { id: "units-table" }, tableBox);
    const head = html("tr", {}, html("thead", {}, table));
    const cols = [DATA.unit_name, "y", "se", "B", "EB mean", "EB lower", "EB upper"];
    if (DATA.morris) cols.push("Morris mean", "Morris lower", "Morris upper");
    cols.push("full-Bayes mean", "full-Bayes lower", "full-Bayes upper");
    if (DATA.truth) cols.push("truth");
    for (const c of cols) html("th", {}, head, c);
    const body = html("tbody", {}, table);
    const rows = DATA.units.map((u, i) => {
      const row = html("tr", { "data-unit": u }, body);
      html("th", {}, row, u);
      cell(row, "y", y[i], 4); cell(row, "se", DATA.se[i], 4);
      const cells = { B: cell(row, "B", 0), eb_mean: cell(row, "eb_mean", 0), eb_lower: cell(row, "eb_lower", 0), eb_upper: cell(row, "eb_upper", 0) };
      if (DATA.morris) for (const f of ["morris_mean", "morris_lower", "morris_upper"]) cells[f] = cell(row, f, 0);
      cell(row, "fb_mean", fb.mean[i], 4); cell(row, "fb_lower", fb.lower[i], 4); cell(row, "fb_upper", fb.upper[i], 4);
      if (DATA.truth) cell(row, "truth", DATA.truth[i], 4);
      return cells;
    });

    function draw() {
      const r = at(state.tau);
      const tauOut = s.out;
      setNumber(tauOut, state.tau, 4);
      tauOut.textContent = "τ = " + tauOut.textContent;
      setNumber(muOut, r.mu, 4);
      setNumber(llOut, r.loglik, 4);
      const p = scale.position(state.tau);
      for (const c of cursors) { c.setAttribute("x1", lc.x(p)); c.setAttribute("x2", lc.x(p)); }
      if (tseCursor) { tseCursor.setAttribute("x1", lc.x(p)); tseCursor.setAttribute("x2", lc.x(p)); setNumber(tseOut, r.tse, 4); }
      rows.forEach((cells, i) => {
        setNumber(cells.B, r.B[i], 4);
        setNumber(cells.eb_mean, r.ebMean[i], 4);
        setNumber(cells.eb_lower, r.ebMean[i] - z * r.ebSd[i], 4);
        setNumber(cells.eb_upper, r.ebMean[i] + z * r.ebSd[i], 4);
        if (DATA.morris) {
          setNumber(cells.morris_mean, r.morrisMean[i], 4);
          setNumber(cells.morris_lower, r.morrisMean[i] - z * r.morrisSd[i], 4);
          setNumber(cells.morris_upper, r.morrisMean[i] + z * r.morrisSd[i], 4);
        }
      });
      if (morrisNote) {
        const gap = r.ebMean.map((e, i) => Math.abs(e - r.morrisMean[i]));
        const i = gap.indexOf(Math.max(...gap));
        morrisNote.textContent = `Why the Morris columns differ from plain EB at the same τ: Morris (1983) allows for ` +
          `estimating μ and A = τ² from the data. He multiplies each shrinkage factor B by (k − 3)/(k − 1) = ${k - 3}/${k - 1}, ` +
          `so every estimate moves only ${k - 3}/${k - 1} of the plain-EB distance towards μ(τ) ` +
          `(at this τ, ${unitWord} ${DATA.units[i]}: plain EB ${fmt(r.ebMean[i], 4)}, Morris ${fmt(r.morrisMean[i], 4)}). ` +
          `With B* = ${k - 3}/${k - 1}·B his variance is se²(1 − (k − 1)/k·B*) + 2/(k − 3)·B*²(y − μ)²: the first term ` +
          "includes the uncertainty of the estimated μ, the second that of the estimated A, so his intervals are wider. " +
          "At τ = √Â (the Morris Â button) these are exactly Morris's intervals; at other τ, his formula with A = τ².";
      }
      zeroWidthNote.textContent = state.tau === 0 ? "Plain EB treats the estimated μ and τ as known: at τ = 0 its intervals " +
        `have no width (every estimate is μ(τ) exactly)${DATA.morris ? "; the Morris and" : "; the"} full-Bayes intervals allow for that uncertainty.` : "";
      zeroWidthNote.hidden = state.tau !== 0;
      dyn.replaceChildren();
      const X = (val) => sc.x(clamp(val, xr[0], xr[1]));
      svg("line", { x1: sc.x(r.mu), x2: sc.x(r.mu), y1: sc.m.top, y2: sc.height - sc.m.bottom, stroke: COLORS.pooled, class: "dashed" }, dyn);
      order.forEach((i, row) => {
        const yc = sc.y(row + 0.5);
        const bars = [[r.ebMean[i] - z * r.ebSd[i], r.ebMean[i] + z * r.ebSd[i], COLORS.eb, -6]];
        if (DATA.morris) bars.push([r.morrisMean[i] - z * r.morrisSd[i], r.morrisMean[i] + z * r.morrisSd[i], COLORS.morris, 0]);
        bars.push([fb.lower[i], fb.upper[i], COLORS.fb, 6]);
        for (const [lo, hi, color, dy] of bars) svg("line", { x1: X(lo), x2: X(hi), y1: yc + dy, y2: yc + dy, stroke: color, class: "interval" }, dyn);
        svg("line", { x1: X(y[i]), x2: X(r.ebMean[i]), y1: yc, y2: yc, stroke: COLORS.raw, class: "thin" }, dyn);
        svg("circle", { cx: X(y[i]), cy: yc, r: 4.5, fill: "white", stroke: COLORS.raw, "stroke-width": 1.5 }, dyn);
        if (DATA.truth) svg("circle", { cx: X(DATA.truth[i]), cy: yc, r: 3, fill: COLORS.truth }, dyn);
        svg("circle", { cx: X(r.ebMean[i]), cy: yc, r: 4.5, fill: COLORS.eb }, dyn);
      });
    }
    function setTau(tau) {
      state.tau = tau;
      s.input.value = Math.round(scale.position(tau));
      draw();
    }
    s.input.addEventListener("input", () => { state.tau = scale.value(+s.input.value); draw(); });
    draw();
    footer("Computed in the page: μ(τ), B, the EB and Morris intervals, the log-likelihood curve and the squared errors. " +
      "Computed in Python and inlined: the ML, REML and moment estimates of τ, James–Stein, the full-Bayes grid.");
    return { setTau: setTau, state: state };
  }

  // ------------------------------------------------------------ beta–binomial
  function betaExplorer() {
    const yv = DATA.successes, n = DATA.trials, kk = yv.length;
    const logit = (p) => Math.log(p / (1 - p)), expit = (x) => 1 / (1 + Math.exp(-x));
    const muScale = { n: 1000, lo: -5, hi: 2, value(s) { return expit(this.lo + (this.hi - this.lo) * s / this.n); },
      position(m) { return (logit(m) - this.lo) / (this.hi - this.lo) * this.n; } };
    const mScale = { n: 1000, lo: Math.log(0.5), hi: Math.log(1e4), value(s) { return Math.exp(this.lo + (this.hi - this.lo) * s / this.n); },
      position(m) { return (Math.log(m) - this.lo) / (this.hi - this.lo) * this.n; } };
    const mle = DATA.mle;
    // Each log-likelihood panel shows the top LL_DEPTH units below the curve's maximum.
    const LL_DEPTH = 40;
    const state = { mu: mle.mu, strength: mle.strength === null ? 1e4 : mle.strength };
    const logChoose = yv.map((y, i) => lgamma(n[i] + 1) - lgamma(y + 1) - lgamma(n[i] - y + 1));
    function loglik(mu, m) {
      const a = mu * m, b = (1 - mu) * m;
      return sum(yv.map((y, i) => logChoose[i] + betaln(a + y, b + n[i] - y) - betaln(a, b)));
    }
    header(`Each ${inText(DATA.unit_name)} has y tumours among n rats; the rates are drawn from a Beta prior with mean μ and strength M = α + β. ` +
      "The posterior mean (α + y)/(M + n) is the raw rate y/n pulled towards μ with weight B = M/(M + n).");
    const controls = html("section", { class: "controls" }, ROOT);
    const sMu = slider(controls, "mu-slider", "prior mean μ (logit scale)", 0, muScale.n, 1, Math.round(muScale.position(state.mu)));
    const sM = slider(controls, "strength-slider", "prior strength M = α + β (log scale)", 0, mScale.n, 1, Math.round(mScale.position(state.strength)));
    const readout = html("div", { class: "readout" }, controls);
    html("span", {}, readout, "marginal log-likelihood = ");
    const llOut = html("span", { id: "loglik-value" }, readout);
    const b = html("button", { type: "button", "data-set": "mle" }, html("div", { class: "buttons" }, controls),
      mle.strength === null ? `MLE: μ = ${fmt(mle.mu, 4)}, M = ∞ (complete pooling)` : `MLE: μ̂ = ${fmt(mle.mu, 4)}, M̂ = ${fmt(mle.strength, 2)}`);
    b.addEventListener("click", () => set(mle.mu, mle.strength === null ? 1e4 : mle.strength));

    const shrinkBox = panel(ROOT, "Raw rates (top) and posterior means (bottom)",
      "Each line joins a unit's raw rate y/n to its posterior mean at the chosen prior; dot area grows with n.");
    legend(shrinkBox, [["raw rate y/n", COLORS.raw, "open"], ["posterior mean", COLORS.eb, "dot"], ["prior mean μ", COLORS.pooled, "dash"]]);
    const raw = yv.map((y, i) => y / n[i]);
    const xr = [0, Math.max(0.5, Math.max(...raw) * 1.05)];
    const sc = chart(shrinkBox, { id: "shrinkage-chart", x: xr, y: [0, 1], height: 220, xlabel: "tumour rate", yticks: [[0.8, "raw"], [0.2, "posterior"]] });
    const dyn = svg("g", {}, sc.layer);

    const llBox = panel(ROOT, "Marginal log-likelihood along each slider",
      "Left: as a function of M at the chosen μ; right: as a function of μ at the chosen M. The red line marks the MLE, the grey one the slider. " +
      `Each vertical axis reaches about ${LL_DEPTH} units below the curve's maximum; where the curve falls further it leaves the panel and is not drawn.`);
    const row = html("div", { class: "row" }, llBox);
    const mPos = [], muPos = [];
    for (let p = 0; p <= 1000; p += 10) { mPos.push(p); muPos.push(p); }
    const cm = chart(row, { id: "loglik-strength-chart", width: 430, height: 220, x: [0, 1000], y: [0, 1], xlabel: "M (log scale)", ylabel: "log-likelihood", yticks: [],
      xticks: [0.5, 1, 3, 10, 30, 100, 300, 1000, 3000, 10000].map((m) => [mScale.position(m), String(m)]) });
    const cmu = chart(row, { id: "loglik-mean-chart", width: 430, height: 220, x: [0, 1000], y: [0, 1], xlabel: "μ (logit scale)", ylabel: "log-likelihood", yticks: [],
      xticks: [0.01, 0.03, 0.1, 0.3, 0.5, 0.7].map((m) => [muScale.position(m), String(m)]) });
    const curveLayers = [svg("g", {}, cm.layer), svg("g", {}, cmu.layer)];

    const tableBox = panel(ROOT, "Every number at the chosen prior", "B = M/(M + n); posterior sd of the Beta(α + y, β + n − y).");
    const table = html("table", { id: "units-table" }, tableBox);
    const head = html("tr", {}, html("thead", {}, table));
    for (const c of [DATA.unit_name, "y", "n", "y/n", "B", "posterior mean", "posterior sd"]) html("th", {}, head, c);
    const body = html("tbody", {}, table);
    const cells = DATA.units.map((u, i) => {
      const r = html("tr", { "data-unit": u }, body);
      html("th", {}, r, u);
      cell(r, "y", yv[i], 0); cell(r, "n", n[i], 0); cell(r, "raw", raw[i], 3);
      return { B: cell(r, "B", 0), post_mean: cell(r, "post_mean", 0), post_sd: cell(r, "post_sd", 0) };
    });

    function drawCurve(c, layer, xs, values, markX) {
      layer.replaceChildren();
      const [lo, hi] = rangeOf(values);
      const floor = Math.max(lo, hi - LL_DEPTH);
      const ys = linear(floor - 1, hi + 1, c.height - c.m.bottom, c.m.top);
      c.root.setAttribute("data-y", `${floor - 1} ${hi + 1}`);
      svg("path", { d: clippedPath(c.x, ys, xs.map((p, j) => [p, values[j]])), class: "curve", stroke: COLORS.eb }, layer);
      for (const t of niceTicks(floor - 1, hi + 1, 4)) svg("text", { x: c.m.left - 6, y: ys(t) + 4, "text-anchor": "end", class: "tick" }, layer, fmt(t, 0));
      for (const [p, color, cls] of markX) if (p !== null) svg("line", { x1: c.x(p), x2: c.x(p), y1: c.m.top, y2: c.height - c.m.bottom, stroke: color, class: cls }, layer);
    }
    function draw() {
      const mu = state.mu, m = state.strength;
      setNumber(sMu.out, mu, 4); sMu.out.textContent = "μ = " + sMu.out.textContent;
      setNumber(sM.out, m, 4); sM.out.textContent = "M = " + sM.out.textContent;
      setNumber(llOut, loglik(mu, m), 4);
      const a = mu * m;
      const post = yv.map((y, i) => (a + y) / (m + n[i]));
      cells.forEach((c, i) => {
        const pa = a + yv[i], pb = (1 - mu) * m + n[i] - yv[i];
        setNumber(c.B, m / (m + n[i]), 4);
        setNumber(c.post_mean, post[i], 4);
        setNumber(c.post_sd, Math.sqrt(pa * pb / ((pa + pb) ** 2 * (pa + pb + 1))), 4);
      });
      dyn.replaceChildren();
      svg("line", { x1: sc.x(mu), x2: sc.x(mu), y1: sc.m.top, y2: sc.height - sc.m.bottom, stroke: COLORS.pooled, class: "dashed" }, dyn);
      yv.forEach((_, i) => {
        svg("line", { x1: sc.x(raw[i]), x2: sc.x(post[i]), y1: sc.y(0.8), y2: sc.y(0.2), stroke: COLORS.raw, class: "thin" }, dyn);
        const r = 2 + Math.sqrt(n[i]) / 2;
        svg("circle", { cx: sc.x(raw[i]), cy: sc.y(0.8), r: r, fill: "white", stroke: COLORS.raw, "fill-opacity": 0.6 }, dyn);
        svg("circle", { cx: sc.x(post[i]), cy: sc.y(0.2), r: r, fill: COLORS.eb, "fill-opacity": 0.5 }, dyn);
      });
      const mleM = mle.strength === null ? null : mScale.position(mle.strength);
      drawCurve(cm, curveLayers[0], mPos, mPos.map((p) => loglik(mu, mScale.value(p))), [[mleM, COLORS.pooled, "marker"], [mScale.position(m), "#444", "cursor"]]);
      drawCurve(cmu, curveLayers[1], muPos, muPos.map((p) => loglik(muScale.value(p), m)), [[muScale.position(mle.mu), COLORS.pooled, "marker"], [muScale.position(mu), "#444", "cursor"]]);
    }
    function set(mu, m) {
      state.mu = mu; state.strength = m;
      sMu.input.value = Math.round(muScale.position(mu));
      sM.input.value = Math.round(mScale.position(m));
      draw();
    }
    sMu.input.addEventListener("input", () => { state.mu = muScale.value(+sMu.input.value); draw(); });
    sM.input.addEventListener("input", () => { state.strength = mScale.value(+sM.input.value); draw(); });
    draw();
    footer("Everything on this page is a closed form of (μ, M) computed in the page; the MLE was computed in Python and inlined.");
    return { set: set, state: state };
  }

  // ------------------------------------------------------------ mixed model
  function mixedExplorer() {
    const terms = DATA.terms, q = terms.length, L = DATA.levels.length, nC = DATA.c.length;
    const fitIndex = DATA.c.indexOf(1);
    const state = { index: fitIndex };
    const scalar = DATA.scalar;
    header(`${DATA.method} fit of ${DATA.formula}. The slider scales the relative covariance factor Λ(θ̂) of ${DATA.group} by c ` +
      "(c = 1 is the fit): c = 0 is complete pooling (the fixed effects alone), large c approaches no pooling." +
      (scalar ? " For a scalar effect cθ̂ is the ratio σ_u/σ of the group SD to the residual SD." : ""));
    const controls = html("section", { class: "controls" }, ROOT);
    const s = slider(controls, "c-slider", "c, multiplier of Λ (log scale; left end c = 0)", 0, nC - 1, 1, fitIndex);
    const readout = html("div", { class: "readout" }, controls);
    let ratioOut = null;
    if (scalar) { html("span", {}, readout, "σ_u/σ = "); ratioOut = html("span", { id: "ratio-value" }, readout); html("span", {}, readout, "   "); }
    html("span", {}, readout, "σ = ");
    const sigmaOut = html("span", { id: "sigma-value" }, readout);
    const betaOuts = DATA.fixed_names.map((name, j) => {
      html("span", {}, readout, `   ${name} = `);
      return html("span", { id: `beta-${j}` }, readout);
    });
    html("button", { type: "button", "data-set": "fit" }, html("div", { class: "buttons" }, controls), "the fit (c = 1)")
      .addEventListener("click", () => set(fitIndex));

    const shrinkBox = panel(ROOT, `Group coefficients of ${DATA.group}`,
      scalar ? `Top: no pooling (each group's own fit); bottom: the estimates at c; lines join each group.`
        : `Each arrow runs from a group's no-pooling estimate to its estimate at c; the red dot is the population (fixed-effect) value at c.`);
    const np = DATA.no_pooling;
    let sc, dyn;
    if (scalar) {
      legend(shrinkBox, [["no pooling", COLORS.raw, "open"], ["estimate at c", COLORS.eb, "dot"], ["population value at c", COLORS.pooled, "dash"]]);
      const all = [...np.map((r) => r[0]), ...DATA.coefs.flat().flat()];
      sc = chart(shrinkBox, { id: "shrinkage-chart", x: pad(rangeOf(all), 0.03), y: [0, 1], height: 220, xlabel: terms[0], yticks: [[0.8, "no pooling"], [0.2, "at c"]] });
    } else {
      legend(shrinkBox, [["no pooling", COLORS.raw, "open"], ["estimate at c", COLORS.eb, "dot"], ["population value at c", COLORS.pooled, "dot"]]);
      const xs = [...np.map((r) => r[0]), ...DATA.coefs.map((c) => c.map((r) => r[0])).flat()];
      const ys = [...np.map((r) => r[1]), ...DATA.coefs.map((c) => c.map((r) => r[1])).flat()];
      sc = chart(shrinkBox, { id: "shrinkage-chart", x: pad(rangeOf(xs), 0.05), y: pad(rangeOf(ys), 0.05), height: 380, xlabel: terms[0], ylabel: terms[1] });
    }
    dyn = svg("g", {}, sc.layer);

    const nObs = DATA.n_obs;
    // Equal sizes put every group in one column on an axis of n: show the groups one per row instead.
    const equalSizes = nObs.every((n) => n === nObs[0]);
    const termColors = [COLORS.eb, COLORS.morris, COLORS.fb, COLORS.js];
    const sizeBox = panel(ROOT, equalSizes ? "Shrinkage of each group" : "Shrinkage against group size",
      "Fraction of the way each group's estimate has moved from its no-pooling value to the population value at c " +
      "(0: no pooling, 1: complete pooling; the shaded band is [0, 1])" +
      (equalSizes ? `. Every group has n = ${nObs[0]} observations, so group size cannot explain the differences: ` +
        "the fractions are shown group by group" : ", against the group's number of observations") +
      (q > 1 ? ", one colour per term" : "") +
      (scalar ? `; the red ${equalSizes ? "line" : "curve"} is σ²/(σ² + n σ_u²), the exact value in a balanced one-way layout.` : "."));
    const sizeLegend = html("div", {}, sizeBox);
    const sizeChartBox = html("div", {}, sizeBox);
    const rangeNote = html("p", { class: "note", id: "shrinkage-range-note" }, sizeBox);
    const xLog = linear(Math.log(Math.max(1, Math.min(...nObs)) / 1.5), Math.log(Math.max(...nObs) * 1.5), 0, 1);
    const nTicks = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000].filter((t) => xLog(Math.log(t)) >= 0 && xLog(Math.log(t)) <= 1);
    const otherFixed = DATA.fixed_names.filter((name) => !terms.includes(name));
    // Correlation of the first two random effects, from Λ's lower triangle (lme4's column-wise order).
    let correlation = null;
    if (q === 2 && DATA.theta_hat.length === 3) {
      const [l11, l21, l22] = DATA.theta_hat;
      correlation = l11 === 0 || l21 * l21 + l22 * l22 === 0 ? null : l21 / Math.sqrt(l21 * l21 + l22 * l22);
    }

    // Why some fractions lie outside [0, 1] at this c, naming the groups and terms.
    function rangeSentence(c, idx, beta, fractions, outside) {
      const count = fractions.flat().filter((f) => f !== null).length;
      const named = terms.map((t, j) => {
        const list = outside.filter((o) => o[1] === j).sort((u, v) => Math.abs(v[2] - 0.5) - Math.abs(u[2] - 0.5));
        if (!list.length) return null;
        const shown = list.slice(0, 6).map(([i, , f]) => `${DATA.levels[i]} (${fmt(f, 2)})`).join(", ");
        return `${t}: ${DATA.group} ${shown}${list.length > 6 ? ` and ${list.length - 6} more` : ""}`;
      }).filter((x) => x !== null);
      const concerned = terms.filter((_, j) => outside.some((o) => o[1] === j));
      const reasons = [];
      if (q > 1) {
        reasons.push(`A group's ${terms.join(" and ")} are shrunk together, not one at a time: its own estimates of them ` +
          "come from one regression on its rows and are correlated" +
          (correlation !== null ? `, and so are the random effects (estimated correlation ${fmt(correlation, 2)})` : "") +
          `, so shrinking one term also moves the other${q > 2 ? "s" : ""}. That is how ${concerned.join(" and ")} can be ` +
          "pulled past the population value (a fraction above 1) or pushed away from it (below 0).");
      }
      if (otherFixed.length && idx !== fitIndex) {
        const moved = otherFixed.slice(0, 3).map((name) => {
          const j = DATA.fixed_names.indexOf(name);
          return `${name} ${fmt(DATA.beta[fitIndex][j], 3)} at the fit, ${fmt(beta[j], 3)} at c`;
        });
        reasons.push(`The no-pooling estimates hold the other fixed effects at the fit's values (c = 1), but at c = ${fmt(c, 3)} ` +
          `they are re-estimated (${moved.join("; ")}${otherFixed.length > 3 ? "; …" : ""}), which shifts the groups' estimates at c: ` +
          "they need not lie between their no-pooling values and the population value. The shift is divided by the " +
          "distance from the no-pooling value to the population value, so groups whose own estimate lies close to it show the largest fractions.");
      }
      if (!reasons.length) reasons.push("These estimates at c do not lie between the group's no-pooling value and the population value.");
      return `At c = ${fmt(c, 3)}, ${outside.length} of ${count} fractions lie outside [0, 1] (ringed): ${named.join("; ")}. ` + reasons.join(" ");
    }
    function drawShrinkage(c, idx, beta, population, coefs) {
      const fractions = DATA.levels.map((_, i) => terms.map((t, j) => {
        if (np[i][j] === null) return null;
        const away = np[i][j] - population[j];
        // a group whose own estimate sits on the population value has no direction to shrink in
        if (Math.abs(away) < 1e-8 * (1 + Math.abs(population[j]))) return null;
        return (np[i][j] - coefs[i][j]) / away;
      }));
      // 1e-9: a fraction of exactly 0 or 1 up to rounding is not outside
      const outside = [];
      fractions.forEach((row, i) => row.forEach((f, j) => { if (f !== null && (f < -1e-9 || f > 1 + 1e-9)) outside.push([i, j, f]); }));
      const values = fractions.flat().filter((f) => f !== null);
      const span = pad([Math.min(0, ...values), Math.max(1, ...values)], 0.05);
      const theory = scalar ? (n) => 1 / (1 + n * (c * DATA.theta_hat[0]) ** 2) : null;
      sizeChartBox.replaceChildren();
      let gc, place;
      if (equalSizes) {
        const rowH = 16;
        gc = chart(sizeChartBox, { id: "size-chart", x: span, y: [L, 0], height: L * rowH + 60, yticks: false,
          xlabel: "shrinkage: fraction of the way from no pooling (0) to the population value (1)" });
        svg("rect", { x: gc.x(0), width: gc.x(1) - gc.x(0), y: gc.m.top, height: gc.height - gc.m.bottom - gc.m.top, fill: COLORS.band }, gc.layer);
        DATA.levels.forEach((lev, i) => svg("text", { x: gc.m.left - 6, y: gc.y(i + 0.5) + 4, "text-anchor": "end", class: "tick" }, gc.layer, lev));
        if (theory) svg("line", { x1: gc.x(theory(nObs[0])), x2: gc.x(theory(nObs[0])), y1: gc.m.top, y2: gc.height - gc.m.bottom, stroke: COLORS.pooled, class: "theory" }, gc.layer);
        place = (i, j, f) => [gc.x(f), gc.y(i + 0.5) + (j - (q - 1) / 2) * 5];
      } else {
        gc = chart(sizeChartBox, { id: "size-chart", x: [0, 1], y: span, height: 260, xlabel: "observations in the group (log scale)", ylabel: "shrinkage",
          xticks: nTicks.map((t) => [xLog(Math.log(t)), String(t)]) });
        svg("rect", { x: gc.m.left, width: gc.width - gc.m.right - gc.m.left, y: gc.y(1), height: gc.y(0) - gc.y(1), fill: COLORS.band }, gc.layer);
        if (theory) {
          const pts = [];
          for (let t = 0; t <= 1.0001; t += 0.01) pts.push([t, theory(Math.exp(xLog.domain[0] + t * (xLog.domain[1] - xLog.domain[0])))]);
          svg("path", { d: clippedPath(gc.x, gc.y, pts), class: "curve", stroke: COLORS.pooled }, gc.layer);
        }
        place = (i, j, f) => [gc.x(xLog(Math.log(nObs[i]))), gc.y(f)];
      }
      fractions.forEach((row, i) => row.forEach((f, j) => {
        if (f === null) return;
        const [cx, cy] = place(i, j, f);
        svg("circle", { cx: cx, cy: cy, r: 3, fill: termColors[j % 4], "fill-opacity": 0.7, "data-level": DATA.levels[i], "data-term": terms[j] }, gc.layer);
      }));
      for (const [i, j, f] of outside) {
        const [cx, cy] = place(i, j, f);
        svg("circle", { cx: cx, cy: cy, r: 6.5, class: "ring" }, gc.layer);
      }
      sizeLegend.replaceChildren();
      const items = terms.map((t, j) => [t, termColors[j % 4], "dot"]);
      items.push(["[0, 1]: between no pooling and complete pooling", COLORS.band, "band"]);
      if (outside.length) items.push(["outside [0, 1]", COLORS.pooled, "ring"]);
      if (scalar) items.push(["σ²/(σ² + n σ_u²)", COLORS.pooled, "line"]);
      legend(sizeLegend, items);
      rangeNote.textContent = outside.length ? rangeSentence(c, idx, beta, fractions, outside) : "";
      rangeNote.hidden = outside.length === 0;
    }

    const tableBox = panel(ROOT, "Every number at the chosen c",
      `Precomputed in Python: the model re-evaluated by the package's REML/ML engine at θ = c θ̂ for ${nC} values of c (0, then log-spaced from 0.01 to 100); ` +
      "the slider steps through them. Coefficients are the fixed effect plus the conditional mode.");
    const table = html("table", { id: "groups-table" }, tableBox);
    const head = html("tr", {}, html("thead", {}, table));
    for (const c of [DATA.group, "n", ...terms.map((t) => `${t} at c`), ...terms.map((t) => `${t}, no pooling`)]) html("th", {}, head, c);
    const body = html("tbody", {}, table);
    const cells = DATA.levels.map((lev, i) => {
      const r = html("tr", { "data-level": lev }, body);
      html("th", {}, r, lev);
      cell(r, "n", nObs[i], 0);
      const out = terms.map((t) => { const td = cell(r, "coef", 0); td.dataset.term = t; return td; });
      terms.forEach((t, j) => { const td = cell(r, "no_pooling", np[i][j], 3); td.dataset.term = t; });
      return out;
    });

    function draw() {
      const idx = state.index, c = DATA.c[idx], coefs = DATA.coefs[idx], beta = DATA.beta[idx], sigma = DATA.sigma[idx];
      setNumber(s.out, c, 4); s.out.textContent = "c = " + s.out.textContent;
      s.out.dataset.index = String(idx);
      if (ratioOut) setNumber(ratioOut, c * DATA.theta_hat[0], 4);
      setNumber(sigmaOut, sigma, 4);
      betaOuts.forEach((o, j) => setNumber(o, beta[j], 4));
      const population = terms.map((t) => { const j = DATA.fixed_names.indexOf(t); return j < 0 ? 0 : beta[j]; });
      cells.forEach((row, i) => row.forEach((td, j) => setNumber(td, coefs[i][j], 4)));
      dyn.replaceChildren();
      if (scalar) {
        svg("line", { x1: sc.x(population[0]), x2: sc.x(population[0]), y1: sc.m.top, y2: sc.height - sc.m.bottom, stroke: COLORS.pooled, class: "dashed" }, dyn);
        for (let i = 0; i < L; i++) {
          if (np[i][0] !== null) {
            svg("line", { x1: sc.x(np[i][0]), x2: sc.x(coefs[i][0]), y1: sc.y(0.8), y2: sc.y(0.2), stroke: COLORS.raw, class: "thin" }, dyn);
            svg("circle", { cx: sc.x(np[i][0]), cy: sc.y(0.8), r: 3.5, fill: "white", stroke: COLORS.raw }, dyn);
          }
          svg("circle", { cx: sc.x(coefs[i][0]), cy: sc.y(0.2), r: 3.5, fill: COLORS.eb, "fill-opacity": 0.7 }, dyn);
        }
      } else {
        for (let i = 0; i < L; i++) {
          if (np[i][0] !== null && np[i][1] !== null) {
            svg("line", { x1: sc.x(np[i][0]), y1: sc.y(np[i][1]), x2: sc.x(coefs[i][0]), y2: sc.y(coefs[i][1]), stroke: COLORS.raw, class: "thin" }, dyn);
            svg("circle", { cx: sc.x(np[i][0]), cy: sc.y(np[i][1]), r: 3.5, fill: "white", stroke: COLORS.raw }, dyn);
          }
          svg("circle", { cx: sc.x(coefs[i][0]), cy: sc.y(coefs[i][1]), r: 4, fill: COLORS.eb }, dyn);
        }
        svg("circle", { cx: sc.x(population[0]), cy: sc.y(population[1]), r: 6, fill: COLORS.pooled }, dyn);
      }
      drawShrinkage(c, idx, beta, population, coefs);
    }
    function set(index) { state.index = index; s.input.value = index; draw(); }
    s.input.addEventListener("input", () => { state.index = +s.input.value; draw(); });
    draw();
    footer(`θ̂ = [${DATA.theta_hat.map((t) => fmt(t, 4)).join(", ")}] (relative covariance parameters, lme4's theta); σ̂ = ${fmt(DATA.sigma_hat, 4)}.`);
    return { set: set, state: state };
  }

  // ------------------------------------------------------------ simulator
  function simulatorExplorer() {
    const state = { k: DATA.k, tau: DATA.tau, sigma: DATA.sigma, seed: DATA.seed };
    header("Draw k true means θ_i ~ N(0, τ²) and estimates y_i ~ N(θ_i, σ²); estimate θ by the raw y, by James–Stein " +
      "(towards 0, the known mean, and towards the grand mean) and by empirical Bayes (marginal ML). All draws are made in the page from the seed.");
    const controls = html("section", { class: "controls" }, ROOT);
    const sk = slider(controls, "k-slider", "number of groups k", 2, DATA.k_max, 1, state.k);
    const st = slider(controls, "tau-slider", "true τ", 0.05, 5, 0.05, state.tau);
    const ss = slider(controls, "sigma-slider", "noise σ", 0.1, 5, 0.1, state.sigma);
    const seedRow = html("div", { class: "control" }, controls);
    html("label", { for: "seed-input" }, seedRow, "seed");
    const seedIn = html("input", { type: "number", id: "seed-input", min: 0, step: 1 }, seedRow);
    seedIn.value = state.seed;

    // one data set per (k, replicate), from a stream seeded by (seed, k): moving k does not reshuffle the others
    function draws(k, reps) {
      const normal = generator((state.seed * 2654435761 + k * 40503) >>> 0);
      const theta = [], y = [];
      for (let r = 0; r < reps; r++) {
        const t = [], e = [];
        for (let i = 0; i < k; i++) { const th = state.tau * normal(); t.push(th); e.push(th + state.sigma * normal()); }
        theta.push(t); y.push(e);
      }
      return { theta: theta, y: y };
    }
    function estimates(y) {
      const k = y.length, v = state.sigma ** 2;
      const ybar = sum(y) / k;
      const sdev = sum(y.map((a) => (a - ybar) ** 2)), s0 = sum(y.map((a) => a * a));
      const out = { raw: y.slice() };
      // Efron & Morris: towards a known point the factor is 1 - (k - 2)σ²/Σy², towards ȳ 1 - (k - 3)σ²/S.
      if (k >= 3) out.js0 = y.map((a) => (1 - (k - 2) * v / s0) * a);
      if (k >= 4) out.js = y.map((a) => ybar + (1 - (k - 3) * v / sdev) * (a - ybar));
      const tau2 = Math.max(0, sdev / k - v);
      const B = v / (v + tau2);
      out.eb = y.map((a) => ybar + (1 - B) * (a - ybar));
      return out;
    }
    const KINDS = [["raw", "raw y", COLORS.raw], ["js0", "James–Stein to 0 (k ≥ 3)", COLORS.js0], ["js", "James–Stein to ȳ (k ≥ 4)", COLORS.js], ["eb", "empirical Bayes (ML)", COLORS.eb]];
    function risks() {
      const out = [];
      for (let k = 2; k <= DATA.k_max; k++) {
        const d = draws(k, DATA.reps);
        const acc = { raw: 0, js0: 0, js: 0, eb: 0 };
        for (let r = 0; r < DATA.reps; r++) {
          const e = estimates(d.y[r]);
          for (const [key] of KINDS) if (e[key]) acc[key] += sum(e[key].map((a, i) => (a - d.theta[r][i]) ** 2)) / k;
        }
        const row = { k: k };
        for (const [key] of KINDS) row[key] = (key === "js0" && k < 3) || (key === "js" && k < 4) ? null : acc[key] / DATA.reps;
        out.push(row);
      }
      return out;
    }

    const riskBox = panel(ROOT, "Risk against the number of groups",
      `Risk: the squared error per group, averaged over ${DATA.reps} replicated data sets at each k (same τ, σ, seed). ` +
      "James–Stein beats the raw estimates for every θ once k ≥ 3 when it shrinks towards a known point, and once k ≥ 4 towards the grand mean (one dimension spent on ȳ). The grey band marks the chosen k.");
    legend(riskBox, KINDS.map(([, label, color]) => [label, color, "line"]));
    const riskChartBox = html("div", {}, riskBox);
    const dataBox = panel(ROOT, "One data set at the chosen k", "The first replicate at the chosen k, one row per group (numbered as in the table): true θ (black), raw y (open) and the estimates.");
    const dataChartBox = html("div", {}, dataBox);
    const tableBox = panel(ROOT, "Risks", "");
    const riskTable = html("table", { id: "risk-table" }, tableBox);
    const dataTable = html("table", { id: "data-table" }, dataBox);

    function draw() {
      for (const [o, x] of [[sk.out, state.k], [st.out, state.tau], [ss.out, state.sigma]]) setNumber(o, x, o === sk.out ? 0 : 2);
      const rs = risks();
      riskChartBox.replaceChildren();
      const top = Math.max(...rs.map((r) => Math.max(r.raw, r.eb, r.js || 0, r.js0 || 0)));
      const rc = chart(riskChartBox, { id: "risk-chart", x: [2, DATA.k_max], y: [0, top * 1.1], height: 260, xlabel: "number of groups k", ylabel: "risk per group" });
      for (const [kv, label] of [[3, "k = 3"], [4, "k = 4"]]) {
        vline(rc, kv, "#999", "dashed");
        svg("text", { x: rc.x(kv) + 3, y: rc.m.top + 12 + (kv - 3) * 12, class: "mark-label" }, rc.layer, label);
      }
      vline(rc, state.k, "#444", "cursor");
      for (const [key, , color] of KINDS) {
        svg("path", { d: clippedPath(rc.x, rc.y, rs.map((r) => [r.k, r[key] === null ? NaN : r[key]])), class: "curve", stroke: color }, rc.layer);
      }
      riskTable.replaceChildren();
      const head = html("tr", {}, html("thead", {}, riskTable));
      for (const c of ["k", ...KINDS.map((kd) => kd[1])]) html("th", {}, head, c);
      const body = html("tbody", {}, riskTable);
      for (const r of rs) {
        const row = html("tr", { "data-k": r.k, class: r.k === state.k ? "current" : "" }, body);
        html("th", {}, row, String(r.k));
        for (const [key] of KINDS) cell(row, key, r[key], 4);
      }
      // the first replicate at the chosen k
      const d = draws(state.k, 1), theta = d.theta[0], y = d.y[0], e = estimates(y);
      dataChartBox.replaceChildren();
      const all = [...theta, ...y, ...e.eb];
      const dc = chart(dataChartBox, { id: "data-chart", x: pad(rangeOf(all), 0.05), y: [state.k, 0], height: 30 + 16 * state.k + 44, xlabel: "value", yticks: false });
      theta.forEach((th, i) => {
        const yc = dc.y(i + 0.5);
        svg("text", { x: dc.m.left - 6, y: yc + 4, "text-anchor": "end", class: "tick" }, dc.layer, String(i + 1));
        svg("line", { x1: dc.x(y[i]), x2: dc.x(e.eb[i]), y1: yc, y2: yc, stroke: COLORS.raw, class: "thin" }, dc.layer);
        svg("circle", { cx: dc.x(y[i]), cy: yc, r: 4, fill: "white", stroke: COLORS.raw }, dc.layer);
        if (e.js) svg("circle", { cx: dc.x(e.js[i]), cy: yc, r: 3.5, fill: COLORS.js }, dc.layer);
        svg("circle", { cx: dc.x(e.eb[i]), cy: yc, r: 3.5, fill: COLORS.eb }, dc.layer);
        svg("circle", { cx: dc.x(th), cy: yc, r: 2.5, fill: COLORS.truth }, dc.layer);
      });
      legend(dataChartBox, [["true θ", COLORS.truth, "dot"], ["raw y", COLORS.raw, "open"], ["James–Stein to ȳ", COLORS.js, "dot"], ["empirical Bayes", COLORS.eb, "dot"]]);
      dataTable.replaceChildren();
      const h2 = html("tr", {}, html("thead", {}, dataTable));
      for (const c of ["group", "θ", "y", ...KINDS.slice(1).map((kd) => kd[1])]) html("th", {}, h2, c);
      const b2 = html("tbody", {}, dataTable);
      theta.forEach((th, i) => {
        const row = html("tr", { "data-unit": String(i + 1) }, b2);
        html("th", {}, row, String(i + 1));
        cell(row, "theta", th, 3); cell(row, "y", y[i], 3);
        for (const [key] of KINDS.slice(1)) cell(row, key, e[key] ? e[key][i] : null, 3);
      });
    }
    function set(values) { Object.assign(state, values); sk.input.value = state.k; st.input.value = state.tau; ss.input.value = state.sigma; seedIn.value = state.seed; draw(); }
    sk.input.addEventListener("input", () => { state.k = +sk.input.value; draw(); });
    st.input.addEventListener("input", () => { state.tau = +st.input.value; draw(); });
    ss.input.addEventListener("input", () => { state.sigma = +ss.input.value; draw(); });
    seedIn.addEventListener("change", () => { state.seed = Math.max(0, Math.floor(+seedIn.value || 0)); draw(); });
    draw();
    footer("Everything on this page is computed in the page: the draws (a seeded mulberry32 generator with Box–Muller normals) and the closed-form estimators.");
    return { set: set, state: state, draws: (k, reps) => draws(k, reps || DATA.reps), estimates: estimates };
  }

  const BUILDERS = { normal: normalExplorer, beta_binomial: betaExplorer, mixed: mixedExplorer, simulator: simulatorExplorer };
  window.hmExplorer = BUILDERS[DATA.kind]();
})();
