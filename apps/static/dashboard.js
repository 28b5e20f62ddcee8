/* Beyond Transformers dashboard: client-side helpers (served at /dashboard-static/dashboard.js).
 *
 * Panel's plotly view calls Plotly.relayout(div, {width, height}) after every layout pass of the
 * page, even when the size has not changed, and each call redraws the whole figure. On a page
 * with three figures that is ~15 full redraws while the page loads, the largest share of a
 * reader's CPU time (and, with 20 readers on one machine, of everybody's time to first figure).
 * Here a relayout that only sets width/height to the values the figure already has is skipped.
 *
 * The same view may also relayout a figure that is not drawn (yet, or any more: Panel purges the
 * div when a view is removed, and a throttled resize can fire after that). Plotly then throws
 * "Cannot read properties of undefined (reading '_guiEditing')" — seen with 6 readers on the
 * State spaces page. A relayout of a div without a drawn figure (no _fullLayout) has nothing to
 * change: it is skipped too.
 */
(function () {
  "use strict";

  function sameSize(gd, update) {
    if (!gd || !gd.layout || !update || typeof update !== "object") return false;
    const keys = Object.keys(update);
    if (keys.length === 0 || keys.some((k) => k !== "width" && k !== "height")) return false;
    return keys.every((k) => gd.layout[k] === update[k]);
  }

  // Counts, for the browser tests and the load test: relayouts done, skipped as no-ops, and
  // skipped because the figure was not drawn.
  const stats = (window.__btDashboard = {relayouts: 0, skipped: 0, undrawn: 0});

  function patch(Plotly) {
    if (!Plotly || Plotly.__btPatched || typeof Plotly.relayout !== "function") return;
    const relayout = Plotly.relayout;
    Plotly.relayout = function (gd, update, ...rest) {
      if (gd && typeof gd === "object" && !gd._fullLayout) {
        stats.undrawn += 1;
        return Promise.resolve(gd);
      }
      if (rest.length === 0 && sameSize(gd, update)) {
        stats.skipped += 1;
        return Promise.resolve(gd);
      }
      stats.relayouts += 1;
      return relayout.call(this, gd, update, ...rest);
    };
    for (const name of ["restyle", "update"]) {  // they read _fullLayout._guiEditing as well
      const original = Plotly[name];
      if (typeof original !== "function") continue;
      Plotly[name] = function (gd, ...rest) {
        if (gd && typeof gd === "object" && !gd._fullLayout) {
          stats.undrawn += 1;
          return Promise.resolve(gd);
        }
        return original.call(this, gd, ...rest);
      };
    }
    Plotly.__btPatched = true;
  }

  if (window.Plotly) {
    patch(window.Plotly);
  } else {
    // Plotly is loaded after this file: patch it the moment it is defined.
    let current;
    Object.defineProperty(window, "Plotly", {
      configurable: true,
      enumerable: true,
      get() { return current; },
      set(value) { current = value; patch(value); },
    });
  }

  // ----- A sidebar that is a menu on a phone ------------------------------------------------------
  // The template's sidebar starts open; on a narrow screen it would take most of the width. Start it
  // closed there (the header's button opens it), and close it again once a page has been chosen.
  const NARROW = "(max-width: 767.98px)";

  function setSidebar(sidebar, open) {
    const toggle = document.getElementById("sidebar-toggle");
    const api = window.bootstrap && window.bootstrap.Collapse;
    if (api) {
      const collapse = api.getOrCreateInstance(sidebar, {toggle: false});
      open ? collapse.show() : collapse.hide();
    } else {
      sidebar.classList.toggle("show", open);
    }
    if (toggle) toggle.setAttribute("aria-expanded", open ? "true" : "false");
  }

  function setUpSidebar() {
    const sidebar = document.getElementById("sidebar");
    if (!sidebar) return;
    if (window.matchMedia(NARROW).matches) {
      sidebar.classList.remove("show");  // closed before the first paint: no animation
      const toggle = document.getElementById("sidebar-toggle");
      if (toggle) toggle.setAttribute("aria-expanded", "false");
    }
    sidebar.addEventListener("click", (event) => {
      if (!window.matchMedia(NARROW).matches) return;
      const onButton = event.composedPath().some((el) => el.tagName === "BUTTON");
      if (onButton) setTimeout(() => setSidebar(sidebar, false), 120);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUpSidebar, {once: true});
  } else {
    setUpSidebar();
  }
})();
