/* Wayline journey builder: a canvas over a journey document of the journey language.
 *
 * The model IS the document (the JSON form of a journey file): the canvas is drawn from it and
 * every edit changes only the keys the user touched, so loading and saving without edits gives
 * back the very same document. Layout is automatic, top to bottom, from the step graph
 * (trigger → first step → each step's `next` / branch targets). Saving, validating and
 * publishing go through the REST API (/api/v1/journeys/…) with the session cookie and the
 * page's CSRF token. No framework, no build step: this file is served as is.
 */
(function () {
  "use strict";

  var TRIGGER = "$trigger", GOAL = "$goal", JOURNEY = "$journey";
  var ACTIONS = {
    email: ["delivered", "opened", "clicked", "bounced", "unsubscribed"],
    whatsapp: ["delivered", "read", "replied", "failed"],
    sms: ["delivered", "clicked", "replied", "failed"],
  };
  var TYPE_LABELS = {
    send: "Send", delay: "Delay", wait_until: "Wait until", wait_for: "Wait for event",
    switch: "Branch", split: "A/B split", update_profile: "Update profile",
    webhook: "Webhook", exit: "Exit",
  };
  var NODE_W = 220, COL_GAP = 40, ROW_GAP = 56, MARGIN = 24;

  var root = document.getElementById("builder");
  var dataEl = document.getElementById("journey-data");
  if (!root || !dataEl) return;
  var data = JSON.parse(dataEl.textContent);
  var journey = data.journey;
  var doc = clone(journey.document);
  var problems = journey.problems || [];
  var stats = data.stats;
  var selected = null;
  var dirty = false;
  var editable = root.getAttribute("data-editable") === "true";

  var canvas = document.getElementById("canvas");
  var panel = document.getElementById("panel");
  var statusLine = document.getElementById("builder-message");
  var problemList = document.getElementById("problem-list");
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function clone(v) { return JSON.parse(JSON.stringify(v)); }
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "text") e.textContent = v;
        else if (k === "class") e.className = v;
        else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, v === true ? "" : v);
      });
    }
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }
  /* YAML 1.1 reads an unquoted 10:00 as the number 600 (minutes); the language accepts both. */
  function clock(v) {
    if (typeof v !== "number") return v;
    var h = Math.floor(v / 60), m = v % 60;
    return (h < 10 ? "0" : "") + h + ":" + (m < 10 ? "0" : "") + m;
  }
  function say(text, kind) {
    statusLine.textContent = text;
    statusLine.className = "builder-message " + (kind || "");
  }

  // --- the step graph ----------------------------------------------------------------------

  function steps() { return Array.isArray(doc.steps) ? doc.steps : []; }
  function stepById(id) {
    var all = steps();
    for (var i = 0; i < all.length; i++) if (all[i] && all[i].id === id) return all[i];
    return null;
  }
  function stepIds() { return steps().map(function (s) { return s && s.id; }).filter(Boolean); }

  /* Every way out of a node: {label, get(), set(target)}; target null = end of the path. */
  function outlets(nodeId) {
    if (nodeId === TRIGGER) {
      return [{
        key: "start", label: "first step",
        get: function () { var s = steps()[0]; return s ? s.id : null; },
        set: function (target) { moveToFront(target); },
      }];
    }
    var step = stepById(nodeId);
    if (!step) return [];
    function prop(obj, key, label, outletKey) {
      return {
        key: outletKey, label: label,
        get: function () { return obj[key] === undefined ? null : obj[key]; },
        set: function (t) { obj[key] = t; },
      };
    }
    switch (step.type) {
      case "exit": return [];
      case "wait_for":
        return (step.branches || []).map(function (b, i) {
          return prop(b, "next", branchName(step, b, i), "branch:" + i);
        }).concat([prop(step, "on_timeout", "timeout", "on_timeout")]);
      case "switch":
        return (step.cases || []).map(function (c, i) {
          return prop(c, "next", c.name || "case_" + (i + 1), "case:" + i);
        }).concat([prop(step, "default", "default", "default")]);
      case "split":
        return (step.branches || []).map(function (b, i) {
          return prop(b, "next", b.name || "branch " + (i + 1), "branch:" + i);
        });
      default:
        return [prop(step, "next", "next", "next")];
    }
  }
  function branchName(step, b, i) {
    return b.name || b.action || b.event || "branch " + (i + 1);
  }
  function moveToFront(target) {
    var all = steps();
    var i = all.findIndex(function (s) { return s && s.id === target; });
    if (i > 0) all.unshift(all.splice(i, 1)[0]);
  }

  // --- layout --------------------------------------------------------------------------------

  function layout() {
    var rank = {}, order = [], ends = [];
    rank[TRIGGER] = 0;
    order.push(TRIGGER);
    var queue = [TRIGGER];
    function visit() {
      while (queue.length) {
        var id = queue.shift();
        outlets(id).forEach(function (o, i) {
          var t = o.get();
          if (t === null || t === "" || !stepById(t)) {
            // A path that ends (or goes nowhere known) gets a small end marker of its own.
            var endId = "$end:" + id + ":" + i;
            rank[endId] = rank[id] + 1;
            order.push(endId);
            ends.push({ id: endId, from: id, missing: t });
            return;
          }
          if (rank[t] === undefined) {
            rank[t] = rank[id] + 1;
            order.push(t);
            queue.push(t);
          }
        });
        var step = stepById(id);
        if (step && step.type === "split" && Number(step.holdout) > 0) {
          var hid = "$holdout:" + id;
          rank[hid] = rank[id] + 1;
          order.push(hid);
          ends.push({ id: hid, from: id, holdout: true });
        }
      }
    }
    visit();
    // Steps no path reaches still belong on the canvas (the validator flags them).
    stepIds().forEach(function (id) {
      if (rank[id] === undefined) {
        var max = 0;
        Object.keys(rank).forEach(function (k) { max = Math.max(max, rank[k]); });
        rank[id] = max + 1;
        order.push(id);
        queue.push(id);
        visit();
      }
    });
    return { rank: rank, order: order, ends: ends };
  }

  // --- drawing -------------------------------------------------------------------------------

  function problemsFor(nodeId) {
    return problems.filter(function (p) { return p.node === nodeId; });
  }
  function stepStats(id) {
    if (!stats) return null;
    for (var i = 0; i < stats.steps.length; i++) if (stats.steps[i].step_id === id) return stats.steps[i];
    return null;
  }
  function summarize(nodeId) {
    if (nodeId === TRIGGER) {
      var t = doc.trigger || {};
      if (t.event) return "When a customer does “" + t.event + "”" + (t.where ? " (filtered)" : "");
      if (t.segment) return "When a customer enters segment “" + t.segment + "”";
      if (t.segment_rule) return "When a segment rule starts to hold";
      if (t.schedule) {
        var s = t.schedule;
        return s.date_trait ? "Every year on " + s.date_trait + " at " + (clock(s.at) || "09:00")
          : (s.delay || "?") + " after " + (s.after_event || "?");
      }
      return "No trigger yet";
    }
    if (nodeId === GOAL) {
      var g = doc.goal;
      return g ? "Ends the journey when a customer does “" + g.event + "” within " + (g.within || "7d")
        : "No goal: add one to count conversions";
    }
    var st = stepById(nodeId) || {};
    switch (st.type) {
      case "send": return (st.channel || "?") + " · " + (st.template || "no template");
      case "delay": return "for " + (st.duration || "?");
      case "wait_until":
        return [st.time !== undefined && st.time !== null ? "at " + clock(st.time) : "", st.weekdays ? "on " + [].concat(st.weekdays).join(", ") : ""]
          .filter(Boolean).join(" ") || "?";
      case "wait_for": return (st.branches || []).length + " branch(es), timeout " + (st.timeout || "?");
      case "switch": return (st.cases || []).length + " case(s) and a default";
      case "split": {
        var ws = (st.branches || []).map(function (b) { return (b.name || "?") + " " + b.weight; });
        if (Number(st.holdout) > 0) ws.push("holdout " + st.holdout);
        return ws.join(" / ");
      }
      case "update_profile": return "set " + Object.keys(st.set || {}).join(", ") +
        ((st.unset || []).length ? "; unset " + st.unset.join(", ") : "");
      case "webhook": return (st.method || "POST") + " " + (st.url || "?");
      case "exit": return "ends the journey here";
      default: return "unknown step type " + JSON.stringify(st.type);
    }
  }
  function titleOf(nodeId) {
    if (nodeId === TRIGGER) return "Trigger";
    if (nodeId === GOAL) return "Goal";
    var st = stepById(nodeId) || {};
    return (TYPE_LABELS[st.type] || st.type || "Step") + " · " + nodeId;
  }
  function statsLine(nodeId) {
    if (!stats) return null;
    if (nodeId === TRIGGER) return stats.entered + " entered";
    if (nodeId === GOAL) {
      return stats.converted + " converted (" + (100 * stats.conversion_rate).toFixed(1) + " %)";
    }
    var s = stepStats(nodeId);
    if (!s) return "not in the live version";
    var parts = [s.entered + " entered"];
    if (s.step_type === "send") {
      parts.push(s.sent + " sent");
      if (s.failed) parts.push(s.failed + " failed");
    } else {
      parts.push(s.completed + " completed");
    }
    return parts.join(" · ");
  }

  function nodeElement(nodeId) {
    var errs = problemsFor(nodeId);
    var isStep = nodeId !== TRIGGER && nodeId !== GOAL;
    var st = isStep ? stepById(nodeId) : null;
    var kind = nodeId === TRIGGER ? "trigger" : nodeId === GOAL ? "goal" : (st && st.type) || "step";
    var line = statsLine(nodeId);
    var label = titleOf(nodeId) + ": " + summarize(nodeId) +
      (errs.length ? ". " + errs.length + " problem(s)" : "") + (line ? ". " + line : "");
    return el("button", {
      type: "button",
      class: "node node-" + kind + (errs.length ? " has-error" : "") + (selected === nodeId ? " selected" : "") +
        (nodeId === GOAL && !doc.goal ? " placeholder" : ""),
      "data-node-id": nodeId,
      "data-node-type": kind,
      "data-testid": "node",
      "aria-pressed": selected === nodeId ? "true" : "false",
      "aria-label": label,
      onclick: function () { select(nodeId); },
    }, [
      el("span", { class: "node-title", text: titleOf(nodeId) }),
      el("span", { class: "node-summary", text: summarize(nodeId) }),
      line ? el("span", { class: "node-stats", "data-testid": "node-stats", text: line }) : null,
      errs.length ? el("span", { class: "node-errors", "data-testid": "node-errors" },
        errs.map(function (p) {
          return el("span", { class: "node-error", text: (p.field ? p.field + ": " : "") + p.message });
        })) : null,
    ]);
  }

  function draw() {
    var lay = layout();
    canvas.textContent = "";
    var edges = svg("svg", { class: "edges", "aria-hidden": "true" });
    canvas.appendChild(edges);
    var boxes = {};
    lay.order.forEach(function (id) {
      var node;
      if (id.indexOf("$end:") === 0 || id.indexOf("$holdout:") === 0) {
        var end = lay.ends.find(function (e) { return e.id === id; });
        var text = end.holdout ? "Holdout " + stepById(end.from).holdout + " (receives nothing)"
          : end.missing ? "→ “" + end.missing + "” (no such step)" : "End";
        node = el("div", { class: "node-end" + (end.missing ? " broken" : ""), "data-end-of": end.from, text: text });
      } else {
        node = nodeElement(id);
      }
      canvas.appendChild(node);
      boxes[id] = node;
    });
    var goalNode = nodeElement(GOAL);
    canvas.appendChild(goalNode);

    // Rows by rank, each as tall as its tallest node; columns centred under each other.
    var rows = [];
    lay.order.forEach(function (id) {
      var r = lay.rank[id];
      (rows[r] = rows[r] || []).push(id);
    });
    var widest = Math.max.apply(null, rows.map(function (r) { return (r || []).length; }));
    var width = Math.max(widest, 2) * (NODE_W + COL_GAP) + 2 * MARGIN;
    var pos = {}, y = MARGIN;
    rows.forEach(function (row) {
      if (!row) return;
      var h = 0;
      row.forEach(function (id) { h = Math.max(h, boxes[id].offsetHeight); });
      var rowWidth = row.length * (NODE_W + COL_GAP) - COL_GAP;
      var x0 = (width - rowWidth) / 2;
      // The trigger row leaves room on its right for the goal.
      if (row[0] === TRIGGER) x0 = MARGIN + (NODE_W + COL_GAP) * Math.max(0, (Math.max(widest, 2) - 2) / 2);
      row.forEach(function (id, i) {
        var b = boxes[id];
        var x = x0 + i * (NODE_W + COL_GAP);
        b.style.left = x + "px";
        b.style.top = y + "px";
        pos[id] = { x: x, y: y, w: NODE_W, h: b.offsetHeight, rank: lay.rank[id] };
      });
      y += h + ROW_GAP;
    });
    var trig = pos[TRIGGER];
    goalNode.style.left = trig.x + NODE_W + COL_GAP + "px";
    goalNode.style.top = trig.y + "px";
    var height = Math.max(y, trig.y + goalNode.offsetHeight + ROW_GAP) + MARGIN;
    canvas.style.width = width + "px";
    canvas.style.height = height + "px";
    edges.setAttribute("width", width);
    edges.setAttribute("height", height);
    edges.appendChild(arrowHead());

    lay.order.forEach(function (id) {
      var outs = outlets(id);
      var from = pos[id];
      if (!from) return;
      var splitStats = stats && stats.splits ? stats.splits[id] : null;
      outs.forEach(function (o, i) {
        var t = o.get();
        var targetId = t && stepById(t) ? t : "$end:" + id + ":" + i;
        var to = pos[targetId];
        if (!to) return;
        var branching = outs.length > 1 || id === TRIGGER || (stepById(id) || {}).type === "split";
        var label = branching ? o.label : "";
        if (splitStats) {
          var b = splitStats.find(function (x) { return x.name === o.label; });
          if (b) label += " · " + b.customers;
        }
        drawEdge(edges, from, to, i, outs.length, label);
        if (editable) {
          dropZone(id, i, o, edgeMiddle(from, to, i, outs.length));
          outletHandle(id, i, o, from.x + from.w * (i + 1) / (outs.length + 1), from.y + from.h);
        }
      });
      var step = stepById(id);
      if (step && step.type === "split" && Number(step.holdout) > 0 && pos["$holdout:" + id]) {
        var hb = splitStats ? splitStats.find(function (x) { return x.name === "holdout"; }) : null;
        drawEdge(edges, from, pos["$holdout:" + id], outs.length, outs.length + 1,
          "holdout" + (hb ? " · " + hb.customers : ""), true);
      }
    });
  }
  function edgeMiddle(from, to, i, n) {
    var sx = from.x + from.w * (i + 1) / (n + 1), sy = from.y + from.h;
    if (to.rank <= from.rank) return { x: sx + 22, y: sy + 24 };
    // Past the middle, where an outlet's label sits: on the curve, two thirds of the way.
    var tx = to.x + to.w / 2, t = 0.65, u = 1 - t;
    var my = (sy + to.y) / 2;  // the curve's control points (drawEdge): (sx,my) and (tx,my)
    return {
      x: u * u * u * sx + 3 * u * u * t * sx + 3 * u * t * t * tx + t * t * t * tx,
      y: u * u * u * sy + 3 * u * u * t * my + 3 * u * t * t * my + t * t * t * to.y,
    };
  }

  // --- dragging: new steps from the palette onto an arrow, arrows from a node's outlets -----
  /* Everything here can also be done from the side panel (select a node, "Then…" and "Insert
   * step"), which is what keyboards and screen readers use. */

  var STEP_TYPE = "application/x-wayline-step";
  var dragging = null;  // the kind of step being dragged from the palette
  function dropZone(nodeId, i, o, at) {
    var zone = el("div", {
      class: "drop-zone", "data-drop-from": nodeId, "data-drop-outlet": o.key, "aria-hidden": "true",
      text: "+", title: "Drop a step here (or click) to insert it after " + titleOf(nodeId) + " (" + o.label + ")",
      onclick: function () {
        // The panel's insert control of this outlet, ready to choose a kind.
        select(nodeId);
        var kind = panel.querySelector('[data-insert-kind="' + o.key + '"]');
        if (kind) kind.focus();
      },
      ondragover: function (e) {
        if (!dragging) return;
        e.preventDefault();
        e.dataTransfer.dropEffect = "copy";
        zone.classList.add("over");
      },
      ondragleave: function () { zone.classList.remove("over"); },
      ondrop: function (e) {
        e.preventDefault();
        var kind = dragging || e.dataTransfer.getData(STEP_TYPE);
        dragging = null;
        root.classList.remove("dragging-step");
        if (kind) insertAfter(nodeId, o, kind);
      },
    });
    zone.style.left = at.x - 11 + "px";
    zone.style.top = at.y - 11 + "px";
    canvas.appendChild(zone);
  }
  function outletHandle(nodeId, i, o, x, y) {
    var handle = el("div", {
      class: "outlet-handle", "data-handle-from": nodeId, "data-handle-outlet": o.key, "aria-hidden": "true",
      title: "Drag onto a step to connect " + o.label,
    });
    handle.style.left = x - 7 + "px";
    handle.style.top = y - 7 + "px";
    handle.addEventListener("pointerdown", function (e) { startConnecting(e, handle, nodeId, o, x, y); });
    canvas.appendChild(handle);
  }
  function canvasPoint(e) {
    var box = canvas.getBoundingClientRect();
    return { x: e.clientX - box.left, y: e.clientY - box.top };
  }
  function startConnecting(e, handle, nodeId, o, x, y) {
    e.preventDefault();
    handle.setPointerCapture(e.pointerId);
    var layer = canvas.querySelector("svg.edges");
    var line = svg("path", { class: "edge connecting", "marker-end": "url(#arrow)" });
    layer.appendChild(line);
    root.classList.add("connecting");
    function targetAt(ev) {
      var hit = document.elementFromPoint(ev.clientX, ev.clientY);
      var node = hit && hit.closest("[data-node-id], [data-end-of]");
      if (!node || !canvas.contains(node)) return undefined;
      if (node.hasAttribute("data-end-of")) return null;  // an end: the path ends here
      var id = node.getAttribute("data-node-id");
      return stepById(id) && id !== nodeId ? id : undefined;
    }
    function move(ev) {
      var p = canvasPoint(ev);
      line.setAttribute("d", "M" + x + "," + y + " L" + p.x + "," + p.y);
      canvas.querySelectorAll(".drop-target").forEach(function (n) { n.classList.remove("drop-target"); });
      var t = targetAt(ev);
      if (t) canvas.querySelector('[data-node-id="' + t + '"]').classList.add("drop-target");
    }
    function up(ev) {
      handle.removeEventListener("pointermove", move);
      handle.removeEventListener("pointerup", up);
      handle.removeEventListener("pointercancel", up);
      root.classList.remove("connecting");
      line.remove();
      var t = ev.type === "pointerup" ? targetAt(ev) : undefined;
      if (t === undefined || t === o.get() || (t === null && nodeId === TRIGGER)) { draw(); return; }
      o.set(t);
      say(titleOf(nodeId) + " (" + o.label + ") now goes to " + (t ? titleOf(t) : "the end"), "warn");
      dirty = true;
      select(nodeId);
    }
    handle.addEventListener("pointermove", move);
    handle.addEventListener("pointerup", up);
    handle.addEventListener("pointercancel", up);
  }
  function buildPalette() {
    var palette = document.getElementById("palette");
    if (!palette || !editable) return;
    data.step_kinds.forEach(function (k) {
      palette.appendChild(el("button", {
        type: "button", class: "palette-item", draggable: "true", "data-step-kind": k.value, text: k.label,
        title: "Drag onto an arrow of the canvas, or click to insert after the selected node",
        ondragstart: function (e) {
          dragging = k.value;
          e.dataTransfer.setData(STEP_TYPE, k.value);
          e.dataTransfer.effectAllowed = "copy";
          root.classList.add("dragging-step");
        },
        ondragend: function () { dragging = null; root.classList.remove("dragging-step"); },
        onclick: function () {
          var outs = selected ? outlets(selected) : [];
          if (!outs.length) {
            say("Select the node to insert after (or drag the step onto an arrow)", "warn");
            return;
          }
          insertAfter(selected, outs[0], k.value);
        },
      }));
    });
  }

  function arrowHead() {
    var defs = svg("defs");
    var marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5",
      markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" });
    marker.appendChild(svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }));
    defs.appendChild(marker);
    return defs;
  }
  function drawEdge(layer, from, to, i, n, label, dashed) {
    var sx = from.x + from.w * (i + 1) / (n + 1), sy = from.y + from.h;
    var tx = to.x + to.w / 2, ty = to.y;
    var d;
    if (to.rank <= from.rank) {
      // A loop back up: around the right-hand side.
      var side = Math.max(from.x + from.w, to.x + to.w) + 18 + 8 * i;
      d = "M" + sx + "," + sy + " C" + sx + "," + (sy + 30) + " " + side + "," + (sy + 30) + " " + side + "," + (sy - 10) +
        " L" + side + "," + (ty + 20) + " C" + side + "," + (ty - 20) + " " + tx + "," + (ty - 30) + " " + tx + "," + ty;
    } else {
      var my = (sy + ty) / 2;
      d = "M" + sx + "," + sy + " C" + sx + "," + my + " " + tx + "," + my + " " + tx + "," + ty;
    }
    layer.appendChild(svg("path", { d: d, class: "edge" + (dashed ? " dashed" : ""), "marker-end": "url(#arrow)" }));
    if (label) {
      // At the middle of the edge: labels of a node's several outlets then never overlap.
      var lx = to.rank <= from.rank ? sx + 6 : (sx + tx) / 2, ly = to.rank <= from.rank ? sy + 14 : (sy + ty) / 2;
      var text = svg("text", { x: lx, y: ly + 4, class: "edge-label", "text-anchor": to.rank <= from.rank ? "start" : "middle" });
      text.textContent = label;
      layer.appendChild(text);
    }
  }

  function drawProblems() {
    problemList.textContent = "";
    var counter = document.getElementById("problem-count");
    counter.textContent = problems.length ? problems.length + " problem(s) to fix before publishing" : "No problems found";
    counter.className = problems.length ? "bad" : "good";
    problems.forEach(function (p) {
      var onCanvas = p.node === TRIGGER || p.node === GOAL || p.node === JOURNEY || stepById(p.node);
      problemList.appendChild(el("li", { "data-problem-node": p.node }, [
        onCanvas ? el("button", { type: "button", class: "link-button", text: p.node === JOURNEY ? "Journey settings" : p.node,
          onclick: function () { select(p.node); } }) : el("code", { text: p.path || "journey" }),
        " " + (p.field ? p.field + ": " : "") + p.message,
      ]));
    });
    document.getElementById("journey-settings").classList.toggle("has-error", problemsFor(JOURNEY).length > 0);
  }

  // --- the side panel ------------------------------------------------------------------------

  var uid = 0;
  function fieldId() { uid += 1; return "f" + uid; }
  function changed() {
    dirty = true;
    say("Unsaved changes", "warn");
    draw();
  }
  function setOrDelete(obj, key, value) {
    if (value === "" || value === null || value === undefined) delete obj[key];
    else obj[key] = value;
  }
  function textField(label, obj, key, opts) {
    opts = opts || {};
    var id = fieldId();
    var value = obj[key] === undefined || obj[key] === null ? "" : opts.display ? opts.display(obj[key]) : obj[key];
    var input = el(opts.multiline ? "textarea" : "input", {
      id: id, name: key, "data-field": opts.name || key, list: opts.list, placeholder: opts.placeholder,
      type: opts.multiline ? null : opts.type || "text", step: opts.type === "number" ? "any" : null,
      onchange: function () {
        var v = input.value;
        if (opts.type === "number" && v !== "") v = Number(v);
        if (opts.required) obj[key] = v; else setOrDelete(obj, key, v);
        if (opts.after) opts.after(v);
        changed();
      },
    });
    input.value = String(value);
    return el("div", { class: "field" }, [el("label", { for: id, text: label }), input,
      opts.hint ? el("span", { class: "hint", text: opts.hint }) : null]);
  }
  function jsonField(label, obj, key, hint) {
    var id = fieldId();
    var area = el("textarea", { id: id, "data-field": key, spellcheck: "false", class: "json" });
    area.value = obj[key] === undefined ? "" : JSON.stringify(obj[key], null, 2);
    var err = el("span", { class: "field-error", role: "alert" });
    area.addEventListener("change", function () {
      if (!area.value.trim()) { delete obj[key]; err.textContent = ""; changed(); return; }
      try {
        obj[key] = JSON.parse(area.value);
        err.textContent = "";
        changed();
      } catch (e) {
        err.textContent = "Not valid JSON: " + e.message;
      }
    });
    return el("div", { class: "field" }, [el("label", { for: id, text: label }), area,
      hint ? el("span", { class: "hint", text: hint }) : null, err]);
  }
  // --- filters and conditions as forms (JSON stays for what a form cannot say) ------------

  var OPS = [["eq", "is"], ["ne", "is not"], ["gt", ">"], ["gte", "≥"], ["lt", "<"], ["lte", "≤"],
    ["in", "is one of"], ["not_in", "is none of"], ["contains", "contains"],
    ["exists", "exists"], ["not_exists", "does not exist"]];
  var OP_NAMES = OPS.map(function (o) { return o[0]; });
  var NO_VALUE = ["exists", "not_exists"], LISTS = ["in", "not_in"], NUMERIC = ["gt", "gte", "lt", "lte"];
  function isMapping(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }

  /* The three spellings of `where` (docs/journey-language.md) as rows {property, op, value};
   * null when the value is none of them (the JSON field then shows it as it is). */
  function whereRows(where) {
    if (where === undefined || where === null) return [];
    if (Array.isArray(where)) {
      var ok = where.every(function (f) {
        return isMapping(f) && typeof f.property === "string" &&
          Object.keys(f).every(function (k) { return ["property", "op", "value"].indexOf(k) >= 0; }) &&
          (f.op === undefined || OP_NAMES.indexOf(f.op) >= 0);
      });
      return ok ? where.map(function (f) { return { property: f.property, op: f.op || "eq", value: f.value }; }) : null;
    }
    if (!isMapping(where)) return null;
    return Object.keys(where).map(function (k) {
      var v = where[k];
      if (isMapping(v) && Object.keys(v).length === 1 && OP_NAMES.indexOf(Object.keys(v)[0]) >= 0) {
        var op = Object.keys(v)[0];
        return { property: k, op: op, value: v[op] };
      }
      return { property: k, op: "eq", value: v };
    });
  }
  /* Rows back to the most compact spelling that says the same: {prop: value} for equalities,
   * {prop: {op: value}} for operators, the list when a property comes twice. */
  function whereOf(rows) {
    rows = rows.filter(function (r) { return r.property; });
    if (!rows.length) return undefined;
    var names = rows.map(function (r) { return r.property; });
    var twice = names.some(function (n, i) { return names.indexOf(n) !== i; });
    if (twice) {
      return rows.map(function (r) {
        var f = { property: r.property };
        if (r.op !== "eq") f.op = r.op;
        if (NO_VALUE.indexOf(r.op) < 0) f.value = r.value;
        return f;
      });
    }
    var out = {};
    rows.forEach(function (r) {
      var one = {};
      one[r.op] = NO_VALUE.indexOf(r.op) >= 0 ? true : r.value;
      out[r.property] = r.op === "eq" && !isMapping(r.value) ? r.value : one;
    });
    return out;
  }
  function valueText(v) {
    if (v === undefined || v === null) return "";
    if (Array.isArray(v)) return v.map(valueText).join(", ");
    return typeof v === "object" ? JSON.stringify(v) : String(v);
  }
  /* What a typed value means: a list for in/not_in, a number where one is compared or was
   * there before, true/false as booleans; anything else stays text ("007" is not 7). */
  function valueOf(text, op, before) {
    if (LISTS.indexOf(op) >= 0) {
      return text.split(",").map(function (t) { return t.trim(); }).filter(Boolean)
        .map(function (t, i) { return valueOf(t, "eq", Array.isArray(before) ? before[i] : undefined); });
    }
    var t = text.trim();
    if (t === "true" || t === "false") return t === "true";
    var numeric = /^-?\d+(\.\d+)?$/.test(t);
    if (numeric && (NUMERIC.indexOf(op) >= 0 || typeof before === "number")) return Number(t);
    return text;
  }
  /* Rows being written (no property yet) are not in the document: kept here per object, so
   * redrawing the panel does not lose them. */
  var unfinished = new WeakMap();
  function filterEditor(label, obj, key) {
    var kept = unfinished.get(obj) || {};
    var rows = kept[key] || whereRows(obj[key]);
    if (rows === null) return jsonField(label, obj, key);
    function remember() {
      if (rows.some(function (r) { return !r.property; })) kept[key] = rows; else delete kept[key];
      unfinished.set(obj, kept);
    }
    function write() {
      remember();
      setOrDelete(obj, key, whereOf(rows));
      changed();
    }
    var box = el("fieldset", { class: "filters", "data-filters": key }, [el("legend", { text: label })]);
    if (!rows.length) box.appendChild(el("p", { class: "hint", text: "None: every such event counts." }));
    rows.forEach(function (r, i) {
      var pid = fieldId(), oid = fieldId(), vid = fieldId();
      var prop = el("input", { id: pid, type: "text", value: r.property, placeholder: "property, e.g. product_id",
        "data-filter-part": "property", onchange: function () { r.property = prop.value.trim(); write(); } });
      var value = el("input", { id: vid, type: "text", value: valueText(r.value), "data-filter-part": "value",
        placeholder: LISTS.indexOf(r.op) >= 0 ? "a, b, c" : "value",
        onchange: function () { r.value = valueOf(value.value, r.op, r.value); write(); } });
      var op = el("select", { id: oid, "data-filter-part": "op", onchange: function () {
        r.op = op.value;
        r.value = NO_VALUE.indexOf(r.op) >= 0 ? undefined : valueOf(value.value, r.op, r.value);
        write();
        openPanel();
      } }, OPS.map(function (o) { return el("option", { value: o[0], text: o[1] }); }));
      op.value = r.op;
      box.appendChild(el("div", { class: "filter-row", "data-filter": i }, [
        el("label", { for: pid, class: "sr-only", text: label + " " + (i + 1) + ": property" }), prop,
        el("label", { for: oid, class: "sr-only", text: label + " " + (i + 1) + ": operator" }), op,
        NO_VALUE.indexOf(r.op) >= 0 ? null : el("label", { for: vid, class: "sr-only", text: label + " " + (i + 1) + ": value" }),
        NO_VALUE.indexOf(r.op) >= 0 ? null : value,
        el("button", { type: "button", class: "small", text: "×", "aria-label": "Remove filter " + (i + 1),
          onclick: function () { rows.splice(i, 1); write(); openPanel(); } }),
      ]));
    });
    box.appendChild(el("button", { type: "button", class: "small", "data-testid": "add-filter", text: "Add filter",
      onclick: function () {
        rows.push({ property: "", op: "eq", value: "" });
        remember();
        openPanel();
        focusLast(key);
      } }));
    return box;
  }
  function focusLast(key) {
    var inputs = panel.querySelectorAll('[data-filters="' + key + '"] [data-filter-part="property"]');
    if (inputs.length) inputs[inputs.length - 1].focus();
  }

  /* A switch case's condition: a trait, an event in the customer's history, a segment; what
   * combines several (all, any, not) stays JSON. */
  var CONDITION_KINDS = [["trait", "Profile trait"], ["event", "Event in their history"],
    ["segment", "Segment membership"], ["json", "Other (JSON)"]];
  function conditionKind(c) {
    if (!isMapping(c)) return "json";
    if (typeof c.trait === "string") return "trait";
    if (typeof c.event === "string") return "event";
    if (typeof c.segment === "string") return "segment";
    return "json";
  }
  function conditionEditor(label, owner, key) {
    var c = owner[key];
    var kind = conditionKind(c);
    var holder = { kind: kind };
    var out = [selectField(label, holder, "kind", CONDITION_KINDS, {
      name: "condition-kind",
      after: function (v) {
        owner[key] = { trait: { trait: "vip", value: true }, event: { event: "Order Completed", min_count: 1 },
          segment: { segment: "vip" }, json: owner[key] }[v];
      }, redraw: true,
    })];
    if (kind === "trait") {
      var row = whereRows([{ property: c.trait, op: c.op, value: c.value }])[0];
      var oid = fieldId(), vid = fieldId();
      var op = el("select", { id: oid, "data-field": "op", onchange: function () {
        if (op.value === "eq") delete c.op; else c.op = op.value;
        if (NO_VALUE.indexOf(op.value) >= 0) delete c.value;
        changed(); openPanel();
      } }, OPS.map(function (o) { return el("option", { value: o[0], text: o[1] }); }));
      op.value = row.op;
      var value = el("input", { id: vid, type: "text", "data-field": "value", value: valueText(c.value),
        onchange: function () { c.value = valueOf(value.value, c.op || "eq", c.value); changed(); } });
      out.push(textField("Trait", c, "trait", { required: true }));
      out.push(el("div", { class: "field" }, [el("label", { for: oid, text: "Operator" }), op]));
      if (NO_VALUE.indexOf(row.op) < 0) out.push(el("div", { class: "field" }, [el("label", { for: vid, text: "Value" }), value]));
    } else if (kind === "event") {
      out.push(textField("Event", c, "event", { required: true }));
      out.push(filterEditor("Where (filters)", c, "where"));
      out.push(textField("At least (times)", c, "min_count", { placeholder: "1", type: "number" }));
      out.push(textField("At most (times)", c, "max_count", { placeholder: "no limit", type: "number" }));
      out.push(textField("Within", c, "within", { placeholder: "all of their history", hint: "e.g. 30d" }));
    } else if (kind === "segment") {
      out.push(textField("Segment", c, "segment", { required: true }));
      var mid = fieldId();
      var member = el("select", { id: mid, "data-field": "member", onchange: function () {
        if (member.value === "in") delete c.member; else c.member = false;
        changed();
      } }, [el("option", { value: "in", text: "is in it" }), el("option", { value: "out", text: "is not in it" })]);
      member.value = c.member === false ? "out" : "in";
      out.push(el("div", { class: "field" }, [el("label", { for: mid, text: "The customer" }), member]));
    } else {
      out.push(jsonField("Condition (JSON)", owner, key, "e.g. {\"all\": [{\"trait\": \"vip\", \"value\": true}, {\"segment\": \"newsletter\"}]}"));
    }
    return out;
  }

  function selectField(label, obj, key, options, opts) {
    opts = opts || {};
    var id = fieldId();
    var picker = el("select", { id: id, "data-field": opts.name || key, onchange: function () {
      var v = picker.value;
      if (opts.optional && v === "") delete obj[key]; else obj[key] = v;
      if (opts.after) opts.after(v);
      changed();
      if (opts.redraw) openPanel();
    } }, options.map(function (o) {
      var value = Array.isArray(o) ? o[0] : o, text = Array.isArray(o) ? o[1] : o;
      return el("option", { value: value, text: text });
    }));
    picker.value = obj[key] === undefined ? "" : obj[key];
    return el("div", { class: "field" }, [el("label", { for: id, text: label }), picker]);
  }

  function targetControls(o, index) {
    var id = fieldId();
    var choices = [["", "(end of this path)"]].concat(stepIds().map(function (s) { return [s, s]; }));
    var current = o.get();
    var targetSelect = el("select", { id: id, "data-outlet": o.key, onchange: function () {
      o.set(targetSelect.value === "" ? null : targetSelect.value);
      changed();
      openPanel();
    } }, choices.map(function (c) { return el("option", { value: c[0], text: c[1] }); }));
    if (current && stepIds().indexOf(current) < 0) targetSelect.appendChild(el("option", { value: current, text: current + " (no such step)" }));
    targetSelect.value = current === null || current === undefined ? "" : current;
    var kindId = fieldId();
    var kind = el("select", { id: kindId, "aria-label": "Kind of step to insert after " + o.label, "data-insert-kind": o.key },
      data.step_kinds.map(function (k) { return el("option", { value: k.value, text: k.label }); }));
    var add = el("button", { type: "button", "data-testid": "insert-step", "data-outlet": o.key,
      text: "Insert step", onclick: function () { insertAfter(selected, o, kind.value); } });
    return el("fieldset", { class: "outlet" }, [
      el("legend", { text: "Then (" + o.label + ")" }),
      el("label", { for: id, class: "sr-only", text: "Go to step after " + o.label }), targetSelect,
      el("div", { class: "insert" }, [el("label", { for: kindId, class: "sr-only", text: "Kind of step" }), kind, add]),
    ]);
  }

  /* A new step of `kind` on outlet `o` of node `nodeId`, continuing where the outlet led. */
  function insertAfter(nodeId, o, kind) {
    var created = newStep(kind, o.get());
    if (nodeId === TRIGGER) steps().unshift(created); else steps().push(created);
    o.set(created.id);
    changed();
    select(created.id);
  }
  function freshId(base) {
    var ids = stepIds(), n = 1, id = base;
    while (ids.indexOf(id) >= 0) { n += 1; id = base + "_" + n; }
    return id;
  }
  function newStep(kind, continueTo) {
    var next = continueTo || null;
    var parts = kind.split(":"), type = parts[0];
    var id = freshId(parts[1] ? parts[1] : type);
    var step = { id: id, type: type };
    switch (type) {
      case "send":
        step.channel = parts[1] || "email";
        step.template = data.templates.indexOf("abandoned_cart") >= 0 ? "abandoned_cart" : data.templates[0] || "";
        step.next = next; break;
      case "delay": step.duration = "1d"; step.next = next; break;
      case "wait_until": step.time = "10:00"; step.next = next; break;
      case "wait_for":
        step.timeout = "1d";
        step.branches = [{ name: "ordered", event: "Order Completed", next: null }];
        step.on_timeout = next; break;
      case "switch":
        step.cases = [{ name: "vip", when: { trait: "vip", value: true }, next: next }];
        step.default = next; break;
      case "split":
        step.branches = [{ name: "a", weight: 50, next: next }, { name: "b", weight: 50, next: next }];
        break;
      case "update_profile": step.set = { tagged: true }; step.next = next; break;
      case "webhook": step.url = "https://example.com/hook"; step.method = "POST"; step.next = next; break;
      case "exit": break;
    }
    if (step.next === null) delete step.next;
    if (step.on_timeout === null) delete step.on_timeout;
    if (step.default === null) delete step.default;
    return step;
  }

  function renameStep(oldId, newId) {
    steps().forEach(function (s) {
      if (!s) return;
      ["next", "on_timeout", "default"].forEach(function (k) { if (s[k] === oldId) s[k] = newId; });
      (s.branches || []).concat(s.cases || []).forEach(function (b) {
        if (b && b.next === oldId) b.next = newId;
        if (b && b.message === oldId) b.message = newId;
      });
    });
  }
  function deleteStep(id) {
    var step = stepById(id);
    var all = steps();
    var index = all.indexOf(step);
    var single = ["send", "delay", "wait_until", "update_profile", "webhook"].indexOf(step.type) >= 0;
    var continueTo = single && step.next && step.next !== id ? step.next : null;
    all.splice(index, 1);
    steps().forEach(function (s) {
      if (!s) return;
      ["next", "on_timeout", "default"].forEach(function (k) {
        if (s[k] === id) { if (continueTo) s[k] = continueTo; else delete s[k]; }
      });
      (s.branches || []).concat(s.cases || []).forEach(function (b) {
        if (b && b.next === id) b.next = continueTo;
      });
    });
    if (index === 0 && continueTo) moveToFront(continueTo);
  }

  function listEditor(title, step, key, render, make) {
    var items = step[key] || (step[key] = []);
    var box = el("fieldset", { class: "list-editor" }, [el("legend", { text: title })]);
    items.forEach(function (item, i) {
      var row = el("div", { class: "list-item", "data-item": key + ":" + i }, render(item, i));
      row.appendChild(el("button", { type: "button", class: "danger small", text: "Remove",
        "aria-label": "Remove " + title.toLowerCase() + " " + (i + 1),
        onclick: function () { items.splice(i, 1); changed(); openPanel(); } }));
      box.appendChild(row);
    });
    box.appendChild(el("button", { type: "button", class: "small", "data-testid": "add-" + key,
      text: "Add " + title.toLowerCase().replace(/s$/, ""),
      onclick: function () { items.push(make(items.length)); changed(); openPanel(); } }));
    return box;
  }

  function sendStepIds() {
    return steps().filter(function (s) { return s && s.type === "send"; }).map(function (s) { return s.id; });
  }

  function stepForm(step) {
    var out = [];
    var idInput = textField("Step id", { id: step.id }, "id", { required: true });
    var input = idInput.querySelector("input");
    input.onchange = null;
    input.addEventListener("change", function () {
      var v = input.value.trim();
      if (!v || v === step.id) return;
      if (stepById(v)) { say("Another step is named " + v, "bad"); input.value = step.id; return; }
      var old = step.id;
      step.id = v;
      renameStep(old, v);
      selected = v;
      changed();
      openPanel();
    });
    out.push(idInput);
    switch (step.type) {
      case "send":
        out.push(selectField("Channel", step, "channel", ["email", "whatsapp", "sms"], { redraw: true }));
        out.push(textField("Template", step, "template", { list: "template-names", required: true }));
        out.push(jsonField("Variables", step, "variables", "JSON object, e.g. {\"discount_percent\": 10}"));
        break;
      case "delay":
        out.push(textField("Duration", step, "duration", { required: true, hint: "e.g. 2h, 1d, 2 days, PT30M" }));
        break;
      case "wait_until":
        out.push(textField("Time of day", step, "time", { placeholder: "10:00", display: clock, hint: "the customer's local time" }));
        out.push(textField("Weekdays", { weekdays: (step.weekdays || []).join(", ") }, "weekdays", {
          placeholder: "mon, tue, wed",
          after: function (v) {
            var days = String(v).split(",").map(function (d) { return d.trim(); }).filter(Boolean);
            if (days.length) step.weekdays = days; else delete step.weekdays;
          },
        }));
        break;
      case "wait_for":
        out.push(textField("Timeout", step, "timeout", { required: true, hint: "how long to wait, e.g. 3d" }));
        out.push(listEditor("Branches", step, "branches", function (b) {
          var mode = b.message !== undefined ? "message" : "event";
          var rows = [selectField("Waits for", { mode: mode }, "mode",
            [["message", "an engagement with a message"], ["event", "any event"]], {
              after: function (v) {
                if (v === "message") {
                  delete b.event; delete b.where;
                  b.message = sendStepIds()[0] || ""; b.action = "opened";
                } else {
                  delete b.message; delete b.action; b.event = "Order Completed";
                }
              }, redraw: true,
            })];
          rows.push(textField("Branch name", b, "name", { placeholder: "optional" }));
          if (mode === "message") {
            rows.push(selectField("Message (send step)", b, "message", sendStepIds().length ? sendStepIds() : [""], { redraw: true }));
            var sender = stepById(b.message);
            rows.push(selectField("Action", b, "action", ACTIONS[(sender && sender.channel) || "email"] || ACTIONS.email));
          } else {
            rows.push(textField("Event", b, "event", { required: true }));
            rows.push(filterEditor("Where (filters)", b, "where"));
          }
          return rows;
        }, function () { return { event: "Order Completed", next: null }; }));
        break;
      case "switch":
        out.push(listEditor("Cases", step, "cases", function (c) {
          return [textField("Case name", c, "name")].concat(conditionEditor("When", c, "when"));
        }, function (n) { return { name: "case_" + (n + 1), when: { trait: "vip", value: true }, next: null }; }));
        break;
      case "split":
        out.push(textField("Holdout weight", step, "holdout", { type: "number", hint: "receives nothing; same unit as the weights" }));
        out.push(listEditor("Branches", step, "branches", function (b) {
          return [textField("Branch name", b, "name", { required: true }),
            textField("Weight", b, "weight", { type: "number", required: true })];
        }, function (n) { return { name: "branch_" + (n + 1), weight: 50, next: null }; }));
        break;
      case "update_profile":
        out.push(jsonField("Set traits", step, "set", "JSON object, e.g. {\"vip\": true}"));
        out.push(jsonField("Unset traits", step, "unset", "JSON list, e.g. [\"coupon\"]"));
        break;
      case "webhook":
        out.push(textField("URL", step, "url", { required: true, type: "url" }));
        out.push(selectField("Method", step, "method", ["POST", "PUT", "PATCH", "GET", "DELETE"]));
        out.push(jsonField("Body", step, "body"));
        out.push(jsonField("Headers", step, "headers"));
        break;
    }
    out.push(textField("Description", step, "description", { placeholder: "optional note" }));
    return out;
  }

  function triggerForm() {
    var t = doc.trigger || (doc.trigger = {});
    var kind = t.segment ? "segment" : t.segment_rule ? "segment_rule" : t.schedule ? "schedule" : "event";
    var out = [selectField("Customers enter", { kind: kind }, "kind", [
      ["event", "when they do an event"], ["segment", "when they enter a segment"],
      ["segment_rule", "when a segment rule starts to hold"], ["schedule", "on a schedule"],
    ], {
      after: function (v) {
        var fresh = { event: { event: "Checkout Started" }, segment: { segment: "vip" },
          segment_rule: { segment_rule: { event: "Order Completed", min_count: 2 } },
          schedule: { schedule: { date_trait: "birthday", at: "09:00" } } }[v];
        doc.trigger = fresh;
      }, redraw: true,
    })];
    if (kind === "event") {
      out.push(textField("Event", t, "event", { required: true }));
      out.push(filterEditor("Where (filters)", t, "where"));
    } else if (kind === "segment") {
      out.push(textField("Segment", t, "segment", { required: true }));
    } else {
      out.push(jsonField(kind === "schedule" ? "Schedule" : "Rule", t, kind));
    }
    return out;
  }

  function goalForm() {
    if (!doc.goal) {
      return [el("p", { text: "A goal ends the journey for a customer wherever they are and counts as a conversion." }),
        el("button", { type: "button", class: "primary", "data-testid": "add-goal", text: "Add a goal",
          onclick: function () { doc.goal = { event: "Order Completed", within: "7d" }; changed(); openPanel(); } })];
    }
    return [textField("Goal event", doc.goal, "event", { required: true }),
      filterEditor("Where (filters)", doc.goal, "where"),
      textField("Counts within", doc.goal, "within", { hint: "from entry, e.g. 3d (default 7d)" }),
      el("button", { type: "button", class: "danger", text: "Remove the goal",
        onclick: function () { delete doc.goal; changed(); openPanel(); } })];
  }

  function journeyForm() {
    return [textField("Name", doc, "name", { required: true }),
      textField("Description", doc, "description", { multiline: true }),
      textField("Time zone", doc, "timezone", { placeholder: "UTC", hint: "for customers whose profile names none" }),
      jsonField("Entry policy", doc, "entry", "e.g. {\"policy\": \"again_after\", \"again_after\": \"7d\"}")];
  }

  function openPanel() {
    panel.textContent = "";
    if (!selected) {
      panel.appendChild(el("p", { class: "muted", text: "Select a node on the canvas to configure it." }));
      return;
    }
    var fields, heading;
    if (selected === TRIGGER) { heading = "Trigger"; fields = triggerForm(); }
    else if (selected === GOAL) { heading = "Goal"; fields = goalForm(); }
    else if (selected === JOURNEY) { heading = "Journey settings"; fields = journeyForm(); }
    else {
      var step = stepById(selected);
      if (!step) { selected = null; openPanel(); return; }
      heading = titleOf(selected);
      fields = stepForm(step);
    }
    var errs = problemsFor(selected);
    panel.appendChild(el("h2", { id: "panel-title", text: heading }));
    if (errs.length) {
      panel.appendChild(el("ul", { class: "error", "data-testid": "panel-errors" }, errs.map(function (p) {
        return el("li", { text: (p.field ? p.field + ": " : "") + p.message });
      })));
    }
    var form = el("form", { class: "node-form", "data-panel-for": selected, "aria-labelledby": "panel-title",
      onsubmit: function (e) { e.preventDefault(); } }, fields);
    panel.appendChild(form);
    outlets(selected).forEach(function (o, i) { form.appendChild(targetControls(o, i)); });
    if (selected !== TRIGGER && selected !== GOAL && selected !== JOURNEY) {
      form.appendChild(el("button", { type: "button", class: "danger", "data-testid": "delete-step",
        text: "Delete this step", onclick: function () {
          deleteStep(selected);
          selected = null;
          changed();
          openPanel();
        } }));
    }
  }

  function select(nodeId) {
    selected = nodeId;
    draw();
    openPanel();
    // Redrawing replaced the node that had the focus: keyboard users continue in the panel.
    var heading = document.getElementById("panel-title");
    var narrow = window.matchMedia && window.matchMedia("(max-width: 900px)").matches;
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
    if (narrow) panel.scrollIntoView({ behavior: "smooth", block: "start" });
  }

  // --- talking to the API --------------------------------------------------------------------

  function call(method, path, body, contentType) {
    var headers = { "X-CSRF-Token": csrf, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = contentType || "application/json";
    return fetch(data.api + path, {
      method: method, headers: headers, credentials: "same-origin",
      body: body === undefined ? undefined : contentType ? body : JSON.stringify(body),
    }).then(function (r) {
      return r.text().then(function (text) {
        var json = null;
        try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
        return { ok: r.ok, status: r.status, body: json, text: text };
      });
    });
  }
  function fail(what, r) {
    say(what + " failed: " + ((r.body && r.body.message) || r.status), "bad");
  }

  function save() {
    say("Saving…");
    return call("PUT", "", doc).then(function (r) {
      if (!r.ok) { fail("Saving", r); return false; }
      problems = r.body.problems;
      dirty = false;
      draw(); drawProblems(); openPanel();
      say(r.body.valid ? "Draft saved." : "Draft saved, with problems to fix before publishing.", r.body.valid ? "good" : "warn");
      return true;
    });
  }
  function validate() {
    return call("POST", "/validate", doc).then(function (r) {
      if (!r.ok) { fail("Checking", r); return; }
      problems = r.body.problems;
      draw(); drawProblems(); openPanel();
      say(r.body.valid ? "No problems: ready to publish." : problems.length + " problem(s) found.", r.body.valid ? "good" : "bad");
    });
  }
  function publish() {
    var saved = dirty ? save() : Promise.resolve(true);
    return saved.then(function (ok) {
      if (!ok) return;
      return call("POST", "/publish").then(function (r) {
        if (r.status === 409 && r.body && r.body.problems) {
          problems = r.body.problems;
          draw(); drawProblems(); openPanel();
          say("Not published: fix the problems marked on the canvas.", "bad");
          return;
        }
        if (!r.ok) { fail("Publishing", r); return; }
        say("Published version " + r.body.live_version + ".", "good");
        window.location.reload();
      });
    });
  }
  function setStatus(action) {
    return call("POST", "/" + action).then(function (r) {
      if (!r.ok) { fail(action === "pause" ? "Pausing" : "Resuming", r); return; }
      window.location.reload();
    });
  }
  function archive() {
    if (!window.confirm("Archive this journey? No one enters it any more, and customers inside leave at their next step.")) return Promise.resolve();
    return call("DELETE", "").then(function (r) {
      if (!r.ok) { fail("Archiving", r); return; }
      dirty = false;
      window.location.reload();
    });
  }
  function showYaml() {
    var box = document.getElementById("yaml-text");
    return fetch(data.api + "/export.yaml", { credentials: "same-origin" }).then(function (r) {
      return r.text().then(function (t) {
        box.value = t;
        say(dirty ? "This is the saved draft: save to include your latest edits." : "YAML of the saved draft.", dirty ? "warn" : "");
      });
    });
  }
  function importYaml() {
    var text = document.getElementById("yaml-text").value;
    return fetch("/api/v1/journeys/import", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/yaml", "X-CSRF-Token": csrf, Accept: "application/json" },
      body: text,
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) { say("Import failed: " + body.message, "bad"); return; }
        dirty = false;
        window.location.href = "/journeys/" + encodeURIComponent(body.id);
      });
    });
  }

  function bind(testId, fn) {
    var b = root.querySelector('[data-testid="' + testId + '"]');
    if (!b) return;
    b.addEventListener("click", function () {
      // One action at a time: a second click while the first is on its way would race it.
      if (b.disabled) return;
      b.disabled = true;
      Promise.resolve().then(fn).catch(function (e) {
        say("Could not reach the server: " + e.message, "bad");
      }).then(function () { b.disabled = false; });
    });
  }
  bind("save-draft", save);
  bind("validate", validate);
  bind("publish", publish);
  bind("pause", function () { setStatus("pause"); });
  bind("resume", function () { setStatus("resume"); });
  bind("archive", archive);
  bind("show-yaml", showYaml);
  bind("import-yaml", importYaml);
  document.getElementById("journey-settings").addEventListener("click", function () { select(JOURNEY); });
  window.addEventListener("beforeunload", function (e) {
    if (dirty) { e.preventDefault(); e.returnValue = ""; }
  });
  window.addEventListener("resize", function () { draw(); });

  // For tests and the curious: the document exactly as it would be saved.
  window.waylineBuilder = {
    document: function () { return clone(doc); },
    problems: function () { return clone(problems); },
    isDirty: function () { return dirty; },
    select: select,
    save: save,
    validate: validate,
  };

  var datalist = el("datalist", { id: "template-names" }, data.templates.map(function (t) { return el("option", { value: t }); }));
  root.appendChild(datalist);
  buildPalette();
  draw();
  drawProblems();
  openPanel();
  var wrap = canvas.parentNode, trigger = canvas.querySelector('[data-node-id="$trigger"]');
  if (trigger && wrap.scrollWidth > wrap.clientWidth) wrap.scrollLeft = trigger.offsetLeft - MARGIN;
  root.setAttribute("data-ready", "true");
})();
