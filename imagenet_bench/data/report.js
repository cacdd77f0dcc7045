// The report page's script (imagenet_bench/html_report.py inlines it). It reads the JSON in
// #report-data and builds the page: header, filters, SVG charts, the sortable table and each
// row's provenance. Every element is made with createElement and filled with textContent:
// no data ever goes through innerHTML, so markup in a model id or a manifest shows as text.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  const SVG_NS = "http://www.w3.org/2000/svg";
  const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
  const PLATFORM_NAMES = {};
  DATA.rows.forEach(function (r) { PLATFORM_NAMES[r.platform] = r.platform_name; });
  const PLATFORMS = Object.keys(PLATFORM_NAMES);
  const SOURCES = Array.from(new Set(DATA.rows.map(function (r) { return r.source; })));
  const COLOUR = {};
  SOURCES.forEach(function (s, i) { COLOUR[s] = COLOURS[i % COLOURS.length]; });
  const ROW_INDEX = new Map(DATA.rows.map(function (row, i) { return [row, i]; }));
  const FITTED = DATA.test_sets.filter(function (t) { return DATA.fits[t]; });
  const PRIMARY = DATA.test_sets.find(function (t) { return !DATA.fits[t]; }) ||
    (DATA.datasets[0] ? DATA.datasets[0].name : "");

  const state = {
    platforms: new Set(PLATFORMS), sources: new Set(SOURCES), testSet: "", search: "",
    sortColumn: -1, descending: true, order: DATA.rows.map(function (_, i) { return i; }), expanded: new Set(),
  };

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function fixed(v, digits) { return v === undefined || v === null ? "" : Number(v).toFixed(digits); }

  // ---- header: what was ranked, by which version -------------------------------------------
  function fitLine(name) {
    const f = DATA.fits[name];
    if (!f) return name === PRIMARY ? "(the x axis)" : "";
    if (f.slope === null || f.slope === undefined) return "none: too few models with both accuracies to fit";
    return "logit(" + name + ") = " + fixed(f.slope, 3) + " \u00d7 logit(" + PRIMARY + ") " +
      (f.intercept < 0 ? "\u2212 " : "+ ") + fixed(Math.abs(f.intercept), 3) +
      (f.baseline ? ", fitted on " + f.baseline : "");
  }

  function header() {
    const n = DATA.rows.length;
    const box = el("header", {}, [el("h1", {}, ["ImageNet classifier benchmark"])]);
    const sets = DATA.datasets.length;
    box.appendChild(el("p", {class: "summary"}, [
      n + " model" + (n === 1 ? "" : "s") + " ranked on " + sets + " dataset" + (sets === 1 ? "" : "s") +
      (DATA.test_sets.length > 1 ? " (test sets: " + DATA.test_sets.join(", ") + ")" : "") + "."]));
    const fitted = FITTED.length > 0;
    const titles = ["Dataset", "Folders", "Images", "Classes", "Labels"].concat(
      fitted ? ["Effective-robustness line (logit axes)"] : []);
    const head = el("tr", {}, titles.map(function (h) { return el("th", {}, [h]); }));
    const body = el("tbody", {}, DATA.datasets.map(function (d) {
      const classes = d.n_classes === undefined || d.n_classes === null ? "" : String(d.n_classes);
      const cells = [
        el("td", {}, [d.name || ""]),
        el("td", {class: "folders"}, (d.folders || []).map(function (f) { return el("div", {}, [f]); })),
        el("td", {class: "num"}, [d.n_images === undefined || d.n_images === null ? "" :
          Number(d.n_images).toLocaleString("en-US")]),
        el("td", {class: "num"}, [classes + (d.class_subset ? " (a subset of the 1000)" : "")]),
        el("td", {}, [d.labels || ""]),
      ];
      if (fitted) cells.push(el("td", {class: "fit"}, [fitLine(d.name)]));
      return el("tr", {}, cells);
    }));
    box.appendChild(el("table", {class: "datasets", id: "datasets"}, [el("thead", {}, [head]), body]));
    DATA.notes.forEach(function (note) { box.appendChild(el("p", {class: "note"}, [note])); });
    const made = "Written by " + DATA.version + " on " + DATA.created + (DATA.command ? " with:" : ".");
    box.appendChild(el("p", {class: "version", id: "version"}, [made]));
    if (DATA.command) box.appendChild(el("pre", {class: "command"}, [DATA.command]));
    return box;
  }

  // ---- filters --------------------------------------------------------------------------------
  function checkboxes(legend, values, names, chosen, id) {
    const box = el("fieldset", {id: id}, [el("legend", {}, [legend])]);
    values.forEach(function (v) {
      const input = el("input", {type: "checkbox", value: v});
      input.checked = true;
      input.addEventListener("change", function () {
        if (input.checked) chosen.add(v); else chosen.delete(v);
        update();
      });
      box.appendChild(el("label", {}, [input, " " + (names[v] || v || "(none)")]));
    });
    return box;
  }

  function filters() {
    const bar = el("section", {class: "filters"}, [
      checkboxes("Platform", PLATFORMS, PLATFORM_NAMES, state.platforms, "filter-platform"),
      checkboxes("Source", SOURCES, {}, state.sources, "filter-source"),
    ]);
    if (DATA.test_sets.length > 1) {
      const select = el("select", {id: "filter-test-set"}, [el("option", {value: ""}, ["all test sets"])].concat(
        DATA.test_sets.map(function (t) { return el("option", {value: t}, [t]); })));
      select.addEventListener("change", function () { state.testSet = select.value; update(); });
      bar.appendChild(el("fieldset", {}, [el("legend", {}, ["Test set"]), select]));
    }
    const search = el("input", {type: "search", id: "search", placeholder: "model id contains\u2026"});
    search.addEventListener("input", function () { state.search = search.value.trim().toLowerCase(); update(); });
    bar.appendChild(el("fieldset", {}, [el("legend", {}, ["Search"]), search]));
    bar.appendChild(el("p", {id: "count", class: "count"}, [""]));
    return bar;
  }

  function shown(row) {
    return state.platforms.has(row.platform) && state.sources.has(row.source) &&
      (!state.search || row.model.toLowerCase().indexOf(state.search) >= 0) &&
      (!state.testSet || row.plot["acc1:" + state.testSet] !== undefined);
  }

  // ---- charts ---------------------------------------------------------------------------------
  function niceTicks(lo, hi, count) {
    const step0 = (hi - lo) / count;
    const mag = Math.pow(10, Math.floor(Math.log10(step0)));
    const step = [1, 2, 5, 10].map(function (m) { return m * mag; }).find(function (s) { return s >= step0; });
    const ticks = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(+v.toFixed(10));
    return ticks;
  }

  function logTicks(lo, hi) {
    const ticks = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      [1, 2, 5].forEach(function (m) { const v = m * Math.pow(10, e); if (v >= lo && v <= hi) ticks.push(v); });
    }
    return ticks;
  }

  function extent(values, pad) {
    let lo = Math.min.apply(null, values), hi = Math.max.apply(null, values);
    if (lo === hi) { lo -= 1; hi += 1; }
    const margin = (hi - lo) * pad;
    return [lo - margin, hi + margin];
  }

  const W = 440, H = 290, M = {left: 50, right: 128, top: 12, bottom: 42};

  function chartSpecs() {
    const specs = [];
    const have = function (k) { return DATA.rows.some(function (r) { return r.plot[k] !== undefined; }); };
    if (have("images_per_s")) {
      specs.push({id: "throughput", title: "Acc@1 against throughput (images/s from the manifests)",
        x: "images_per_s", y: "acc1", xLabel: "images/s (log scale)", yLabel: "Acc@1 (%)", log: true});
    }
    if (have("published_acc1")) {
      specs.push({id: "published", title: "Measured against published Acc@1", x: "published_acc1", y: "acc1",
        xLabel: "published Acc@1 (%)", yLabel: "measured Acc@1 (%)", diagonal: "y = x"});
    }
    FITTED.forEach(function (t) {
      specs.push({id: "testset-" + t, testSet: t, title: t + " against " + PRIMARY + " Acc@1",
        x: "acc1", y: "acc1:" + t, xLabel: PRIMARY + " Acc@1 (%)", yLabel: t + " Acc@1 (%)",
        diagonal: "no drop (y = x)", fit: DATA.fits[t]});
    });
    (DATA.charts || []).forEach(function (c) {  // declared by column sets (ECE against Acc@1)
      if (have(c.x) && have(c.y)) specs.push({id: c.id, title: c.title, x: c.x, y: c.y, xLabel: c.xLabel, yLabel: c.yLabel});
    });
    return specs;
  }

  // A reliability diagram (--calibration): per bin of confidence, the accuracy of its images
  // as a bar, against the diagonal of perfect calibration; a bar per non-empty bin.
  function reliability(bins) {
    const S = 220, P = 34, inner = S - 2 * P;
    const svg = svgEl("svg", {class: "reliability", width: S, height: S, viewBox: "0 0 " + S + " " + S});
    const sx = function (v) { return P + v * inner; }, sy = function (v) { return S - P - v * inner; };
    svg.appendChild(svgEl("rect", {x: P, y: P, width: inner, height: inner, fill: "none", stroke: "#999"}));
    bins.forEach(function (b) {  // [lo, hi, images, mean confidence, accuracy]
      if (!b[2]) return;
      const bar = svgEl("rect", {class: "bin", x: sx(b[0]), y: sy(b[4]), width: sx(b[1]) - sx(b[0]),
        height: sy(0) - sy(b[4]), fill: "#4c78a8", stroke: "#fff"});
      bar.appendChild(svgEl("title", {}, fixed(100 * b[0], 1) + "-" + fixed(100 * b[1], 1) + "%: " + b[2] +
        " images, accuracy " + fixed(100 * b[4], 1) + "%, mean confidence " + fixed(100 * b[3], 1) + "%"));
      svg.appendChild(bar);
    });
    svg.appendChild(svgEl("line", {x1: sx(0), y1: sy(0), x2: sx(1), y2: sy(1), stroke: "#d62728", "stroke-dasharray": "4 3"}));
    svg.appendChild(svgEl("text", {x: S / 2, y: S - 6, "text-anchor": "middle"}, "confidence (top-1 probability)"));
    svg.appendChild(svgEl("text", {x: 12, y: S / 2, transform: "rotate(-90 12 " + S / 2 + ")", "text-anchor": "middle"}, "accuracy"));
    return el("figure", {class: "figure reliability-figure"}, [svg, el("figcaption", {}, ["Reliability diagram (15 bins)"])]);
  }

  function rowFigures(row) {
    return Object.keys(DATA.figure_kinds || {}).filter(function (k) { return row.figures && row.figures[k]; })
      .map(function (k) { return DATA.figure_kinds[k] === "reliability" ? reliability(row.figures[k]) : null; })
      .filter(function (f) { return f; });
  }

  // A heat map of models x keys (--factors): a cell per model and key, coloured by its value
  // around 1 (red above, blue below); a header click sorts the models by that key.
  const heatSort = {};
  function heatColour(v) {
    if (v === null || v === undefined) return "#fff";
    const t = Math.max(-1, Math.min(1, Math.log2(v)));
    const c = Math.round(255 * (1 - Math.abs(t)));
    return t >= 0 ? "rgb(255," + c + "," + c + ")" : "rgb(" + c + "," + c + ",255)";
  }
  function heatmap(spec) {
    const rows = state.order.filter(function (r) { return shown(DATA.rows[r]); });
    const by = heatSort[spec.id];
    if (by !== undefined) {
      rows.sort(function (a, b) {
        const va = DATA.rows[a].heat[spec.id][by], vb = DATA.rows[b].heat[spec.id][by];
        return (vb === null) - (va === null) || (vb || 0) - (va || 0);
      });
    }
    const head = el("tr", {}, [el("th", {}, ["Model"])].concat(spec.labels.map(function (label, i) {
      const button = el("button", {type: "button"}, [label]);
      button.addEventListener("click", function () { heatSort[spec.id] = i; renderCharts(); });
      return el("th", {"aria-sort": by === i ? "descending" : "none"}, [button]);
    })));
    const body = rows.map(function (r) {
      const row = DATA.rows[r];
      return el("tr", {class: "heat-row"}, [el("th", {scope: "row"}, [row.model + " (" + row.platform_name + ")"])]
        .concat(row.heat[spec.id].map(function (v) {
          const td = el("td", {class: "heat-cell num"}, [v === null ? "" : fixed(v, 2)]);
          td.style.background = heatColour(v);
          return td;
        })));
    });
    return el("figure", {class: "figure heatmap", "data-heatmap": spec.id}, [
      el("table", {}, [el("thead", {}, [head]), el("tbody", {}, body)]), el("figcaption", {}, [spec.title])]);
  }

  function scatter(spec, tooltip) {
    const all = DATA.rows.filter(function (r) { return r.plot[spec.x] !== undefined && r.plot[spec.y] !== undefined; });
    const svg = svgEl("svg", {class: "chart", viewBox: "0 0 " + W + " " + H, width: W, height: H,
      role: "img", "data-chart": spec.id});
    svg.appendChild(svgEl("title", {}, spec.title));
    const pw = W - M.left - M.right, ph = H - M.top - M.bottom;
    const fx = spec.log ? Math.log10 : function (v) { return v; };
    const xs = all.map(function (r) { return fx(r.plot[spec.x]); }), ys = all.map(function (r) { return r.plot[spec.y]; });
    let xd = extent(xs.length ? xs : [0, 1], 0.05), yd = extent(ys.length ? ys : [0, 1], 0.05);
    if (spec.diagonal) {  // same range on both axes, so the diagonal is the diagonal
      const lo = Math.min(xd[0], yd[0]), hi = Math.max(xd[1], yd[1]);
      xd = [lo, hi]; yd = [lo, hi];
    }
    const sx = function (v) { return M.left + (fx(v) - xd[0]) / (xd[1] - xd[0]) * pw; };
    const sy = function (v) { return M.top + ph - (v - yd[0]) / (yd[1] - yd[0]) * ph; };
    const axes = svgEl("g", {class: "axes"});
    axes.appendChild(svgEl("rect", {x: M.left, y: M.top, width: pw, height: ph, class: "frame"}));
    const xticks = spec.log ? logTicks(Math.pow(10, xd[0]), Math.pow(10, xd[1])) : niceTicks(xd[0], xd[1], 6);
    xticks.forEach(function (v) {
      const x = sx(v);
      axes.appendChild(svgEl("line", {x1: x, x2: x, y1: M.top, y2: M.top + ph, class: "grid"}));
      axes.appendChild(svgEl("text", {x: x, y: M.top + ph + 16, class: "tick", "text-anchor": "middle"},
        spec.log && v >= 1000 ? v / 1000 + "k" : String(v)));
    });
    niceTicks(yd[0], yd[1], 6).forEach(function (v) {
      const y = sy(v);
      axes.appendChild(svgEl("line", {x1: M.left, x2: M.left + pw, y1: y, y2: y, class: "grid"}));
      axes.appendChild(svgEl("text", {x: M.left - 6, y: y + 4, class: "tick", "text-anchor": "end"}, String(v)));
    });
    axes.appendChild(svgEl("text", {x: M.left + pw / 2, y: H - 8, class: "label", "text-anchor": "middle"}, spec.xLabel));
    axes.appendChild(svgEl("text", {x: 14, y: M.top + ph / 2, class: "label", "text-anchor": "middle",
      transform: "rotate(-90 14 " + (M.top + ph / 2) + ")"}, spec.yLabel));
    svg.appendChild(axes);
    const clip = "clip-" + spec.id.replace(/[^A-Za-z0-9_-]/g, "_");
    svg.appendChild(svgEl("clipPath", {id: clip})).appendChild(svgEl("rect", {x: M.left, y: M.top, width: pw, height: ph}));
    const lines = svgEl("g", {"clip-path": "url(#" + clip + ")"});
    const legend = [];
    if (spec.diagonal) {
      lines.appendChild(svgEl("line", {x1: sx(xd[0]), y1: sy(xd[0]), x2: sx(xd[1]), y2: sy(xd[1]), class: "diagonal"}));
      legend.push({line: "diagonal", text: spec.diagonal});
    }
    if (spec.fit && spec.fit.slope !== null && spec.fit.slope !== undefined) {
      const logit = function (p) { return Math.log(p / (1 - p)); };
      const points = [];
      for (let i = 0; i <= 80; i++) {
        const v = xd[0] + (xd[1] - xd[0]) * i / 80;
        if (v <= 0 || v >= 100) continue;
        const y = 100 / (1 + Math.exp(-(spec.fit.slope * logit(v / 100) + spec.fit.intercept)));
        points.push(sx(v).toFixed(1) + "," + sy(y).toFixed(1));
      }
      lines.appendChild(svgEl("polyline", {points: points.join(" "), class: "fit"}));
      legend.push({line: "fit", text: "fit (logit axes)"});
    }
    svg.appendChild(lines);
    const dots = svgEl("g", {class: "points", "clip-path": "url(#" + clip + ")"});
    const visible = all.filter(shown);
    visible.forEach(function (r) {
      const index = ROW_INDEX.get(r);
      const c = svgEl("circle", {cx: sx(r.plot[spec.x]).toFixed(1), cy: sy(r.plot[spec.y]).toFixed(1), r: 4,
        class: "point", fill: COLOUR[r.source], "data-model": r.model, "data-platform": r.platform});
      c.addEventListener("mouseenter", function (e) { tooltip.show(e, r, spec); });
      c.addEventListener("mouseleave", function () { tooltip.hide(); });
      c.addEventListener("click", function () { reveal(index); });
      dots.appendChild(c);
    });
    svg.appendChild(dots);
    const lg = svgEl("g", {class: "legend", transform: "translate(" + (W - M.right + 12) + "," + M.top + ")"});
    let y = 6;
    SOURCES.forEach(function (s) {
      lg.appendChild(svgEl("circle", {cx: 5, cy: y, r: 4, fill: COLOUR[s]}));
      lg.appendChild(svgEl("text", {x: 14, y: y + 4}, s || "(none)"));
      y += 18;
    });
    legend.forEach(function (l) {
      lg.appendChild(svgEl("line", {x1: 0, x2: 10, y1: y, y2: y, class: l.line}));
      lg.appendChild(svgEl("text", {x: 14, y: y + 4}, l.text));
      y += 18;
    });
    lg.appendChild(svgEl("text", {x: 0, y: y + 8, class: "shown"}, visible.length + " of " + all.length + " shown"));
    svg.appendChild(lg);
    return svg;
  }

  function makeTooltip() {
    const box = el("div", {class: "tooltip", id: "tooltip", role: "tooltip"});
    box.hidden = true;
    document.body.appendChild(box);
    return {
      show: function (event, row, spec) {
        box.textContent = "";
        box.appendChild(el("strong", {}, [row.model]));
        box.appendChild(el("div", {}, [row.platform_name + ", " + row.source + (row.device ? ", " + row.device : "")]));
        [[spec.yLabel, spec.y], [spec.xLabel, spec.x]].forEach(function (p) {
          const digits = p[1] === "images_per_s" ? 1 : 2;
          box.appendChild(el("div", {}, [p[0].replace(" (log scale)", "") + ": " + fixed(row.plot[p[1]], digits)]));
        });
        box.hidden = false;
        box.style.left = (event.pageX + 12) + "px";
        box.style.top = (event.pageY + 12) + "px";
      },
      hide: function () { box.hidden = true; },
    };
  }

  // ---- table ----------------------------------------------------------------------------------
  const COLUMNS = DATA.columns;

  function visibleColumns() {
    return COLUMNS.map(function (c, i) { return i; }).filter(function (i) {
      const t = COLUMNS[i].test_set;
      return !state.testSet || !t || t === state.testSet || (t === PRIMARY);
    });
  }

  // The value a row sorts by in column i: the raw number, else the cell's text; null when empty.
  function sortValue(i, r) {
    const row = DATA.rows[r], v = row.sort[i];
    if (v !== null && v !== undefined) return v;
    return row.text[i] === "" ? null : row.text[i];  // e.g. an interval "81.20-82.00"
  }

  const COLLATOR = new Intl.Collator("en", {numeric: true});  // one collator: localeCompare makes one per call

  // Ascending comparison of two non-empty values.
  function compareValues(va, vb) {
    return typeof va === "number" && typeof vb === "number" ? va - vb : COLLATOR.compare(String(va), String(vb));
  }

  // Every row index sorted by column i; empty cells last in both directions, ties in table order.
  function sorted(i, descending) {
    const keyed = DATA.rows.map(function (_, r) { return [sortValue(i, r), r]; });
    keyed.sort(function (a, b) {
      if (a[0] === null || b[0] === null) return a[0] === b[0] ? a[1] - b[1] : (a[0] === null ? 1 : -1);
      const d = compareValues(a[0], b[0]);
      return (descending ? -d : d) || a[1] - b[1];
    });
    return keyed.map(function (k) { return k[1]; });
  }

  function sortBy(i) {
    if (state.sortColumn === i) {
      state.descending = !state.descending;
    } else {
      // First click: numbers highest first, text A-Z; if the rows already are in that order, the other way.
      const preferred = COLUMNS[i].numeric;
      const values = state.order.filter(function (r) { return shown(DATA.rows[r]); })
        .map(function (r) { return sortValue(i, r); }).filter(function (v) { return v !== null; });
      const already = values.every(function (v, k) {
        if (k === 0) return true;
        const d = compareValues(values[k - 1], v);
        return preferred ? d >= 0 : d <= 0;
      });
      state.descending = already ? !preferred : preferred;
      state.sortColumn = i;
    }
    state.order = sorted(i, state.descending);
    renderTable();  // the charts show the same points
  }

  function tableHead(columns) {
    return el("thead", {}, [el("tr", {}, columns.map(function (i) {
      const c = COLUMNS[i];
      const th = el("th", {class: c.numeric ? "num" : "", "data-key": c.key, scope: "col",
        "aria-sort": state.sortColumn === i ? (state.descending ? "descending" : "ascending") : "none"});
      const button = el("button", {type: "button", title: "sort by " + c.header}, [c.header]);
      if (state.sortColumn === i) button.appendChild(el("span", {class: "arrow"}, [state.descending ? " \u25bc" : " \u25b2"]));
      button.addEventListener("click", function () { sortBy(i); });
      th.appendChild(button);
      return th;
    }))]);
  }

  const CODE_KEYS = /(^|\.)(command|sha256|fingerprint|path|url|commit|project commit|file)$/;  // shown in monospace

  function sectionCard(row, label, title, index) {
    const rows = DATA.sections[index].map(function (pair) {
      const key = DATA.pairs[pair][0], text = DATA.pairs[pair][1].split(DATA.model_mark).join(row.model);
      const value = CODE_KEYS.test(key) ? el("code", {}, [text]) : text;
      return el("tr", {}, [el("th", {scope: "row"}, [key]), el("td", {}, [value])]);
    });
    return el("div", {class: "section", "data-section": label}, [el("h4", {}, [title]),
      el("table", {}, [el("tbody", {}, rows)])]);
  }

  // A row's provenance: each manifest section once when every dataset's manifest agrees on
  // it (weights, libraries...), else once per dataset (dates, timings, the dataset itself).
  function provenance(row, width) {
    const cell = el("td", {colspan: width}, rowFigures(row).concat([el("h3", {}, ["How the numbers of " + row.model + " were made"])]));
    const names = DATA.datasets.map(function (d) { return d.name; }).filter(function (n) { return n in row.provenance; });
    const missing = names.filter(function (n) { return row.provenance[n] === null; });
    const having = names.filter(function (n) { return row.provenance[n] !== null; });
    if (missing.length) {
      cell.appendChild(el("p", {class: "no-manifest"}, ["No manifest" + (names.length > 1 ? " on " + missing.join(", ") : "") +
        ": a prediction file written before manifests (the 2019 files); its weights, preprocessing and " +
        "environment were not recorded."]));
    }
    const grid = el("div", {class: "sections"});
    DATA.section_labels.forEach(function (label, li) {
      const found = having.map(function (n) {
        const part = DATA.manifests[row.provenance[n]].find(function (p) { return p[0] === li; });
        return [n, part ? part[1] : null];
      }).filter(function (x) { return x[1] !== null; });
      if (!found.length) return;
      if (found.every(function (x) { return x[1] === found[0][1]; }) && found.length === having.length) {
        grid.appendChild(sectionCard(row, label, label, found[0][1]));
      } else {
        found.forEach(function (x) { grid.appendChild(sectionCard(row, label, label + " \u00b7 " + x[0], x[1])); });
      }
    });
    cell.appendChild(grid);
    return el("tr", {class: "details"}, [cell]);
  }

  // Row elements are made once for a set of visible columns and reused: sorting and filtering
  // only put them back in another order, far cheaper than making 1,500 rows of cells again.
  let nodes = {columns: "", rows: new Map(), details: new Map()};

  function detailsNode(r, columns) {
    if (!nodes.details.has(r)) nodes.details.set(r, provenance(DATA.rows[r], columns.length));
    return nodes.details.get(r);
  }

  function rowNode(r, columns) {
    if (nodes.rows.has(r)) return nodes.rows.get(r);
    const row = DATA.rows[r];
    const tr = el("tr", {class: "model-row", "data-index": r, "aria-expanded": "false",
      "data-platform": row.platform, "data-source": row.source, tabindex: 0});
    columns.forEach(function (i) {
      tr.appendChild(el("td", {class: COLUMNS[i].numeric ? "num" : ""}, [row.text[i]]));
    });
    const toggle = function () {  // in place: the other rows stay as they are
      if (state.expanded.has(r)) {
        state.expanded.delete(r);
        detailsNode(r, columns).remove();
      } else {
        state.expanded.add(r);
        tr.after(detailsNode(r, columns));
      }
      tr.setAttribute("aria-expanded", state.expanded.has(r) ? "true" : "false");
    };
    tr.addEventListener("click", toggle);
    tr.addEventListener("keydown", function (e) { if (e.key === "Enter") toggle(); });
    if (state.expanded.has(r)) tr.setAttribute("aria-expanded", "true");
    nodes.rows.set(r, tr);
    return tr;
  }

  let tableNode, chartsNode, tooltip;

  // A chart point's click: its row, opened and scrolled into view.
  function reveal(r) {
    const tr = nodes.rows.get(r);
    if (!tr) return;
    if (!state.expanded.has(r)) tr.click();
    tr.scrollIntoView({block: "center"});
  }

  function renderTable() {
    const columns = visibleColumns();
    if (columns.join(",") !== nodes.columns) nodes = {columns: columns.join(","), rows: new Map(), details: new Map()};
    const rows = state.order.filter(function (r) { return shown(DATA.rows[r]); });
    const body = el("tbody");
    const fragment = document.createDocumentFragment();
    rows.forEach(function (r) {
      fragment.appendChild(rowNode(r, columns));
      if (state.expanded.has(r)) fragment.appendChild(detailsNode(r, columns));
    });
    body.appendChild(fragment);
    tableNode.textContent = "";
    tableNode.appendChild(tableHead(columns));
    tableNode.appendChild(body);
    document.getElementById("count").textContent =
      rows.length + " of " + DATA.rows.length + " model" + (DATA.rows.length === 1 ? "" : "s") + " shown";
  }

  function renderCharts() {
    chartsNode.textContent = "";
    chartSpecs().forEach(function (spec) {
      if (state.testSet && spec.testSet && spec.testSet !== state.testSet) return;
      chartsNode.appendChild(el("figure", {class: "figure"}, [scatter(spec, tooltip), el("figcaption", {}, [spec.title])]));
    });
    (DATA.heatmaps || []).forEach(function (spec) { chartsNode.appendChild(heatmap(spec)); });
  }

  function update() {
    renderTable();
    renderCharts();
  }

  function main() {
    const root = el("main");
    root.appendChild(header());
    root.appendChild(filters());
    chartsNode = el("div", {class: "charts", id: "charts"});
    const n = chartSpecs().length + (DATA.heatmaps || []).length;
    if (n) {
      root.appendChild(el("details", {open: "", class: "charts-box"}, [
        el("summary", {}, [n + " chart" + (n === 1 ? "" : "s") + " (hover a point for its model, click it for its row; points follow the filters)"]),
        chartsNode]));
    }
    root.appendChild(el("p", {class: "hint"}, ["Click a column header to sort (again for the other direction); " +
      "click a row for how its numbers were made."]));
    tableNode = el("table", {class: "models", id: "models"});
    root.appendChild(el("div", {class: "table-wrap"}, [tableNode]));
    document.body.appendChild(root);
    tooltip = makeTooltip();
    update();
  }

  main();
})();
