"""Render postlib.viz figures one after another in one headless Chromium page and measure them.

The page loads the plotly.js that ships with plotly.py and ``postlib-figures.js`` from disk
(no request leaves the machine), draws a figure the way the book's renderer does
(``Plotly.newPlot`` + ``addFrames``, config ``responsive``), lets the script apply the
narrow or wide layout, and returns the bounding boxes of every element the rules are about.
"""
from __future__ import annotations

import json
from pathlib import Path

import plotly
import plotly.graph_objects as go

from postlib.viz import FIGURES_JS

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
PAGE_PADDING = 24          # px each side: the book (pydata theme) gives a figure 342 px of a 390 px phone
CONFIG = {"responsive": True, "displaylogo": False}

HTML = f"""<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{margin:0;padding:0 {PAGE_PADDING}px;font-family:sans-serif}} #box{{width:100%}}</style>
</head><body><div id="box"></div></body></html>"""

# Draw one figure; resolve when postlib-figures.js has laid it out for the current width.
DRAW = """async ([fig, config]) => {
  const box = document.getElementById('box');
  const old = box.querySelector('.js-plotly-plot');
  if (old) Plotly.purge(old);
  box.innerHTML = '';
  const gd = document.createElement('div');
  box.appendChild(gd);
  await Plotly.newPlot(gd, fig.data, fig.layout, config);
  if (fig.frames) await Plotly.addFrames(gd, fig.frames);
  await PostlibFigures.update(gd);
  return gd.getAttribute('data-postlib-layout');
}"""

RELAYOUT_DONE = """async () => {
  const gd = document.querySelector('#box .js-plotly-plot');
  await new Promise(r => setTimeout(r, 50));
  await PostlibFigures.update(gd);
  return gd.getAttribute('data-postlib-layout');
}"""

MEASURE = """() => {
  const gd = document.querySelector('#box .js-plotly-plot');
  const r = gd.getBoundingClientRect();
  const boxes = [];
  const add = (kind, el, label) => {
    const b = el.getBoundingClientRect();
    if (b.width > 0.5 && b.height > 0.5)
      boxes.push({kind, label: label || (el.textContent || '').slice(0, 40),
                  x0: b.left - r.left, y0: b.top - r.top, x1: b.right - r.left, y1: b.bottom - r.top});
  };
  const transparent = el => {
    const fill = getComputedStyle(el).fill || el.getAttribute('fill') || '';
    const op = el.style.fillOpacity || el.getAttribute('fill-opacity');
    return fill.includes('rgba(0, 0, 0, 0)') || op === '0';
  };
  gd.querySelectorAll('.infolayer .legend > .bg').forEach(el => add('legend', el, 'legend'));
  gd.querySelectorAll('.infolayer g.colorbar').forEach(cb => {   // what is drawn, not the padded background
    let u = null;
    cb.querySelectorAll('rect, path, text').forEach(el => {
      if (el.classList.contains('cbbg') || el.closest('.cbbg')) return;
      const b = el.getBoundingClientRect();
      if (b.width < 0.5 && b.height < 0.5) return;
      u = u ? {l: Math.min(u.l, b.left), t: Math.min(u.t, b.top), r: Math.max(u.r, b.right), b: Math.max(u.b, b.bottom)}
            : {l: b.left, t: b.top, r: b.right, b: b.bottom};
    });
    if (u) boxes.push({kind: 'colorbar', label: 'colorbar', x0: u.l - r.left, y0: u.t - r.top, x1: u.r - r.left, y1: u.b - r.top});
  });
  gd.querySelectorAll('.infolayer .g-gtitle text').forEach(el => add('title', el));
  gd.querySelectorAll('.infolayer g.annotation').forEach(el => add('annotation', el));
  gd.querySelectorAll('.infolayer > g[class^="g-"][class$="title"]:not(.g-gtitle) text').forEach(el => add('axis-title', el));
  gd.querySelectorAll('.cartesianlayer .xaxislayer-above text, .cartesianlayer .yaxislayer-above text')
    .forEach(el => add('ticklabel', el));
  gd.querySelectorAll('.draglayer .nsewdrag').forEach(el => add('plot', el, 'plot'));
  gd.querySelectorAll('g.slider-container .slider-current-value').forEach(el => add('slider-value', el));
  gd.querySelectorAll('g.slider-container .slider-rail-rect').forEach(el => add('slider-rail', el, 'rail'));
  gd.querySelectorAll('g.slider-container .slider-label-group text')
    .forEach(el => { if (!transparent(el)) add('slider-label', el); });
  gd.querySelectorAll('g.updatemenu-container g.updatemenu-button').forEach(el => add('button', el));
  const fl = gd._fullLayout;
  const axes = Object.keys(fl).filter(k => /^[xy]axis\\d*$/.test(k)).map(k => ({
    key: k, type: fl[k].type, title: fl[k].title && fl[k].title.text, visible: fl[k].visible,
    ticks: (fl[k]._vals || []).filter(v => v.text).map(v => v.text)}));
  return {width: r.width, height: r.height, boxes, axes,
          scrollWidth: document.documentElement.scrollWidth, viewport: window.innerWidth,
          mode: gd.getAttribute('data-postlib-layout'),
          modebarVisible: !!Array.from(gd.querySelectorAll('.modebar-container'))
             .find(el => getComputedStyle(el).display !== 'none')};
}"""


ANIMATE = """async (frame) => {
  const gd = document.querySelector('#box .js-plotly-plot');
  await Plotly.animate(gd, [frame], {mode: 'immediate', frame: {duration: 0, redraw: true}, transition: {duration: 0}});
  await new Promise(r => setTimeout(r, 50));
  await PostlibFigures.update(gd);
}"""


def animate(page, frame: str) -> dict:
    """Step an animated figure to ``frame`` (what the slider does) and re-measure."""
    page.evaluate(ANIMATE, frame)
    return page.evaluate(MEASURE)


def open_page(page):
    page.set_content(HTML)
    page.add_script_tag(path=str(PLOTLY_JS))
    page.add_script_tag(path=str(FIGURES_JS))


def draw(page, fig: go.Figure, width: int) -> dict:
    """Draw ``fig`` at a viewport ``width`` px wide and return the measurements."""
    page.set_viewport_size({"width": width, "height": 900})
    spec = json.loads(fig.to_json())
    page.evaluate(DRAW, [spec, CONFIG])
    return page.evaluate(MEASURE)


def resize(page, width: int) -> dict:
    """Resize the viewport with the figure in place (what a rotating phone does) and re-measure."""
    page.set_viewport_size({"width": width, "height": 900})
    page.evaluate(RELAYOUT_DONE)
    return page.evaluate(MEASURE)
