/* Page behaviour for Beyond Transformers (the figures' own layout is postlib-figures.js's job).
 * - On a narrow screen a table becomes one card per row, each cell labelled with its column header
 *   (book.css), instead of a table wider than the phone.
 * - A display equation wider than the text column shrinks to fit (down to 60%) instead of scrolling
 *   sideways; below that it scrolls, and the page's author should break the equation.
 * - Code wraps (book.css) with a hanging indent: each line becomes a block whose continuation sits
 *   four columns right of the line's own indentation (show_source listings come that way already).
 */
(function () {
  "use strict";

  function labelTables() {
    document.querySelectorAll("article table").forEach(function (table) {
      var heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.innerText.trim();
      });
      if (!heads.length) return;
      table.querySelectorAll("tbody tr").forEach(function (row) {
        Array.prototype.forEach.call(row.children, function (cell, i) {
          if (heads[i]) cell.setAttribute("data-label", heads[i]);
        });
      });
      table.classList.add("postlib-stack");
    });
  }

  function fitEquations() {
    document.querySelectorAll('mjx-container[display="true"]').forEach(function (eq) {
      if (!eq.dataset.baseSize) eq.dataset.baseSize = String(parseFloat(eq.style.fontSize) || 100);
      var base = parseFloat(eq.dataset.baseSize);
      eq.style.fontSize = base + "%";
      var room = eq.clientWidth, need = eq.scrollWidth;
      if (room > 0 && need > room + 1) eq.style.fontSize = base * Math.max(0.6, room / need) + "%";
    });
    document.documentElement.setAttribute("data-equations-fitted", "1");
  }

  function whenMathJaxIsDone(callback) {
    var tries = 0;
    (function wait() {
      if (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise) {
        window.MathJax.startup.promise.then(callback);
      } else if (tries++ < 100) {
        setTimeout(wait, 100);
      } else {
        callback();
      }
    })();
  }

  var HANG = 4;

  function hangCode() {
    document.querySelectorAll("article div.highlight pre").forEach(function (pre) {
      if (pre.querySelector(".postlib-line")) return;
      var lines = pre.innerHTML.split("\n");   // pygments closes its spans at every line end
      if (lines.length && lines[lines.length - 1] === "") lines.pop();
      pre.innerHTML = lines.map(function (line) {
        var text = line.replace(/<[^>]*>/g, "");
        var hang = text.length - text.replace(/^ +/, "").length + HANG;
        return '<span class="postlib-line" style="padding-left:' + hang + "ch;text-indent:-" + hang + 'ch">' +
          line + "</span>";
      }).join("");
    });
  }

  var timer = null;
  document.addEventListener("DOMContentLoaded", labelTables);
  document.addEventListener("DOMContentLoaded", hangCode);
  window.addEventListener("load", function () { whenMathJaxIsDone(fitEquations); });
  window.addEventListener("resize", function () {
    clearTimeout(timer);
    timer = setTimeout(fitEquations, 150);
  });
})();
