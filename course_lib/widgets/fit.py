"""Plotly charts inside widgets, at the width their output gives them.

plotly's FigureWidget draws at plotly's default 700 px when it is first rendered inside a widget box
(the box has no width yet), and only re-measures when the browser window is resized. Each widget
made here is responsive, and a FitWidth (an invisible element placed beside it) tells the page its
size has changed once the box is laid out, and again whenever the box's width changes (a sidebar
opened, a window resized), so every chart re-measures the width it has.
"""
from __future__ import annotations

import anywidget
import plotly.graph_objects as go

from course_lib.widgets.static import StaticPicture


class FigureWidget(StaticPicture, go.FigureWidget):
    """go.FigureWidget with a static picture of itself (course_lib.widgets.static)."""


def figure_widget(*args, **kwargs) -> go.FigureWidget:
    """go.FigureWidget(...), made to follow its container's width (show it beside a FitWidth)."""
    widget = FigureWidget(*args, **kwargs)
    widget._config = {**widget._config, "responsive": True}
    return widget


class FitWidth(anywidget.AnyWidget):
    """Zero-height; put it last in a box that holds a figure_widget."""

    _esm = """
    export default {
      render({ el }) {
        let timer = null;
        const nudge = () => {  // one resize event per burst of layout changes
          clearTimeout(timer);
          timer = setTimeout(() => window.dispatchEvent(new Event('resize')), 150);
        };
        let width = -1;
        const observer = new ResizeObserver(() => {
          const now = el.parentElement ? el.parentElement.getBoundingClientRect().width : 0;
          if (Math.abs(now - width) > 1) { width = now; nudge(); }
        });
        const start = () => { if (el.parentElement) observer.observe(el.parentElement); nudge(); };
        requestAnimationFrame(start);
        return () => { observer.disconnect(); clearTimeout(timer); };
      }
    };
    """
