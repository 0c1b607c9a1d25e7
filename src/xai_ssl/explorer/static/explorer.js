/* xai-ssl results explorer: plain JavaScript, no dependencies, no network.
 * Reads window.XAI_SSL_EXPLORER (data.js, format xai_ssl.explorer/1, written by xai_ssl.explorer).
 * Maps are 8-bit grey PNGs at native resolution with their raw min/max (value = lo + q/255 (hi - lo));
 * they are coloured here and upsampled by the canvas (bilinear smoothing, like the metrics' upsampling). */
(function () {
  "use strict";

  const D = window.XAI_SSL_EXPLORER;
  const errorBox = document.getElementById("error");

  function showError(message) {
    errorBox.hidden = false;
    errorBox.textContent = (errorBox.textContent ? errorBox.textContent + "\n" : "") + message;
  }
  window.addEventListener("error", (e) => showError("Error: " + e.message));
  window.addEventListener("unhandledrejection", (e) => showError("Error: " + (e.reason && e.reason.message ? e.reason.message : e.reason)));

  window.XaiSslExplorerLoaded = true;
  if (!D) return; // index.html says which file is missing

  // Colour tables: 33 samples of matplotlib's viridis (perceptually uniform, sequential; van der Walt & Smith, CC0)
  // and coolwarm (Moreland 2009, diverging), interpolated linearly.
  const VIRIDIS = [[68,1,84],[71,13,96],[72,24,106],[72,35,116],[71,45,123],[69,55,129],[66,64,134],[62,73,137],[59,82,139],[55,91,141],[51,99,141],[47,107,142],[44,114,142],[41,122,142],[38,130,142],[35,137,142],[33,145,140],[31,152,139],[31,160,136],[34,167,133],[40,174,128],[50,182,122],[63,188,115],[78,195,107],[94,201,98],[112,207,87],[132,212,75],[152,216,62],[173,220,48],[194,223,35],[216,226,25],[236,229,27],[253,231,37]];
  const COOLWARM = [[59,76,192],[68,90,204],[78,104,216],[88,117,225],[98,130,234],[108,143,241],[119,154,247],[130,166,251],[141,176,254],[152,185,255],[163,194,254],[174,201,252],[185,208,249],[195,213,244],[204,217,237],[213,219,229],[221,220,220],[229,216,209],[236,211,197],[241,204,184],[245,196,172],[247,186,159],[247,176,147],[246,165,134],[244,152,122],[240,139,110],[235,125,98],[228,110,86],[221,95,75],[212,78,65],[202,59,55],[190,36,46],[180,4,38]];
  const FAMILY_VIEWS = {
    crop_aug: ["x1: centre view", "x2: augmented view"],
    interpolation: ["m0 = x1", "m9 = 0.1·x1 + 0.9·xt"],
  };
  const CURVE_HELP = {
    SI: "simultaneous insertion: both views", SD: "simultaneous deletion: both views",
    CI_1: "conditional insertion: view 1 | view 2", CI_2: "conditional insertion: view 2 | view 1",
    CD_1: "conditional deletion: view 1 | view 2", CD_2: "conditional deletion: view 2 | view 1",
  };

  const N = D.images.length;
  const METHODS = D.methods;
  const METHOD_INDEX = new Map(METHODS.map((m, i) => [m.name, i]));
  const COLUMN_DIR = new Map(D.columns.map((c) => [c.name, c.direction]));
  const el = (id) => document.getElementById(id);

  function colour(table, t) {
    t = Math.min(1, Math.max(0, t));
    const x = t * (table.length - 1);
    const i = Math.min(Math.floor(x), table.length - 2);
    const f = x - i;
    const a = table[i], b = table[i + 1];
    return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
  }

  function methodColour(name) {
    const i = METHOD_INDEX.get(name) || 0;
    return "hsl(" + ((i * 137.508) % 360).toFixed(1) + ", 62%, 42%)";
  }

  function fmt(x, digits) {
    if (x === null || x === undefined || Number.isNaN(x)) return "NA";
    const a = Math.abs(x);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return x.toExponential(2);
    return x.toFixed(digits === undefined ? 3 : digits);
  }

  // ---------- state ----------
  const state = {
    image: 0,
    selected: METHODS.filter((m) => !m.baseline).slice(0, 3).map((m) => m.name),
    opacity: 0.6,
    scale: "auto",
    size: 160,
    native: false,
    allColumns: false,
    sortMethod: "",
    sortColumn: "",
    sortDir: "worst",
    order: [...Array(N).keys()],
  };
  if (state.selected.length === 0) state.selected = METHODS.slice(0, 1).map((m) => m.name);

  function readHash() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    const id = params.get("image");
    const known = id !== null && D.images.indexOf(id) >= 0;
    if (known) state.image = D.images.indexOf(id);
    const methods = params.get("methods");
    if (methods !== null) {
      const names = methods.split(",").filter((m) => METHOD_INDEX.has(m));
      if (names.length) state.selected = names;
    }
    const sort = params.get("sort");
    if (sort) {
      const [m, c, d] = sort.split("|");
      if (D.metrics[m] && D.metrics[m][c]) { state.sortMethod = m; state.sortColumn = c; }
      if (d === "best" || d === "worst") state.sortDir = d;
    }
    return known;
  }

  function writeHash() {
    const params = new URLSearchParams();
    params.set("image", D.images[state.image]);
    params.set("methods", state.selected.join(","));
    if (state.sortMethod) params.set("sort", [state.sortMethod, state.sortColumn, state.sortDir].join("|"));
    try { history.replaceState(null, "", "#" + params.toString()); } catch (e) { /* some browsers refuse on file:// */ }
  }

  // ---------- images: decoded once, cached ----------
  const imageCache = new Map();
  function loadImage(uri) {
    if (!imageCache.has(uri)) {
      imageCache.set(uri, new Promise((resolve, reject) => {
        const img = new Image();
        img.onload = () => resolve(img);
        img.onerror = () => reject(new Error("could not decode an image of data.js"));
        img.src = uri;
      }));
    }
    return imageCache.get(uri);
  }

  const mapCache = new Map();
  /** The 8-bit map q [h*w] (row-major) of an entry {png, lo, hi, h, w}. */
  function decodeEntry(entry) {
    if (!mapCache.has(entry.png)) {
      mapCache.set(entry.png, loadImage(entry.png).then((img) => {
        const c = document.createElement("canvas");
        c.width = entry.w; c.height = entry.h;
        const ctx = c.getContext("2d", { willReadFrequently: true });
        ctx.drawImage(img, 0, 0);
        const rgba = ctx.getImageData(0, 0, entry.w, entry.h).data;
        const q = new Uint8Array(entry.w * entry.h);
        for (let k = 0; k < q.length; k++) q[k] = rgba[4 * k];
        return q;
      }));
    }
    return mapCache.get(entry.png);
  }

  function scaleKind(entry) {
    if (state.scale !== "auto") return state.scale;
    return entry.lo < 0 && entry.hi > 0 ? "diverging" : "sequential";
  }

  /** 256 RGB colours, one per 8-bit level of this map, for the chosen scale. */
  function levelColours(entry, kind) {
    const lut = new Array(256);
    const lo = entry.lo, hi = entry.hi;
    const a = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    for (let k = 0; k < 256; k++) {
      if (kind === "diverging") {
        const v = lo + (k / 255) * (hi - lo);
        lut[k] = colour(COOLWARM, 0.5 + 0.5 * v / a);
      } else {
        lut[k] = colour(VIRIDIS, k / 255);
      }
    }
    return lut;
  }

  function mapCanvas(entry, q, kind) {
    const c = document.createElement("canvas");
    c.width = entry.w; c.height = entry.h;
    const ctx = c.getContext("2d");
    const im = ctx.createImageData(entry.w, entry.h);
    const lut = levelColours(entry, kind);
    for (let k = 0; k < q.length; k++) {
      const rgb = lut[q[k]];
      im.data[4 * k] = rgb[0]; im.data[4 * k + 1] = rgb[1]; im.data[4 * k + 2] = rgb[2]; im.data[4 * k + 3] = 255;
    }
    ctx.putImageData(im, 0, 0);
    return c;
  }

  async function drawPanel(canvas, viewUri, entry) {
    const img = await loadImage(viewUri);
    const q = entry && entry.lo !== null ? await decodeEntry(entry) : null;
    const S = canvas.width;
    const ctx = canvas.getContext("2d");
    ctx.globalAlpha = 1;
    ctx.imageSmoothingEnabled = !state.native;
    ctx.imageSmoothingQuality = "low"; // bilinear
    ctx.clearRect(0, 0, S, S);
    ctx.drawImage(img, 0, 0, S, S);
    if (q) {
      ctx.globalAlpha = state.opacity;
      ctx.drawImage(mapCanvas(entry, q, scaleKind(entry)), 0, 0, S, S);
      ctx.globalAlpha = 1;
    }
  }

  function legend(entry) {
    const box = document.createElement("div");
    box.className = "legend";
    if (!entry || entry.lo === null) {
      box.textContent = entry ? "no finite values" : "";
      return box;
    }
    const kind = scaleKind(entry);
    const bar = document.createElement("canvas");
    bar.width = 128; bar.height = 1;
    const ctx = bar.getContext("2d");
    const im = ctx.createImageData(128, 1);
    const a = Math.max(Math.abs(entry.lo), Math.abs(entry.hi)) || 1;
    for (let x = 0; x < 128; x++) {
      const rgb = kind === "diverging" ? colour(COOLWARM, x / 127) : colour(VIRIDIS, x / 127);
      im.data[4 * x] = rgb[0]; im.data[4 * x + 1] = rgb[1]; im.data[4 * x + 2] = rgb[2]; im.data[4 * x + 3] = 255;
    }
    ctx.putImageData(im, 0, 0);
    box.appendChild(bar);
    const ticks = document.createElement("div");
    ticks.className = "ticks";
    const labels = kind === "diverging" ? [fmt(-a), "0", fmt(a)] : [fmt(entry.lo), fmt(entry.hi)];
    for (const t of labels) { const s = document.createElement("span"); s.textContent = t; ticks.appendChild(s); }
    box.appendChild(ticks);
    const info = document.createElement("div");
    info.className = "kind";
    info.textContent = (kind === "diverging" ? "raw range " + fmt(entry.lo) + " … " + fmt(entry.hi) : "raw min … max")
      + (entry.hi === entry.lo ? " (constant map)" : "") + (entry.nonfinite ? "; " + entry.nonfinite + " non-finite px" : "")
      + "; " + entry.w + "×" + entry.h;
    box.appendChild(info);
    box.dataset.lo = String(entry.lo);
    box.dataset.hi = String(entry.hi);
    return box;
  }

  // ---------- sorting ----------
  function sortDirections(column) {
    return COLUMN_DIR.get(column) ? ["worst first", "best first"] : ["ascending", "descending"];
  }

  function computeOrder() {
    const idx = [...Array(N).keys()];
    const col = state.sortMethod && D.metrics[state.sortMethod] ? D.metrics[state.sortMethod][state.sortColumn] : null;
    if (!col) return idx;
    const dir = COLUMN_DIR.get(state.sortColumn);
    const ascending = dir ? (state.sortDir === "worst") === (dir === "↑") : state.sortDir === "worst";
    const finite = idx.filter((i) => col.values[i] !== null);
    const na = idx.filter((i) => col.values[i] === null);
    finite.sort((a, b) => (ascending ? col.values[a] - col.values[b] : col.values[b] - col.values[a]) || a - b);
    return finite.concat(na);
  }

  function fillSortControls() {
    const sm = el("sort-method");
    sm.replaceChildren();
    const plain = document.createElement("option");
    plain.value = ""; plain.textContent = "(index order)";
    sm.appendChild(plain);
    for (const m of METHODS) {
      if (!D.metrics[m.name] || !Object.keys(D.metrics[m.name]).length) continue;
      const o = document.createElement("option");
      o.value = m.name; o.textContent = m.name + (m.baseline ? " (baseline)" : "");
      sm.appendChild(o);
    }
    sm.value = state.sortMethod;
    fillSortColumns();
  }

  function fillSortColumns() {
    const sc = el("sort-column");
    sc.replaceChildren();
    const cols = state.sortMethod ? D.columns.filter((c) => D.metrics[state.sortMethod][c.name]) : [];
    for (const c of cols) {
      const o = document.createElement("option");
      o.value = c.name; o.textContent = c.name + (c.direction ? " " + c.direction : "");
      sc.appendChild(o);
    }
    sc.disabled = !cols.length;
    el("sort-dir").disabled = !cols.length;
    if (cols.length && !cols.some((c) => c.name === state.sortColumn)) state.sortColumn = cols[0].name;
    if (!cols.length) state.sortColumn = "";
    sc.value = state.sortColumn;
    const labels = sortDirections(state.sortColumn);
    el("sort-dir").options[0].textContent = labels[0];
    el("sort-dir").options[1].textContent = labels[1];
    el("sort-dir").value = state.sortDir;
  }

  function setSort(method, column, dir) {
    state.sortMethod = method;
    state.sortColumn = column;
    if (dir) state.sortDir = dir;
    el("sort-method").value = method;
    fillSortColumns();
    state.order = computeOrder();
    renderList();
    render();
  }

  // ---------- image list ----------
  function firstView(i) {
    const fam = Object.keys(D.families)[0];
    return D.pngs[D.families[fam].views[i][0]];
  }

  function renderList() {
    const list = el("image-list");
    list.replaceChildren();
    const col = state.sortMethod && state.sortColumn ? D.metrics[state.sortMethod][state.sortColumn] : null;
    state.order.forEach((i, pos) => {
      const li = document.createElement("li");
      li.dataset.image = String(i);
      li.dataset.imageId = D.images[i];
      li.title = D.images[i];
      const img = document.createElement("img");
      img.src = firstView(i); img.alt = "";
      const id = document.createElement("span");
      id.className = "id"; id.textContent = (pos + 1) + ". " + D.images[i];
      li.append(img, id);
      if (col) {
        const v = document.createElement("span");
        v.className = "val";
        v.textContent = fmt(col.values[i]) + (col.ranks[i] ? " #" + col.ranks[i] : "");
        li.appendChild(v);
      }
      li.addEventListener("click", () => goTo(i));
      list.appendChild(li);
    });
    markCurrent();
  }

  function markCurrent() {
    for (const li of el("image-list").children) {
      const cur = Number(li.dataset.image) === state.image;
      li.classList.toggle("current", cur);
      if (cur) { li.setAttribute("aria-current", "true"); revealInSidebar(li); } else li.removeAttribute("aria-current");
    }
  }

  function revealInSidebar(li) { // scroll the list only, never the page
    const bar = el("sidebar"); // position: sticky, so li.offsetTop is relative to it
    const head = bar.querySelector(".sort-controls").offsetHeight; // sticky controls cover the top of the list
    if (li.offsetTop - head < bar.scrollTop) bar.scrollTop = li.offsetTop - head;
    else if (li.offsetTop + li.offsetHeight > bar.scrollTop + bar.clientHeight) bar.scrollTop = li.offsetTop + li.offsetHeight - bar.clientHeight;
  }

  function goTo(i) {
    state.image = i;
    render();
  }

  function step(delta) {
    const pos = state.order.indexOf(state.image);
    const next = Math.min(state.order.length - 1, Math.max(0, pos + delta));
    goTo(state.order[next]);
  }

  function jump(text) {
    const t = text.trim();
    const msg = el("jump-message");
    msg.textContent = "";
    if (!t) return;
    let target = -1;
    if (/^#?\d+$/.test(t) && D.images.indexOf(t) < 0) {
      const pos = Number(t.replace("#", "")) - 1;
      if (pos >= 0 && pos < state.order.length) target = state.order[pos];
    } else {
      target = D.images.indexOf(t);
      if (target < 0) {
        const hits = D.images.map((id, i) => [id, i]).filter(([id]) => id.startsWith(t));
        if (hits.length === 1) target = hits[0][1];
        else if (hits.length > 1) { msg.textContent = hits.length + " images start with " + t; return; }
      }
    }
    if (target < 0) { msg.textContent = "no image " + t; return; }
    goTo(target);
  }

  // ---------- method picker ----------
  function renderPicker() {
    const box = el("method-picker");
    box.replaceChildren();
    for (const [title, baseline] of [["methods", false], ["baselines", true]]) {
      const group = METHODS.filter((m) => m.baseline === baseline);
      if (!group.length) continue;
      const g = document.createElement("div");
      g.className = "group" + (baseline ? " baselines" : "");
      const t = document.createElement("span");
      t.className = "group-title"; t.textContent = title + ":";
      g.appendChild(t);
      for (const m of group) {
        const label = document.createElement("label");
        label.className = "method-toggle" + (m.baseline ? " baseline" : "");
        const cb = document.createElement("input");
        cb.type = "checkbox"; cb.dataset.method = m.name;
        cb.checked = state.selected.includes(m.name);
        cb.addEventListener("change", () => {
          const names = new Set(state.selected);
          if (cb.checked) names.add(m.name); else names.delete(m.name);
          state.selected = METHODS.map((x) => x.name).filter((x) => names.has(x));
          render();
        });
        const sw = document.createElement("span");
        sw.className = "swatch"; sw.style.background = methodColour(m.name);
        const name = document.createElement("span");
        name.textContent = m.name;
        const fam = document.createElement("span");
        fam.className = "family-tag"; fam.textContent = " " + m.family + (m.maps[0][1] ? "" : ", 1 map");
        label.append(cb, sw, name, fam);
        g.appendChild(label);
      }
      box.appendChild(g);
    }
    const buttons = document.createElement("div");
    buttons.className = "group";
    for (const [label, pick] of [["all", () => METHODS.map((m) => m.name)], ["none", () => []], ["all but baselines", () => METHODS.filter((m) => !m.baseline).map((m) => m.name)]]) {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = label;
      b.addEventListener("click", () => { state.selected = pick(); syncPicker(); render(); });
      buttons.appendChild(b);
    }
    box.appendChild(buttons);
  }

  function syncPicker() {
    for (const cb of el("method-picker").querySelectorAll("input[data-method]")) cb.checked = state.selected.includes(cb.dataset.method);
  }

  // ---------- sections ----------
  function renderViews() {
    const box = el("views");
    box.replaceChildren();
    for (const [fam, f] of Object.entries(D.families)) {
      const card = document.createElement("div");
      card.className = "family"; card.dataset.family = fam;
      const title = document.createElement("div");
      title.innerHTML = "<b></b>";
      title.firstChild.textContent = fam;
      const pair = document.createElement("div");
      pair.className = "pair";
      const labels = FAMILY_VIEWS[fam] || ["view 1", "view 2"];
      f.views[state.image].forEach((key, k) => {
        const fig = document.createElement("figure");
        const img = document.createElement("img");
        img.src = D.pngs[key]; img.alt = labels[k]; img.dataset.view = String(k + 1);
        const cap = document.createElement("figcaption");
        cap.textContent = labels[k];
        fig.append(img, cap);
        pair.appendChild(fig);
      });
      const cos = document.createElement("div");
      cos.className = "cos";
      cos.append("base cosine cos(f(view 1), f(view 2)) = ");
      const b = document.createElement("b");
      b.className = "base-cosine";
      b.textContent = f.base_cosine ? fmt(f.base_cosine[state.image], 4) : "not given";
      cos.appendChild(b);
      card.append(title, pair, cos);
      box.appendChild(card);
    }
  }

  function renderMaps() {
    const box = el("maps");
    box.replaceChildren();
    const jobs = [];
    if (!state.selected.length) {
      const p = document.createElement("p");
      p.className = "empty"; p.textContent = "Choose one or more methods above.";
      box.appendChild(p);
    }
    for (const name of state.selected) {
      const m = METHODS[METHOD_INDEX.get(name)];
      const card = document.createElement("div");
      card.className = "method-card" + (m.baseline ? " baseline" : "");
      card.dataset.method = name;
      const h = document.createElement("h3");
      const sw = document.createElement("span");
      sw.className = "swatch"; sw.style.background = methodColour(name);
      h.append(sw, name + (m.baseline ? " (baseline)" : ""));
      const fam = document.createElement("span");
      fam.className = "family-tag"; fam.textContent = " " + m.family;
      h.appendChild(fam);
      const panels = document.createElement("div");
      panels.className = "panels";
      const views = D.families[m.family].views[state.image];
      const entries = m.maps[state.image];
      for (let k = 0; k < 2; k++) {
        const fig = document.createElement("figure");
        const canvas = document.createElement("canvas");
        canvas.width = state.size; canvas.height = state.size;
        canvas.dataset.method = name; canvas.dataset.view = String(k + 1);
        const cap = document.createElement("figcaption");
        cap.textContent = entries[k] ? "map " + (k + 1) + " on view " + (k + 1) : "view " + (k + 1) + " (single-map method)";
        fig.append(canvas, cap, legend(entries[k]));
        fig.style.width = state.size + "px";
        panels.appendChild(fig);
        jobs.push(drawPanel(canvas, D.pngs[views[k]], entries[k]));
      }
      card.append(h, panels);
      box.appendChild(card);
    }
    return Promise.all(jobs);
  }

  function visibleColumns() {
    return D.columns.filter((c) => (state.allColumns || c.direction) && state.selected.some((m) => D.metrics[m] && D.metrics[m][c.name]));
  }

  function renderTable() {
    const table = el("metric-table");
    table.replaceChildren();
    const cols = visibleColumns();
    if (!cols.length || !state.selected.length) {
      const tr = table.insertRow();
      const td = tr.insertCell();
      td.className = "empty"; td.textContent = "no metric values for the chosen methods";
      return;
    }
    const head = table.createTHead().insertRow();
    const th0 = document.createElement("th");
    th0.textContent = "method";
    head.appendChild(th0);
    for (const c of cols) {
      const th = document.createElement("th");
      th.textContent = c.name + (c.direction ? " " + c.direction : "");
      th.title = c.direction === "↑" ? "higher is better" : c.direction === "↓" ? "lower is better" : "no direction (not ranked)";
      th.dataset.column = c.name;
      head.appendChild(th);
    }
    const body = table.createTBody();
    for (const name of state.selected) {
      const m = METHODS[METHOD_INDEX.get(name)];
      const tr = body.insertRow();
      tr.dataset.method = name;
      if (m.baseline) tr.className = "baseline";
      const td0 = tr.insertCell();
      const sw = document.createElement("span");
      sw.className = "swatch"; sw.style.background = methodColour(name);
      td0.append(sw, name);
      for (const c of cols) {
        const td = tr.insertCell();
        td.dataset.column = c.name;
        const col = D.metrics[name] ? D.metrics[name][c.name] : null;
        if (!col) { td.className = "na"; td.textContent = "—"; td.title = "not computed for this method"; continue; }
        const v = col.values[state.image], r = col.ranks[state.image];
        td.className = "cell" + (v === null ? " na" : "");
        td.dataset.value = v === null ? "NA" : String(v);
        td.dataset.mean = col.mean === null ? "NA" : String(col.mean);
        td.dataset.rank = String(r);
        td.dataset.n = String(col.n);
        const val = document.createElement("div");
        val.className = "v"; val.textContent = fmt(v);
        const sub = document.createElement("div");
        sub.className = "s";
        sub.textContent = "mean " + fmt(col.mean) + (r ? " · " + r + "/" + col.n : "");
        td.append(val, sub);
        td.title = name + " " + c.name + ": " + (v === null ? "NA" : v) + "; mean over " + col.n + " images: " + fmt(col.mean, 4)
          + (r ? "; rank " + r + " of " + col.n + " (1 = best)" : "");
        if (r && col.n > 1) {
          const p = (r - 1) / (col.n - 1);
          td.style.background = "hsl(" + (120 * (1 - p)).toFixed(0) + ", 55%, 92%)";
        }
        if (name === state.sortMethod && c.name === state.sortColumn) td.classList.add("sorted");
        td.addEventListener("click", () => setSort(name, c.name));
      }
    }
  }

  const SVG = "http://www.w3.org/2000/svg";
  function svgEl(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }

  function auc(c) {
    const t = c.length - 1;
    let s = 0;
    for (const x of c) s += x;
    return (s - c[0] / 2 - c[t] / 2) / t;
  }

  function renderCurves() {
    const box = el("curves");
    box.replaceChildren();
    const W = 230, H = 160, L = 38, R = 8, T = 20, B = 24;
    const withCurves = state.selected.filter((m) => D.curves[m]);
    if (!D.curve_names.length || !withCurves.length) {
      const p = document.createElement("p");
      p.className = "empty"; p.textContent = "no curves for the chosen methods";
      box.appendChild(p);
      return;
    }
    for (const cname of D.curve_names) {
      const lines = [];
      for (const m of withCurves) {
        const c = D.curves[m][cname];
        if (!c) continue;
        if (c.mean) lines.push({ m, values: c.mean, mean: true });
        if (c.values[state.image]) lines.push({ m, values: c.values[state.image], mean: false });
      }
      const panel = document.createElement("div");
      panel.className = "curve-panel"; panel.dataset.curve = cname;
      const svg = svgEl("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img" });
      const base = cname.replace(/_\d+$/, "");
      const title = svgEl("text", { x: L, y: 13, class: "title" });
      title.textContent = cname + " " + (COLUMN_DIR.get(base) || "");
      const help = svgEl("title");
      help.textContent = CURVE_HELP[cname] || cname;
      svg.append(help, title);
      let lo = Infinity, hi = -Infinity;
      for (const l of lines) for (const v of l.values) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      if (!lines.length) {
        const t = svgEl("text", { x: L + 10, y: H / 2 });
        t.textContent = "NA for this image";
        svg.appendChild(t);
      } else {
        if (hi - lo < 1e-6) { lo -= 0.05; hi += 0.05; }
        const pad = 0.05 * (hi - lo);
        lo -= pad; hi += pad;
        const x = (t) => L + t * (W - L - R);
        const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
        svg.appendChild(svgEl("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "none", stroke: "#bbb" }));
        for (const [v, anchor] of [[hi, "end"], [lo, "end"]]) {
          const t = svgEl("text", { x: L - 3, y: y(v) + (v === hi ? 9 : -2), "text-anchor": anchor });
          t.textContent = fmt(v, 2);
          svg.appendChild(t);
        }
        for (const f of [0, 0.5, 1]) {
          const t = svgEl("text", { x: x(f), y: H - B + 12, "text-anchor": "middle" });
          t.textContent = String(f);
          svg.appendChild(t);
        }
        const xl = svgEl("text", { x: (L + W - R) / 2, y: H - 2, "text-anchor": "middle" });
        xl.textContent = "fraction of pixels";
        svg.appendChild(xl);
        for (const l of lines) {
          const n = l.values.length - 1;
          const pts = l.values.map((v, k) => x(k / n).toFixed(1) + "," + y(v).toFixed(1)).join(" ");
          const pl = svgEl("polyline", {
            points: pts, fill: "none", stroke: methodColour(l.m), "stroke-width": l.mean ? 1 : 1.8,
            "stroke-dasharray": l.mean ? "3 2" : "none", opacity: l.mean ? 0.7 : 1,
          });
          pl.dataset.method = l.m;
          pl.dataset.kind = l.mean ? "mean" : "image";
          const tip = svgEl("title");
          tip.textContent = l.m + (l.mean ? " (mean over images)" : "") + ": AUC " + fmt(auc(l.values));
          pl.appendChild(tip);
          svg.appendChild(pl);
        }
      }
      panel.appendChild(svg);
      box.appendChild(panel);
    }
  }

  function renderNav() {
    const pos = state.order.indexOf(state.image);
    el("position").textContent = (pos + 1) + " / " + N;
    el("image-id").textContent = D.images[state.image];
    el("prev").disabled = pos <= 0;
    el("next").disabled = pos >= N - 1;
  }

  // ---------- rendering ----------
  let token = 0;
  let pending = 0;
  async function render() {
    const mine = ++token;
    pending++;
    try {
      renderNav();
      markCurrent();
      renderViews();
      renderTable();
      renderCurves();
      writeHash();
      await renderMaps();
    } finally {
      pending--;
      if (mine === token) document.body.dataset.rendered = String(mine);
    }
  }

  function init() {
    document.title = D.title + " · xai-ssl explorer";
    el("title").textContent = D.title;
    el("subtitle").textContent = (D.subtitle ? D.subtitle + " · " : "") + N + " images · " + METHODS.length + " methods";
    const imageInHash = readHash();
    const ids = el("image-ids");
    for (const id of D.images) { const o = document.createElement("option"); o.value = id; ids.appendChild(o); }
    renderPicker();
    fillSortControls();
    state.order = computeOrder();
    if (!imageInHash) state.image = state.order[0];
    renderList();

    el("prev").addEventListener("click", () => step(-1));
    el("next").addEventListener("click", () => step(1));
    el("jump-form").addEventListener("submit", (e) => { e.preventDefault(); jump(el("jump").value); });
    el("sort-method").addEventListener("change", (e) => setSort(e.target.value, state.sortColumn));
    el("sort-column").addEventListener("change", (e) => setSort(state.sortMethod, e.target.value));
    el("sort-dir").addEventListener("change", (e) => setSort(state.sortMethod, state.sortColumn, e.target.value));
    el("opacity").addEventListener("input", (e) => {
      state.opacity = Number(e.target.value);
      el("opacity-value").textContent = state.opacity.toFixed(2);
      render();
    });
    el("colour-scale").addEventListener("change", (e) => { state.scale = e.target.value; render(); });
    el("panel-size").addEventListener("change", (e) => { state.size = Number(e.target.value); render(); });
    el("native-pixels").addEventListener("change", (e) => { state.native = e.target.checked; render(); });
    el("all-columns").addEventListener("change", (e) => { state.allColumns = e.target.checked; render(); });
    window.addEventListener("hashchange", () => { // an edited or pasted address: show its state
      readHash();
      syncPicker();
      fillSortControls();
      state.order = computeOrder();
      renderList();
      render();
    });
    document.addEventListener("keydown", (e) => {
      if (e.target.closest && e.target.closest("input, select, textarea")) return;
      if (e.key === "ArrowLeft") step(-1);
      if (e.key === "ArrowRight") step(1);
    });
    state.opacity = Number(el("opacity").value);
    render();
  }

  // A small API for tests and the console.
  window.XaiSslExplorer = {
    state: () => ({
      image: state.image, imageId: D.images[state.image], selected: state.selected.slice(), order: state.order.slice(),
      sortMethod: state.sortMethod, sortColumn: state.sortColumn, sortDir: state.sortDir, opacity: state.opacity, scale: state.scale,
    }),
    idle: () => pending === 0,
    goTo: goTo,
    decodeMap: (method, image, view) => decodeEntry(METHODS[METHOD_INDEX.get(method)].maps[image][view - 1]).then((q) => Array.from(q)),
  };

  init();
})();
