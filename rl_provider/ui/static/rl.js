// rl_provider pages: live job status, log tail, learning curves, Stop and invoke.
// Plain JavaScript, no library and no CDN (Airflow deployments often have no internet).
// Every value from the server is put in the page as text (textContent), never as HTML.
"use strict";

(function () {
  var SVG = "http://www.w3.org/2000/svg";
  var LOG_POLL_MS = 2000;
  var CURVE_POLL_MS = 4000;
  var MAX_LOG_LINES = 5000;
  var COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04"];

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    return node;
  }

  function conn() { return document.body.getAttribute("data-conn") || "rl_default"; }

  function apiUrl(base, path, params) {
    var query = new URLSearchParams(Object.assign({ conn: conn() }, params || {}));
    return base + path + "?" + query.toString();
  }

  // Same-origin requests carry Airflow's session cookie; POSTs send JSON, which the server
  // requires together with a same-origin Origin header (CSRF guard).
  function request(method, url, body) {
    var init = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") {
      init.headers["Content-Type"] = "application/json";
      init.body = body === undefined ? "{}" : body;
    }
    return fetch(url, init).then(function (response) {
      return response.text().then(function (text) {
        var data;
        try { data = JSON.parse(text); } catch (e) { data = { detail: text }; }
        if (!response.ok) {
          var error = new Error((data && data.detail) || response.statusText);
          error.status = response.status;
          throw error;
        }
        return data;
      });
    });
  }

  function autosubmit() {
    document.querySelectorAll("select.autosubmit").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
    document.querySelectorAll("time[datetime]").forEach(function (node) {
      var when = new Date(node.getAttribute("datetime"));
      if (!isNaN(when)) node.title = when.toLocaleString();
    });
  }

  // ------------------------------------------------------------------- job status
  var lastSeen = null;

  function setStatus(state) {
    var job = document.getElementById("job");
    var seen = state.status + "/" + state.secondary_status;
    if (lastSeen !== null && seen !== lastSeen) refreshDetail(job.getAttribute("data-api"));
    lastSeen = seen;
    var status = document.getElementById("status");
    if (status) {
      status.textContent = "";
      var badge = el("span", "badge s-" + state.status, state.status);
      status.appendChild(badge);
    }
    var secondary = document.getElementById("secondary");
    if (secondary) secondary.textContent = state.secondary_status || "";
    if (state.failure_reason) {
      var section = document.getElementById("failure-section");
      if (section) section.hidden = false;
      document.getElementById("failure").textContent = state.failure_reason;
    }
    var stop = document.getElementById("stop");
    if (stop && state.terminal) {
      stop.remove();
      document.getElementById("action-result").textContent = "";
    }
    job.setAttribute("data-status", state.status);
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    var total = Math.round(seconds), h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60);
    var s = total % 60;
    if (h) return h + "h " + String(m).padStart(2, "0") + "m " + String(s).padStart(2, "0") + "s";
    if (m) return m + "m " + String(s).padStart(2, "0") + "s";
    return seconds < 10 ? seconds.toFixed(1) + "s" : s + "s";
  }

  function utc(iso) {
    return iso ? iso.split(".")[0].replace("T", " ").replace("+00:00", "") + " UTC" : "";
  }

  function table(headers, rows) {
    var t = el("table", "kv"), head = el("tr"), body = el("tbody");
    headers.forEach(function (h) { head.appendChild(el("th", null, h)); });
    var thead = el("thead"); thead.appendChild(head); t.appendChild(thead);
    rows.forEach(function (cells) {
      var tr = el("tr");
      cells.forEach(function (c) { tr.appendChild(el("td", null, c)); });
      body.appendChild(tr);
    });
    t.appendChild(body);
    return t;
  }

  // When the secondary status changes, the transitions, times and artifacts are re-read.
  function refreshDetail(api) {
    request("GET", apiUrl(api, "")).then(function (job) {
      document.getElementById("ended").textContent = utc(job.ended);
      document.getElementById("duration").textContent = duration(job.duration_s);
      var transitions = document.getElementById("transitions");
      transitions.textContent = "";
      transitions.appendChild(table(["Status", "Started", "Ended", "Duration", "Message"],
        job.transitions.map(function (t) {
          return [t.status, utc(t.start), t.end ? utc(t.end) : "running", duration(t.duration_s),
                  t.message || ""];
        })));
      var artifacts = document.getElementById("artifacts");
      var names = Object.keys(job.artifacts);
      if (names.length) {
        artifacts.textContent = "";
        artifacts.appendChild(table(["Artifact", "URI"], names.map(function (k) {
          return [k, job.artifacts[k]];
        })));
      }
    }).catch(function () { /* the next status change retries */ });
  }

  // ---------------------------------------------------------------------- log tail
  function followLog(job, api) {
    var pre = document.getElementById("log");
    var label = document.getElementById("log-state");
    var cursor = null;
    var done = false;

    function append(lines) {
      var atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      var fragment = document.createDocumentFragment();
      lines.forEach(function (line) { fragment.appendChild(el("div", "line", line)); });
      pre.appendChild(fragment);
      while (pre.childNodes.length > MAX_LOG_LINES) pre.removeChild(pre.firstChild);
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    }

    function poll() {
      var params = cursor === null ? {} : { cursor: cursor };
      request("GET", apiUrl(api, "/logs", params)).then(function (data) {
        if (cursor === null && data.skipped) {
          append(["... " + data.skipped + " earlier lines not shown ..."]);
        }
        cursor = data.cursor;
        append(data.lines);
        setStatus(data);
        // The status was read before the lines: once it is terminal, these lines are the last.
        done = data.terminal;
        label.textContent = done ? "(ended)" : "(following)";
        job.setAttribute("data-log-lines", String(pre.querySelectorAll(".line").length));
        if (!done) setTimeout(poll, LOG_POLL_MS);
      }).catch(function (error) {
        label.textContent = "(" + error.message + "; retrying)";
        setTimeout(poll, LOG_POLL_MS * 2);
      });
    }
    poll();
  }

  // ------------------------------------------------------------------- learning curves
  function Curves(container) {
    this.container = container;
    this.series = {};   // metric -> [[timestamp, value], ...]
    this.cursor = null; // the log cursor after the points received (null: from the start)
  }

  Curves.prototype.add = function (series, cursor) {
    var self = this;
    Object.keys(series).forEach(function (name) {
      if (!self.series[name]) self.series[name] = [];
      Array.prototype.push.apply(self.series[name], series[name]);
    });
    this.cursor = cursor;
    this.draw();
  };

  // One chart: x = report number (1, 2, ...) of each metric, y = its value; a legend with
  // the last value; hovering shows the values at that report.
  Curves.prototype.draw = function () {
    var names = Object.keys(this.series).filter(function (n) { return true; }).sort();
    var self = this;
    var empty = document.getElementById("curves-empty");
    if (!names.length) return;
    if (empty) empty.remove();
    var width = 760, height = 300, left = 64, right = 16, top = 12, bottom = 36;
    var maxN = 1, lo = Infinity, hi = -Infinity;
    names.forEach(function (n) {
      var pts = self.series[n];
      maxN = Math.max(maxN, pts.length);
      pts.forEach(function (p) { lo = Math.min(lo, p[1]); hi = Math.max(hi, p[1]); });
    });
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    if (lo === hi) { lo -= 1; hi += 1; }
    var pad = (hi - lo) * 0.05; lo -= pad; hi += pad;
    function x(i) { return left + (maxN <= 1 ? 0 : (i / (maxN - 1)) * (width - left - right)); }
    function y(v) { return top + (1 - (v - lo) / (hi - lo)) * (height - top - bottom); }

    var chart = svg("svg", { viewBox: "0 0 " + width + " " + height, class: "chart",
                             role: "img", "aria-label": "Learning curves" });
    chart.appendChild(svg("rect", { x: left, y: top, width: width - left - right,
                                    height: height - top - bottom, class: "plot" }));
    for (var k = 0; k <= 4; k++) {
      var v = lo + ((hi - lo) * k) / 4;
      chart.appendChild(svg("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), class: "grid" }));
      var label = svg("text", { x: left - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" });
      label.textContent = Number(v.toPrecision(4)).toString();
      chart.appendChild(label);
    }
    var xTicks = Math.min(maxN, 6);
    for (var t = 0; t < xTicks; t++) {
      var i = xTicks <= 1 ? 0 : Math.round((t * (maxN - 1)) / (xTicks - 1));
      var xl = svg("text", { x: x(i), y: height - bottom + 16, class: "tick", "text-anchor": "middle" });
      xl.textContent = String(i + 1);
      chart.appendChild(xl);
    }
    var axis = svg("text", { x: (left + width - right) / 2, y: height - 4, class: "axis",
                             "text-anchor": "middle" });
    axis.textContent = "report";
    chart.appendChild(axis);

    var legend = el("ul", "legend");
    names.forEach(function (name, index) {
      var pts = self.series[name];
      var color = COLORS[index % COLORS.length];
      var line = svg("polyline", {
        class: "series", fill: "none", stroke: color, "stroke-width": 2,
        "data-metric": name, "data-points": pts.length,
        points: pts.map(function (p, j) { return x(j).toFixed(1) + "," + y(p[1]).toFixed(1); }).join(" ")
      });
      var title = svg("title", {});
      title.textContent = name;
      line.appendChild(title);
      chart.appendChild(line);
      var item = el("li");
      var swatch = el("span", "swatch");
      swatch.style.background = color;
      item.appendChild(swatch);
      var last = pts.length ? pts[pts.length - 1][1] : null;
      item.appendChild(el("span", null, name + (last === null ? "" : " = " + Number(last.toPrecision(6)))
                                          + " (" + pts.length + " points)"));
      legend.appendChild(item);
    });

    var hover = svg("line", { class: "hover", y1: top, y2: height - bottom, x1: -10, x2: -10 });
    chart.appendChild(hover);
    var readout = el("div", "readout", "Hover the chart to read values.");
    chart.addEventListener("mousemove", function (event) {
      var box = chart.getBoundingClientRect();
      var px = ((event.clientX - box.left) / box.width) * width;
      var i = Math.max(0, Math.min(maxN - 1, Math.round(((px - left) / (width - left - right)) * (maxN - 1))));
      hover.setAttribute("x1", x(i)); hover.setAttribute("x2", x(i));
      readout.textContent = "report " + (i + 1) + ": " + names.map(function (n) {
        var p = self.series[n][i];
        return n + " = " + (p ? Number(p[1].toPrecision(6)) : "-");
      }).join(", ");
    });

    this.container.textContent = "";
    this.container.appendChild(chart);
    this.container.appendChild(legend);
    this.container.appendChild(readout);
    this.container.setAttribute("data-series", String(names.length));
  };

  function followCurves(job, api) {
    var curves = new Curves(document.getElementById("curves"));
    function poll() {
      var params = curves.cursor === null ? {} : { cursor: curves.cursor };
      request("GET", apiUrl(api, "/metrics", params)).then(function (data) {
        curves.add(data.series, data.cursor);
        job.setAttribute("data-curves-ready", "true");
        if (!data.terminal) setTimeout(poll, CURVE_POLL_MS);
      }).catch(function () { setTimeout(poll, CURVE_POLL_MS * 2); });
    }
    poll();
  }

  function stopButton(api) {
    var button = document.getElementById("stop");
    if (!button) return;
    var result = document.getElementById("action-result");
    button.addEventListener("click", function () {
      if (!window.confirm("Stop this training job?")) return;
      button.disabled = true;
      result.textContent = "Stopping...";
      request("POST", apiUrl(api, "/stop")).then(function (state) {
        result.textContent = "Stop requested: " + state.status;
        setStatus(state);
      }).catch(function (error) {
        button.disabled = false;
        result.textContent = "Stop failed: " + error.message;
      });
    });
  }

  // -------------------------------------------------------------------------- invoke
  function invokeBox(section) {
    var api = section.getAttribute("data-api");
    var send = document.getElementById("invoke-send");
    var state = document.getElementById("invoke-state");
    var answer = document.getElementById("invoke-answer");
    send.addEventListener("click", function () {
      var body = document.getElementById("invoke-body").value;
      try { JSON.parse(body); } catch (e) { state.textContent = "Not JSON: " + e.message; return; }
      send.disabled = true;
      state.textContent = "Invoking...";
      var started = performance.now();
      request("POST", apiUrl(api, "/invoke"), body).then(function (data) {
        state.textContent = "OK in " + Math.round(performance.now() - started) + " ms (" + data.content_type + ")";
        answer.textContent = data.body;
      }).catch(function (error) {
        state.textContent = "Error " + (error.status || "") + ": " + error.message;
        answer.textContent = "";
      }).then(function () { send.disabled = false; });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    autosubmit();
    var job = document.getElementById("job");
    if (job) {
      var api = job.getAttribute("data-api");
      followLog(job, api);
      followCurves(job, api);
      stopButton(api);
    }
    var invoke = document.getElementById("invoke");
    if (invoke) invokeBox(invoke);
    document.body.setAttribute("data-ready", "true");  // for tests: handlers are attached
  });
})();
