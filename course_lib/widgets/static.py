"""A static picture of a widget as it stands, carried in its display data beside the live view.

A frontend with a widget manager draws the live widget. An exported notebook (nbconvert, nbviewer),
a renderer without a widget manager, or one whose widget manager fails shows this picture instead:
the widget's captions and readouts as HTML, and each of its plotly charts redrawn by matplotlib
from the chart's own data and layout (plotly itself needs its 3.5 MB script, or a browser, to make
an image). As with ipympl's figures, the picture is of the widget's state when it was displayed.
"""
from __future__ import annotations

import base64
import html
import io
import re
import textwrap

import ipywidgets as widgets

DPI = 100
PLOTLY_MARGIN = {"l": 80, "r": 80, "t": 100, "b": 80}  # plotly's defaults, in pixels
PLOTLY_COLORS = ["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692", "#B6E880"]


class StaticPicture:
    """Put first in a widget's bases: its display data gains a text/html picture of it."""

    def _ipython_display_(self, **kwargs):
        # ipywidgets 7 (Colab's) displays a widget itself, picture-less: this hands IPython back
        # to _repr_mimebundle_, as plotly's FigureWidget does.
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs):
        live = getattr(super(), "_repr_mimebundle_", None)
        if live is None:  # ipywidgets 7's boxes have none: the bundle it writes itself
            shown = {"text/plain": repr(self)[:110],
                     "application/vnd.jupyter.widget-view+json": {"version_major": 2, "version_minor": 0,
                                                                  "model_id": self._model_id}}
        else:
            shown = live(**kwargs)  # data, or (data, metadata) as anywidget returns it
        if shown is None:
            return None
        data, metadata = shown if isinstance(shown, tuple) else (shown, None)
        data = {**data, "text/html": picture(self)}
        return (data, metadata) if metadata is not None else data


class VBox(StaticPicture, widgets.VBox):
    """widgets.VBox with a static picture."""


class HBox(StaticPicture, widgets.HBox):
    """widgets.HBox with a static picture."""


def picture(widget) -> str:
    """HTML for `widget` as it stands: boxes laid out, text as written, readouts, charts as images."""
    from plotly.basedatatypes import BaseFigure

    own = getattr(widget, "static_html", None)
    if callable(own):
        return own()
    if isinstance(widget, BaseFigure):
        png = base64.b64encode(figure_png(widget)).decode()
        return f'<img style="max-width:100%" alt="{html.escape(title_of(widget))}" src="data:image/png;base64,{png}">'
    if isinstance(widget, (widgets.HTML, widgets.HTMLMath)):
        return widget.value
    if isinstance(widget, widgets.Label):
        return html.escape(widget.value)
    if isinstance(widget, widgets.Box):
        row = isinstance(widget, widgets.HBox)
        parts = [part for part in (picture(child) for child in widget.children) if part]
        style = "display:flex;gap:12px;align-items:center;flex-wrap:wrap" if row else ""
        return f'<div style="{style}">' + "".join(f"<div>{part}</div>" for part in parts) + "</div>"
    if isinstance(widget, widgets.Output):
        return "".join(output_html(o) for o in widget.outputs)
    if isinstance(widget, widgets.ValueWidget) and not isinstance(widget, widgets.Button):
        return f"<div><b>{html.escape(widget.description or '')}</b> {html.escape(readout(widget))}</div>"
    return ""  # buttons and invisible helpers have nothing to show


def chip(text: str, style: str, title: str = "") -> str:
    """One token as a chip, in a static picture: `text` escaped, `style` its own CSS (a background)."""
    tip = f' title="{html.escape(title)}"' if title else ""
    return (f'<span{tip} style="{style};border-radius:3px;padding:0 3px;margin:1px;display:inline-block;'
            f'font-family:monospace">{html.escape(text)}</span>')


def readout(widget) -> str:
    label = getattr(widget, "label", None)  # a dropdown's or a toggle's shown choice
    if isinstance(label, str):
        return label
    fmt = getattr(widget, "readout_format", None)
    try:
        return format(widget.value, fmt) if fmt else str(widget.value)
    except (TypeError, ValueError):  # a d3 format Python does not read
        return str(widget.value)


def output_html(output: dict) -> str:
    data = output.get("data", {})
    if "text/html" in data:
        return data["text/html"]
    text = output.get("text") or data.get("text/plain", "")
    return f"<pre>{html.escape(text)}</pre>" if text else ""


def title_of(fig) -> str:
    return plain(fig.layout.title.text or "a chart")


def plain(text) -> str:
    """plotly's text (a little HTML) as matplotlib's: line breaks kept, tags dropped, $ literal."""
    text = re.sub(r"<br\s*/?>", "\n", str(text or ""), flags=re.I)
    return html.unescape(re.sub(r"<[^>]+>", "", text)).replace("$", r"\$")


def color(value):
    """A plotly color as matplotlib takes it ('rgba(45, 164, 78, 0.2)' -> a 0..1 tuple)."""
    if isinstance(value, str) and value.startswith("rgb"):
        numbers = [float(n) for n in re.findall(r"[\d.]+", value)]
        return (*(n / 255 for n in numbers[:3]), numbers[3] if len(numbers) > 3 else 1.0)
    return value


def listed(values) -> list:
    """A trace's data as a list, whether plotly holds a tuple, a numpy array or nothing."""
    return [] if values is None else list(values)


def figure_png(fig) -> bytes:
    buffer = io.BytesIO()
    # tight: plotly widens its margins to fit ticks, labels and legend; this does the same
    redraw(fig).savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.1)
    return buffer.getvalue()


def redraw(fig):
    """A matplotlib Figure drawing `fig`'s bar, scatter and heatmap traces in its panels, with its
    titles, axis titles, annotations, lines and legend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    layout = fig.layout
    width, height = layout.width or 900, layout.height or 450
    margin = {side: layout.margin[side] if layout.margin[side] is not None else px
              for side, px in PLOTLY_MARGIN.items()}
    left, right = margin["l"] / width, 1 - margin["r"] / width
    bottom, top = margin["b"] / height, 1 - margin["t"] / height

    def paper(x, y):  # plotly's paper coordinates (0..1 over the plot area) -> the figure's
        return left + x * (right - left), bottom + y * (top - bottom)

    out = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(out)  # a renderer, to measure the panels' labels before placing the legend
    panels: dict[tuple[str, str], object] = {}

    def panel(x_name: str, y_name: str):
        if (x_name, y_name) not in panels:
            x_axis, y_axis = axis_of(layout, x_name), axis_of(layout, y_name)
            (x0, y0), (x1, y1) = paper((x_axis.domain or (0, 1))[0], (y_axis.domain or (0, 1))[0]), \
                paper((x_axis.domain or (0, 1))[1], (y_axis.domain or (0, 1))[1])
            ax = out.add_axes((x0, y0, x1 - x0, y1 - y0))
            ax.tick_params(labelsize=8)
            for axis, set_label, set_scale, set_lim in ((x_axis, ax.set_xlabel, ax.set_xscale, ax.set_xlim),
                                                        (y_axis, ax.set_ylabel, ax.set_yscale, ax.set_ylim)):
                set_label(plain(axis.title.text), fontsize=9)
                if axis.showticklabels is False:
                    ax.tick_params(axis="x" if axis is x_axis else "y", labelbottom=False, labelleft=False)
                log = axis.type == "log"
                if log:
                    set_scale("log")
                if axis.range is not None and None not in axis.range:
                    set_lim(*((10 ** r for r in axis.range) if log else axis.range))
            if y_axis.autorange == "reversed":
                ax.invert_yaxis()
            panels[(x_name, y_name)] = ax
        return panels[(x_name, y_name)]

    traces = [t for t in fig.data if t.type in ("bar", "scatter", "scattergl", "heatmap")]
    bars: dict[object, list] = {}
    for trace in traces:
        ax = panel(trace.xaxis or "x", trace.yaxis or "y")
        if trace.type == "bar":
            bars.setdefault(ax, []).append(trace)
    legend: dict[str, object] = {}
    for n, trace in enumerate(traces):
        ax = panel(trace.xaxis or "x", trace.yaxis or "y")
        fallback = PLOTLY_COLORS[n % len(PLOTLY_COLORS)]
        if trace.type == "heatmap":
            draw_heatmap(ax, trace)
            continue
        if trace.type == "bar":
            handle = draw_bars(ax, trace, bars[ax], layout.barmode, fallback)
        else:
            handle = draw_scatter(ax, trace, fallback)
        if handle is not None and trace.name and trace.showlegend is not False and len(traces) > 1:
            legend.setdefault(plain(trace.name), handle)

    for (x_name, y_name), ax in panels.items():  # ticks the layout names itself (labels at positions)
        for axis, set_ticks in ((axis_of(layout, x_name), ax.set_xticks),
                                (axis_of(layout, y_name), ax.set_yticks)):
            if axis.tickvals is not None and axis.ticktext is not None:
                set_ticks(listed(axis.tickvals), [plain(t) for t in axis.ticktext])
    for shape in layout.shapes:
        draw_shape(panels, shape, layout)
    for note in layout.annotations:
        draw_annotation(out, panels, layout, note, paper)
    if layout.title.text:
        out.text(0.5, 1 - 12 / height, plain(layout.title.text), ha="center", va="top", fontsize=11)
    if legend:
        out.legend(list(legend.values()), list(legend), fontsize=8, frameon=False,
                   **legend_place(out, panels, layout, paper, len(legend)))
    return out


def draw_annotation(out, panels, layout, note, paper) -> None:
    """A layout annotation: on the figure (paper coordinates) or in its panel, with plotly's arrow."""
    text = plain(note.text)
    align = {"ha": {"left": "left", "right": "right"}.get(note.xanchor, "center"),
             "va": {"top": "top", "middle": "center"}.get(note.yanchor, "bottom"),
             "fontsize": (note.font.size or 12) * 0.75}
    x_ref, y_ref = note.xref or "paper", note.yref or "paper"
    if x_ref == "paper" and y_ref == "paper":
        out.text(*paper(note.x or 0, note.y or 0), text, **align)
        return
    ax = panels.get((x_ref.split()[0], y_ref.split()[0]))
    if ax is None:
        return
    if "domain" in x_ref:
        ax.annotate(text, (note.x, note.y), xycoords=ax.transAxes, **align)
        return
    point = (data_value(layout, x_ref, note.x), data_value(layout, y_ref, note.y))
    align["color"] = color(note.font.color) or "#333"
    if note.showarrow is False:
        ax.annotate(text, point, **align)
    elif note.ayref and note.ayref != "pixel":  # the text's height given on the axis itself
        ax.annotate(text, point, xytext=(point[0], data_value(layout, note.ayref, note.ay)), textcoords="data",
                    arrowprops=arrow_of(note), **align)
    else:  # in pixels from the point: plotly's default is 30 px above, 10 px left
        offset = (-10 if note.ax is None else note.ax, 30 if note.ay is None else -note.ay)
        ax.annotate(text, point, xytext=offset, textcoords="offset pixels", arrowprops=arrow_of(note), **align)


def arrow_of(note) -> dict:
    return {"arrowstyle": "-", "color": color(note.arrowcolor) or "#444", "linewidth": 0.8}


def legend_place(out, panels, layout, paper, entries: int) -> dict:
    """matplotlib's legend arguments for plotly's legend: horizontal under the panels (below their
    labels), where the layout puts it, or plotly's default, beside the panels at the top."""
    place = layout.legend
    if place.orientation == "h":
        renderer = out.canvas.get_renderer()
        lowest = min(ax.get_tightbbox(renderer).y0 for ax in panels.values()) / (out.get_figheight() * out.dpi)
        return {"loc": "upper left", "bbox_to_anchor": (paper(0, 0)[0], lowest - 0.01), "ncol": min(entries, 4)}
    if place.x is not None and place.y is not None:
        vertical = {"top": "upper", "bottom": "lower", "middle": "center"}.get(place.yanchor, "upper")
        horizontal = {"center": "center", "right": "right"}.get(place.xanchor, "left")
        loc = "center" if (vertical, horizontal) == ("center", "center") else f"{vertical} {horizontal}"
        return {"loc": loc, "bbox_to_anchor": paper(place.x, place.y)}
    right, top = paper(1, 1)
    return {"loc": "upper left", "bbox_to_anchor": (right + 0.01, top)}


def axis_of(layout, name: str):
    """The layout's axis that a trace or a reference names: "x2" (or "x2 domain") -> layout.xaxis2."""
    name = name.split()[0]
    return layout[f"{name[0]}axis{name[1:]}"]


def data_value(layout, axis_name: str, value):
    """Where plotly's annotations and shapes put `value` on an axis: on a log axis it is the log10."""
    axis = axis_of(layout, axis_name)
    return 10 ** value if axis.type == "log" and isinstance(value, (int, float)) else value


def draw_scatter(ax, trace, fallback):
    y = listed(trace.y)
    if not y:
        return None
    x = listed(trace.x) or list(range(len(y)))
    mode = trace.mode or ("lines+markers" if len(y) < 20 else "lines")
    line_color = color(trace.line.color) or (color(trace.marker.color) if isinstance(trace.marker.color, str)
                                             else None) or fallback
    if trace.fill in ("toself", "tonexty", "tozeroy"):
        return ax.fill(x, y, color=color(trace.fillcolor) or line_color, alpha=None if trace.fillcolor else 0.25,
                       linewidth=0)[0]
    handle = None
    if "lines" in mode:
        dash = {"dash": "--", "dot": ":", "dashdot": "-."}.get(trace.line.dash, "-")
        (handle,) = ax.plot(x, y, color=line_color, linestyle=dash, linewidth=(trace.line.width or 2) * 0.75)
    if "markers" in mode:
        marker = trace.marker.color
        each = [color(c) for c in marker] if marker is not None and not isinstance(marker, str) else None
        size = trace.marker.size if isinstance(trace.marker.size, (int, float)) else 6
        handle = ax.scatter(x, y, s=(size * 0.9) ** 2, c=each, color=None if each else line_color, zorder=3)
    if "text" in mode and trace.text is not None:
        labels = [trace.text] * len(y) if isinstance(trace.text, str) else list(trace.text)
        for xi, yi, label in zip(x, y, labels):
            ax.annotate(plain(label), (xi, yi), fontsize=7, ha="center", va="bottom")
    draw_error_bars(ax, trace, x, y, line_color)
    return handle


def draw_bars(ax, trace, siblings, barmode, fallback):
    horizontal = trace.orientation == "h"
    values = listed(trace.x if horizontal else trace.y)
    places = listed(trace.y if horizontal else trace.x) or list(range(len(values)))
    if not values:
        return None
    categories = list(dict.fromkeys(p for t in siblings for p in listed(t.y if horizontal else t.x)))
    categorical = any(isinstance(p, str) for p in categories)
    slot, slots = siblings.index(trace), len(siblings) if barmode in (None, "group") else 1
    width = 0.8 / slots
    centre = [(categories.index(p) if categorical else p) + (slot - (slots - 1) / 2) * width for p in places]
    colors = trace.marker.color
    colors = [color(c) for c in colors] if colors is not None and not isinstance(colors, str) else \
        color(colors) or fallback
    draw = ax.barh if horizontal else ax.bar
    handle = draw(centre, values, width if categorical or slots > 1 else 0.8, color=colors)
    if categorical:
        (ax.set_yticks if horizontal else ax.set_xticks)(range(len(categories)))
        labels = [plain(c) for c in categories]
        if horizontal:
            ax.set_yticklabels(labels)
        else:  # on several lines where they would not fit side by side (about 6 px a character)
            fits = int(ax.get_position().width * ax.figure.get_figwidth() * DPI / len(labels) / 6)
            ax.set_xticklabels(["\n".join(textwrap.wrap(label, max(fits, 6))) or label for label in labels])
    if trace.text is not None and not isinstance(trace.text, str):
        ax.bar_label(handle, [plain(t) for t in trace.text], fontsize=7)
    draw_error_bars(ax, trace, centre, values, "#333", horizontal)
    return handle


def draw_error_bars(ax, trace, x, y, ecolor, horizontal=False):
    bars = trace.error_x if horizontal else trace.error_y
    if bars is None or bars.array is None or bars.visible is False:
        return
    plus = list(bars.array)
    minus = list(bars.arrayminus) if bars.arrayminus is not None and bars.symmetric is False else plus
    spread = [minus, plus]
    if horizontal:
        ax.errorbar(y, x, xerr=spread, fmt="none", ecolor=ecolor, capsize=3, linewidth=1)
    else:
        ax.errorbar(x, y, yerr=spread, fmt="none", ecolor=ecolor, capsize=3, linewidth=1)


def draw_heatmap(ax, trace):
    import numpy as np

    from matplotlib.colors import LinearSegmentedColormap

    z = np.array(trace.z, dtype=float)
    # plotly hands a named scale back as its stops; without one it uses plasma, as matplotlib has it
    cmap = LinearSegmentedColormap.from_list("plotly", [(stop, color(c)) for stop, c in trace.colorscale]) \
        if trace.colorscale else "plasma"
    ax.imshow(z, aspect="auto", cmap=cmap, origin="upper" if ax.yaxis_inverted() else "lower",
              vmin=trace.zmin, vmax=trace.zmax, interpolation="nearest")
    for labels, set_ticks, set_labels, size in ((trace.x, ax.set_xticks, ax.set_xticklabels, z.shape[1]),
                                                (trace.y, ax.set_yticks, ax.set_yticklabels, z.shape[0])):
        if labels is not None and len(labels) == size and size <= 40:
            set_ticks(range(size))
            set_labels([plain(label) for label in labels], fontsize=7)


def draw_shape(panels, shape, layout):
    x_name, y_name = (shape.xref or "x").split()[0], (shape.yref or "y").split()[0]
    ax = panels.get((x_name, y_name))
    if ax is None or shape.type not in ("line", "rect"):
        return
    style = {"color": color(shape.line.color) or "#555", "linewidth": 1,
             "linestyle": {"dash": "--", "dot": ":"}.get(shape.line.dash, "-")}
    x_domain, y_domain = "domain" in (shape.xref or ""), "domain" in (shape.yref or "")
    x0, x1 = (shape.x0, shape.x1) if x_domain else (data_value(layout, x_name, v) for v in (shape.x0, shape.x1))
    y0, y1 = (shape.y0, shape.y1) if y_domain else (data_value(layout, y_name, v) for v in (shape.y0, shape.y1))
    if shape.type == "line":
        if x_domain and y0 == y1:
            ax.axhline(y0, x0 or 0, 1 if x1 is None else x1, **style)
        elif y_domain and x0 == x1:
            ax.axvline(x0, y0 or 0, 1 if y1 is None else y1, **style)
        elif not x_domain and not y_domain:
            ax.plot([x0, x1], [y0, y1], **style)
    elif x_domain:
        ax.axhspan(y0, y1, alpha=0.15, color=color(shape.fillcolor) or "#888", linewidth=0)
    elif y_domain:
        ax.axvspan(x0, x1, alpha=0.15, color=color(shape.fillcolor) or "#888", linewidth=0)
