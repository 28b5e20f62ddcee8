/* postlib-figures.js: narrow-screen layouts for postlib.viz figures (no dependencies; uses the global Plotly).
 *
 * Every postlib.viz builder stores in layout.meta a relayout patch for narrow screens ("narrow"),
 * the figure's own values of the same attributes ("wide") and the width below which the patch
 * applies ("narrow_below": 600 px, more for panels side by side); see postlib/viz/responsive.py.
 * This script finds every plotly div on the page (also inside open shadow roots, as Panel renders
 * them). Below that width it redraws the div with the patch (legend and colorbars under the plot,
 * subplots stacked, smaller margins) and hides the toolbar; above it, the figure's own layout.
 * In both it wraps the title to the width and keeps the plot area as tall as the layout planned
 * (plotly shrinks it when an element needs more margin than planned). It re-checks on resize,
 * when a div appears, when a figure is replaced (Plotly.react) and after each animation frame.
 * A handled div carries data-postlib-layout="narrow" or "wide".
 */
(function () {
  "use strict";
  var NARROW_PX = 600;                     // keep in sync with postlib/viz/responsive.py
  var CHAR_EM = 0.56;                      // average glyph width of the sans-serif stack, in em
  var STYLE = ".postlib-narrow .modebar-container{display:none!important}";
  var states = new WeakMap();

  function tokens(path) {                  // "annotations[2].font.size" -> ["annotations", 2, "font", "size"]
    var out = [];
    path.split(".").forEach(function (part) {
      var m = /^([^\[]+)((?:\[\d+\])*)$/.exec(part);
      out.push(m[1]);
      (m[2].match(/\d+/g) || []).forEach(function (i) { out.push(+i); });
    });
    return out;
  }
  function getPath(obj, path) {
    var keys = tokens(path);
    for (var i = 0; i < keys.length && obj !== undefined && obj !== null; i++) obj = obj[keys[i]];
    return obj;
  }
  function setPath(obj, path, value) {     // creates containers on the way; null deletes the attribute
    var keys = tokens(path);
    for (var i = 0; i < keys.length - 1; i++) {
      if (obj[keys[i]] === undefined || obj[keys[i]] === null) obj[keys[i]] = typeof keys[i + 1] === "number" ? [] : {};
      obj = obj[keys[i]];
    }
    if (value === null) delete obj[keys[keys.length - 1]];
    else obj[keys[keys.length - 1]] = JSON.parse(JSON.stringify(value));
  }
  function clone(layout) {                 // a deep copy that shares the meta object (it identifies the figure)
    var meta = layout.meta;
    var out = JSON.parse(JSON.stringify(Object.assign({}, layout, {meta: null})));
    out.meta = meta;
    delete out.width;                      // plotly writes the width it sized to; the div decides it
    return out;
  }

  function wrap(text, maxChars) {          // plain words into lines of at most maxChars, joined by <br>
    var words = String(text).replace(/<br\s*\/?>/gi, " ").split(/\s+/).filter(Boolean);
    var lines = [], line = "";
    words.forEach(function (w) {
      if (line && (line + " " + w).length > maxChars) { lines.push(line); line = w; }
      else { line = line ? line + " " + w : w; }
    });
    if (line) lines.push(line);
    return lines.join("<br>");
  }
  function nLines(text) { return text ? String(text).split(/<br\s*\/?>/i).length : 0; }

  function ensureStyle(gd) {               // the toolbar rule, in the document or in the div's shadow root
    var root = gd.getRootNode ? gd.getRootNode() : document;
    var host = root === document ? document.head : root;
    if (!host || host.__postlibStyle) return;
    var el = document.createElement("style");
    el.textContent = STYLE;
    host.appendChild(el);
    host.__postlibStyle = true;
  }

  function fit(gd, base, redrawn) {       // title wrapped to the width, plot area as tall as planned
    var layout = gd.layout, full = gd._fullLayout, size = full._size;
    var upd = {}, text = getPath(layout, "title.text"), extra = 0;
    // After react, plotly has placed a moved legend from stale sizes: placing it again fixes it.
    if (redrawn && layout.legend && layout.legend.y !== undefined) upd["legend.y"] = layout.legend.y;
    if (text) {
      var font = (full.title && full.title.font && full.title.font.size) || 16;
      var fitted = wrap(text, Math.max(12, Math.floor((gd.getBoundingClientRect().width - size.l - 8) / (font * CHAR_EM))));
      if (fitted !== text) upd["title.text"] = fitted;
      extra = Math.round(1.3 * font) * (nLines(fitted) - nLines(getPath(base, "title.text")));
    }
    var top = getPath(base, "margin.t"), bottom = getPath(base, "margin.b");
    if ([top, bottom, base.height].every(function (v) { return typeof v === "number"; })) {
      var newTop = top + extra;
      if (layout.margin.t !== newTop) upd["margin.t"] = newTop;
      // Plotly grows a margin when an element needs more room than planned, at the plot's expense.
      var needTop = size.t > layout.margin.t ? size.t : 0;
      var want = Math.round((base.height - top - bottom) + Math.max(newTop, needTop) + size.b);
      if (Math.abs(layout.height - want) > 1) upd.height = want;
    }
    return Object.keys(upd).length ? Plotly.relayout(gd, upd) : null;
  }

  function run(state, fn) {                // one redraw at a time per figure
    state.queue = state.queue.then(fn).catch(function (e) { if (window.console) console.warn("postlib-figures:", e); });
    return state.queue;
  }

  function apply(gd) {
    var state = states.get(gd);
    if (!state || !gd._fullLayout) return Promise.resolve();
    var width = gd.getBoundingClientRect().width;
    if (!width) return Promise.resolve();  // hidden (a dashboard page not shown): decide when visible
    var mode = width < state.below ? "narrow" : "wide";
    return run(state, function () {
      var step = Promise.resolve(), redrawn = mode !== state.mode;
      if (redrawn) {
        state.mode = mode;
        gd.classList.toggle("postlib-narrow", mode === "narrow");
        delete gd.layout.width;              // else Plots.resize keeps the width plotly wrote there
        // Size to the div first (unless plotly just did), since the patch is made for that width.
        step = Math.abs(gd._fullLayout.width - width) < 1 ? Promise.resolve() : Plotly.Plots.resize(gd);
        step = step.then(function () {
          // A colorbar that changes orientation is drawn over its old ticks: let plotly draw it afresh.
          gd.querySelectorAll(".infolayer g.colorbar").forEach(function (el) { el.remove(); });
          return Plotly.react(gd, gd.data, clone(state.layouts[mode]));
        });
      }
      return step.then(function () { return fit(gd, state.layouts[mode], redrawn); })
        .then(function () { return fit(gd, state.layouts[mode]); })   // once more if plotly pushed a margin
        .then(function () { gd.setAttribute("data-postlib-layout", mode); });
    });
  }

  function adopt(gd) {                     // read a figure's patch; false if it has none
    var meta = gd.layout && gd.layout.meta;
    var patch = meta && meta.narrow;
    var state = states.get(gd);
    if (state && state.meta === meta) return true;
    if (!patch || typeof patch !== "object") { states.delete(gd); return false; }
    // Both layouts start from the drawn one; meta.wide holds the figure's own values of every
    // patched key, since plotly rewrites some of them while drawing (a square heatmap's domain).
    var wide = clone(gd.layout), narrow = clone(gd.layout), own = meta.wide || {};
    Object.keys(patch).forEach(function (k) {
      setPath(narrow, k, patch[k]);
      if (k in own) setPath(wide, k, own[k]);
    });
    if (typeof wide.height !== "number") wide.height = gd._fullLayout.height;
    states.set(gd, {meta: meta, metaJson: JSON.stringify(meta), layouts: {wide: wide, narrow: narrow}, mode: "wide", below: meta.narrow_below || NARROW_PX,
                    queue: state ? state.queue : Promise.resolve()});
    gd.classList.remove("postlib-narrow");
    if (!gd.__postlibHooked) {
      gd.__postlibHooked = true;
      ensureStyle(gd);
      gd.on("plotly_afterplot", function () {   // Plotly.react gave the div a new figure
        var s = states.get(gd);
        if (s && gd.layout && gd.layout.meta !== s.meta && JSON.stringify(gd.layout.meta) === s.metaJson) {
          s.meta = gd.layout.meta;                 // the same figure redrawn with a copy of its meta: not new
          return;
        }
        if (gd.layout && (!s || gd.layout.meta !== s.meta) && adopt(gd)) apply(gd);
      });
      gd.on("plotly_animated", function () { apply(gd); });
      if (window.ResizeObserver) new ResizeObserver(function () { apply(gd); }).observe(gd);
    }
    return true;
  }

  function plotDivs(root, deep, out) {    // deep: also inside open shadow roots (a walk over every element)
    root.querySelectorAll(".js-plotly-plot").forEach(function (el) { out.push(el); });
    if (deep) root.querySelectorAll("*").forEach(function (el) { if (el.shadowRoot) plotDivs(el.shadowRoot, deep, out); });
    return out;
  }

  function scan(deep) {
    if (!window.Plotly) return;
    plotDivs(document, deep !== false, []).forEach(function (gd) {
      if (gd._fullLayout && gd.on && !states.has(gd) && adopt(gd)) apply(gd);
    });
  }

  var timer = null;
  function later() { clearTimeout(timer); timer = setTimeout(function () { scan(false); }, 100); }
  window.addEventListener("resize", later);
  window.addEventListener("load", function () { scan(true); });
  document.addEventListener("DOMContentLoaded", later);
  if (window.MutationObserver) {
    new MutationObserver(later).observe(document.documentElement, {childList: true, subtree: true});
  }
  setInterval(function () { scan(true); }, 1500);   // figures in shadow roots escape the observer
  window.PostlibFigures = {
    narrowPx: NARROW_PX, scan: scan, wrap: wrap,
    update: function (gd) {                // lay out one div now (or scan the page); resolves when done
      if (!gd) { scan(true); return Promise.resolve(); }
      return gd._fullLayout && adopt(gd) ? apply(gd) : Promise.resolve();
    }
  };
  later();
})();
