// hubwatch's built-in view: lays out the dashboards /api/dashboards describes, and keeps
// each panel drawn (plotly.js) from /api/panels/{id}, refreshed every few seconds.
"use strict";

const params = new URLSearchParams(location.search);
const view = { layout: null, range: null, vars: {}, panels: new Map(), visible: new Set() };

// Plotly axis formats by the panel's unit (its Grafana unit, hubwatch/panels/model.py).
// d3's "~s" would print 0.8 as "800m": only bytes keep SI prefixes.
const UNITS = {
  s: { ticksuffix: "s", tickformat: ",~r", hoverformat: ",.3~r" },
  ops: { ticksuffix: "/s", tickformat: ",~r", hoverformat: ",.3~r" },
  percent: { ticksuffix: "%" },
  percentunit: { tickformat: ".0%" },
  bytes: { tickformat: "~s", ticksuffix: "B" },
};

function valueAxis(panel, traces, along) {
  // Counts (panel.counts, from the definition's unit): whole numbers with thousands
  // separators, on whole-number ticks (a range under 10 would be ticked in fractions).
  if (!panel.counts) return { ...(UNITS[panel.unit] || {}) };
  const values = traces.flatMap((t) => t[along]).filter((v) => typeof v === "number");
  const most = Math.max(0, ...values.map(Math.abs));
  const step = most < 5 ? { tick0: 0, dtick: 1 } : most < 10 ? { tick0: 0, dtick: 2 } : {};
  return { tickformat: ",d", hoverformat: ",d", ...step };
}

function element(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (value !== null && value !== undefined) node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function column(data, name) {
  const at = data.columns.indexOf(name);
  return data.rows.map((row) => row[at]);
}

function groups(data, by) {
  const at = data.columns.indexOf(by);
  const out = new Map();
  data.rows.forEach((row, i) => {
    const key = String(row[at]);
    if (!out.has(key)) out.set(key, []);
    out.get(key).push(i);
  });
  return out;
}

function cell(value) {
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  if (typeof value === "number") return Number(value.toPrecision(4)).toLocaleString("en-US");
  if (Array.isArray(value)) return value.join(", ");
  return value === null ? "" : value;
}

function seriesTraces(panel, data, type) {
  // One trace per value of the series column, or per value column.
  const xs = column(data, panel.x);
  if (panel.series && data.columns.includes(panel.series)) {
    const y = panel.y[0];
    const ys = column(data, y);
    return [...groups(data, panel.series)].map(([name, rows]) => ({
      type, name, x: rows.map((i) => xs[i]), y: rows.map((i) => ys[i]),
    }));
  }
  return panel.y.map((y) => ({ type, name: y, x: xs, y: column(data, y) }));
}

const LONE_MARKER = 12;
const LONE_PAD = 0.05; // of the range's span, each side

function padded(from, to) {
  // The view's times are UTC wall times ("YYYY-MM-DD HH:MM:SS.mmm"), as plotly.js reads them.
  const ms = (text) => Date.parse(`${text.replace(" ", "T")}Z`);
  const wall = (at) => new Date(at).toISOString().replace("T", " ").replace("Z", "");
  const [start, end] = [ms(from), ms(to)];
  const pad = (end - start) * LONE_PAD;
  return [wall(start - pad), wall(end + pad)];
}

function timeAxis(traces, data) {
  // The range the query covered, widened to the points (an interval may start before
  // it); all time spans the data (from its first interval: hubwatch/view/data.py), not
  // the years since 2015. One instant alone is padded so a point at the range's end
  // (Prometheus' last evaluation) is not on the frame.
  const xs = traces.flatMap((t) => t.x).filter((x) => x !== null).sort();
  const lone = new Set(xs).size < 2;
  if (!data.from || !xs.length || (data.all_time && !lone)) return { type: "date" };
  const from = xs[0] < data.from ? xs[0] : data.from;
  const to = xs[xs.length - 1] > data.to ? xs[xs.length - 1] : data.to;
  return { type: "date", range: lone ? padded(from, to) : [from, to] };
}

function figure(panel, data) {
  const unit = UNITS[panel.unit] || {};
  const layout = {
    margin: { l: 50, r: 10, t: 6, b: 36 }, autosize: true, showlegend: true,
    legend: { orientation: "h", y: -0.2, font: { size: 10 } },
    font: { size: 11 }, paper_bgcolor: "#fff", plot_bgcolor: "#fff",
  };
  switch (panel.visualisation) {
    case "timeseries": {
      // Few points get markers; a lone one (a replay on all time: one interval) a large
      // one, drawn whole even at the plot's edge.
      const traces = seriesTraces(panel, data, "scatter").map((t) => ({
        ...t, mode: t.x.length > 30 ? "lines" : "lines+markers",
        marker: { size: t.x.length === 1 ? LONE_MARKER : 6 }, cliponaxis: false,
      }));
      const yaxis = { ...valueAxis(panel, traces, "y"), rangemode: "tozero" };
      return { traces, layout: { ...layout, xaxis: timeAxis(traces, data), yaxis } };
    }
    case "barchart": {
      const traces = seriesTraces(panel, data, "bar");
      const long = traces.some((t) => t.x.some((x) => String(x).length > 12));
      if (long) {
        // Model ids read better along the side, the largest at the top.
        for (const t of traces) { [t.x, t.y] = [t.y, t.x]; t.orientation = "h"; }
        return { traces, layout: { ...layout, barmode: "group", margin: { ...layout.margin, l: 10 },
          showlegend: traces.length > 1,
          yaxis: { automargin: true, autorange: "reversed", type: "category", tickfont: { size: 10 } },
          xaxis: valueAxis(panel, traces, "x") } };
      }
      return { traces, layout: { ...layout, barmode: "group", showlegend: traces.length > 1,
        xaxis: { type: "category", automargin: true }, yaxis: valueAxis(panel, traces, "y") } };
    }
    case "piechart": {
      const labels = column(data, panel.x || panel.series || data.columns[0]);
      const values = column(data, panel.y[0] || data.columns[1]);
      return { traces: [{ type: "pie", labels, values, hole: 0.4, textinfo: "label+percent" }], layout };
    }
    case "stat": {
      const name = panel.y[0] || data.columns[0];
      const value = Number(column(data, name)[0] ?? 0);
      const number = { valueformat: Number.isInteger(value) ? ",d" : ",.3~g", suffix: unit.ticksuffix || "" };
      return { traces: [{ type: "indicator", mode: "number", value, number }],
        layout: { ...layout, margin: { l: 0, r: 0, t: 0, b: 0 } } };
    }
    default: { // table
      const values = data.columns.map((name) => column(data, name).map(cell));
      // Headers in words, wrapped at their spaces ("velocity per hour"), so a narrow
      // column of numbers keeps its whole name.
      const headers = data.columns.map((name) => name.replaceAll("_", " "));
      // Widths by content (plotly's default is equal): model ids get room, counts little.
      const columnwidth = values.map((col, i) =>
        2 + Math.min(48, Math.max(6, ...headers[i].split(" ").map((w) => w.length),
          ...col.map((v) => String(v ?? "").length))));
      return {
        traces: [{
          type: "table", columnwidth,
          header: { values: headers, align: "left", fill: { color: "#eef1f5" }, font: { size: 11 } },
          cells: { values, align: "left", font: { size: 11 }, height: 22 },
        }],
        layout: { ...layout, margin: { l: 0, r: 0, t: 0, b: 0 } },
      };
    }
  }
}

function query(panel) {
  const q = new URLSearchParams();
  if (view.range) q.set("range", view.range);
  for (const name of panel.variables) if (view.vars[name]) q.set(`var-${name}`, view.vars[name]);
  return q.toString();
}

async function refresh(panel) {
  const slot = view.panels.get(panel.id);
  if (slot.busy) return;
  slot.busy = true;
  try {
    const response = await fetch(`/api/panels/${panel.id}?${query(panel)}`);
    const data = await response.json();
    await draw(panel, slot, data);
  } catch (error) {
    await draw(panel, slot, { state: "error", message: `no answer from hubwatch (${error})`, columns: [], rows: [] });
  } finally {
    slot.busy = false;
  }
}

function banner(text) {
  // What holds the whole page up (hubwatch still creating its tables), said once on top.
  const node = document.getElementById("banner");
  node.hidden = !text;
  node.textContent = text || "";
}

async function draw(panel, slot, data) {
  const { node, chart, note } = slot;
  if (data.state === "starting") banner(`${data.message}: ${data.detail}`);
  else if (data.state !== "error") banner(null);
  node.dataset.state = data.state;
  node.dataset.rows = String(data.rows.length);
  if (data.state === "data") {
    note.hidden = true;
    chart.hidden = false;
    const { traces, layout } = figure(panel, data);
    await Plotly.react(chart, traces, layout, { displaylogo: false, responsive: true, displayModeBar: false });
  } else {
    chart.hidden = true;
    if (chart.data) Plotly.purge(chart);
    note.hidden = false;
    note.textContent = data.message || "No data";
    if (data.state === "unavailable") {
      // The same reason for every panel of the dashboard: said once, above them.
      const section = node.closest("section");
      let notice = section.querySelector(".notice");
      if (!notice) {
        notice = element("p", { class: "notice" });
        section.querySelector(".description").after(notice);
      }
      notice.textContent = data.message;
      note.textContent = "Not available: see above";
    }
  }
  node.dataset.drawn = "true";
  node.dataset.updated = new Date().toISOString();
}

async function loadOptions(dashboard, variable, select) {
  const response = await fetch(`/api/variables/${dashboard.uid}/${variable.name}`);
  const body = await response.json();
  const options = body.options || [];
  const current = view.vars[variable.name];
  const same = select.options.length === options.length &&
    options.every((value, i) => select.options[i].value === value);
  if (!same) {
    select.replaceChildren(...options.map((value) => element("option", { value }, value)));
  }
  const keep = current && options.includes(current) ? current : options[0] || "";
  if (keep !== current) {
    view.vars[variable.name] = keep;
    select.value = keep;
    return true; // the panels using it need drawing again
  }
  select.value = keep;
  return false;
}

function panelsUsing(name) {
  return view.layout.dashboards.flatMap((d) => d.panels).filter((p) => p.variables.includes(name));
}

function build(layout) {
  const main = document.getElementById("dashboards");
  const toc = document.getElementById("toc");
  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (entry.isIntersecting) view.visible.add(entry.target.id);
      else view.visible.delete(entry.target.id);
    }
  });
  for (const dashboard of layout.dashboards) {
    const id = dashboard.uid;
    toc.append(element("a", { href: `#${id}` }, dashboard.title.replace(/^hubwatch \/ /, "")));
    const section = element("section", { class: "dashboard", id },
      element("h2", {}, dashboard.title), element("p", { class: "description" }, dashboard.description));
    if (dashboard.variables.length) {
      const bar = element("div", { class: "variables" });
      for (const variable of dashboard.variables) {
        const select = element("select", { id: `var-${variable.name}`, title: variable.description });
        view.vars[variable.name] = params.get(`var-${variable.name}`) || "";
        select.addEventListener("change", () => {
          view.vars[variable.name] = select.value;
          panelsUsing(variable.name).forEach(refresh);
        });
        bar.append(element("label", {}, `${variable.label} `, select));
        view.panels.set(`var:${variable.name}`, { dashboard, variable, select });
      }
      section.append(bar);
    }
    const grid = element("div", { class: "grid" });
    for (const panel of dashboard.panels) {
      const chart = element("div", { class: "chart" });
      const note = element("div", { class: "note" }, "Loading…");
      chart.hidden = true;
      const node = element("div", {
        class: "panel", id: `panel-${panel.id}`, "data-panel": panel.id,
        "data-visualisation": panel.visualisation, "data-datasource": panel.datasource,
        title: panel.description,
      }, element("h3", {}, panel.title), chart, note);
      node.style.gridColumn = `span ${Math.max(4, Math.min(24, panel.width))}`;
      node.style.height = `${Math.max(4, panel.height) * 34}px`;
      grid.append(node);
      view.panels.set(panel.id, { node, chart, note, busy: false, panel });
      observer.observe(node);
    }
    section.append(grid);
    main.append(section);
  }
}

async function cycle(first) {
  // The model picker first: its value feeds the family explorer's panels.
  const stale = new Set();
  for (const slot of view.panels.values()) {
    if (!slot.variable) continue;
    try {
      if (await loadOptions(slot.dashboard, slot.variable, slot.select)) stale.add(slot.variable.name);
    } catch (error) {
      console.warn("variable options", slot.variable.name, error);
    }
  }
  const due = [];
  for (const slot of view.panels.values()) {
    if (!slot.panel) continue;
    const p = slot.panel;
    // On screen, or with nothing drawn yet (worth asking again even off screen).
    const waiting = slot.node.dataset.state !== "data";
    if (first || waiting || view.visible.has(slot.node.id) || p.variables.some((v) => stale.has(v))) due.push(p);
  }
  await Promise.all(due.map(refresh));
  document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

async function main() {
  const layout = await (await fetch("/api/dashboards")).json();
  view.layout = layout;
  const picker = document.getElementById("range");
  const ranges = ["", ...layout.ranges];
  picker.replaceChildren(...ranges.map((r) =>
    element("option", { value: r }, r === "" ? "each dashboard's own" : r === "all" ? "all time" : r.replace("now-", "last "))));
  view.range = params.get("range") || layout.default_range || "";
  picker.value = view.range;
  picker.addEventListener("change", () => {
    view.range = picker.value;
    cycle(true);
  });
  build(layout);
  await cycle(true);
  document.body.dataset.ready = "true";
  setInterval(() => cycle(false), layout.refresh_seconds * 1000);
}

main();
