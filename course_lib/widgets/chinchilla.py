"""ChinchillaExplorer: for a fixed compute budget, which model size gives the lowest loss?

Chinchilla's fitted law L(N, D) = E + A/N^alpha + B/D^beta (nats per token) and the training cost
C = 6·N·D: for a budget C every model size N fixes how many tokens D it can be trained on, and the
loss against N is a U. Too small a model cannot use the data; too big a one sees too few tokens.
A log slider sets C, a toggle picks one of the two published fits (the other stays in faint grey
for comparison), and the compute-optimal point is marked. Chinchilla and Gopher, trained with
almost the same compute, are drawn at their real size and loss.

The learner's `chinchilla_loss` and `compute_optimal` can be plugged in; if one is missing or
returns something wrong, the plot falls back to the course's reference and says so in the widget,
so a half-finished exercise never breaks the notebook.
"""
from __future__ import annotations

import html
import math
from typing import Callable

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from course_lib.exercises.pretraining import (
    CHINCHILLA_CONSTANTS,
    chinchilla_loss,
    compute_optimal,
    human,
    loss_law_problem,
    split_problem,
)
from course_lib.validation import as_number, is_number
from course_lib.widgets.fit import FitWidth, figure_widget
from course_lib.widgets.notice import INFO_COLOUR, WARNING_COLOUR, notice_html
from course_lib.widgets.static import VBox

MIN_EXPONENT, MAX_EXPONENT = 18, 26  # the budget slider spans 1e18 to 1e26 FLOPs
DEFAULT_BUDGET = 5.76e23  # Chinchilla's and Gopher's budget, as the paper gives it
DEFAULT_CONSTANTS = "Hoffmann et al. 2022"
# The model sizes of the U-curve: 10M to 10T parameters, 201 points (30 per decade, the decades exact).
N_GRID = np.logspace(7, 13, 201)
# Real models, (name, parameters, training tokens), drawn at their own N and loss.
MODELS = [("Chinchilla", 70e9, 1.4e12), ("Gopher", 280e9, 300e9)]
MODEL_COLOURS = {"Chinchilla": "#2e7d32", "Gopher": "#8e24aa"}
SELECTED_COLOUR = "#2f6fde"
OTHER_COLOUR = "#b0b0b0"
OPTIMUM_COLOUR = "#e65100"
Y_SPAN = 1.0  # nats shown above the curve's minimum: the bottom of the U, where the choice matters
# How far a learner's function may be from the law before the plot uses the reference instead: what
# is right is the exercise's to say (loss_law_problem, split_problem), how close is enough to draw it
# is the plot's (looser than the graded checks).
LOSS_RELATIVE_TOLERANCE = 1e-4  # float32 arithmetic is ~1e-7
BUDGET_RELATIVE_TOLERANCE = 1e-3  # 6·N·D against C
OPTIMUM_RELATIVE_TOLERANCE = 0.02  # N and D against the optimum's: the U is flat there (2% costs 2e-6 to 4e-5 nats)

NOT_IMPLEMENTED = "is not implemented yet"


def flops(x: float) -> str:
    """5.88e23 -> '5.9e23': two significant figures, the exponent without '+'."""
    exponent = math.floor(math.log10(x))
    mantissa = round(x / 10**exponent, 1)
    if mantissa >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa:.1f}e{exponent}"


def model_label(name: str, n: float, d: float) -> str:
    """'Chinchilla 70B / 1.4T tokens (5.9e23 FLOPs)'."""
    return f"{name} {human(n)} / {human(d)} tokens ({flops(6 * n * d)} FLOPs)"


def _checked_constants_name(name) -> str:
    if name not in CHINCHILLA_CONSTANTS:
        raise ValueError(f"unknown constant set {name!r}: choose one of {list(CHINCHILLA_CONSTANTS)}")
    return name


def _checked_budget(budget) -> float:
    low, high = 10.0**MIN_EXPONENT, 10.0**MAX_EXPONENT
    if not is_number(budget) or not low <= budget <= high:  # also refuses NaN, 0 and negative budgets
        raise ValueError(f"the compute budget must be a number of FLOPs from {low:.0e} to {high:.0e}, "
                         f"got {budget!r}")
    return float(budget)


class ChinchillaExplorer(VBox):
    """The U-curve of loss against model size N for a compute budget C, under a log slider for C.

    `loss_fn(N, D, constants)` and `optimal_fn(C, constants) -> (N, D)` are the learner's
    `chinchilla_loss` and `compute_optimal` (the course's reference by default); `loss_fn` is called
    with NumPy arrays, and one number at a time if arrays make it fail. `budget` is the slider's
    start (FLOPs); `constants_name` a key of CHINCHILLA_CONSTANTS.

    The figure's traces, in order: 0 the other constant set's curve (grey, for comparison), 1 the
    selected set's curve, 2 the compute-optimal point (its label is layout.annotations[0]),
    3 Chinchilla, 4 Gopher. The widget is itself the VBox to display; `.widget` returns it too.
    """

    def __init__(self, loss_fn: Callable | None = None, optimal_fn: Callable | None = None,
                 budget: float = DEFAULT_BUDGET, constants_name: str = DEFAULT_CONSTANTS):
        self.loss_fn = loss_fn or chinchilla_loss
        self.optimal_fn = optimal_fn or compute_optimal
        # A fine step: the browser snaps the value to the step's grid, and 5.76e23 must stay 5.76e23.
        self.slider = widgets.FloatLogSlider(
            value=_checked_budget(budget), base=10, min=MIN_EXPONENT, max=MAX_EXPONENT, step=0.0001,
            description="compute C (FLOPs)", readout_format=".2e", continuous_update=True,
            style={"description_width": "initial"}, layout=widgets.Layout(width="520px"),
        )
        self.toggle = widgets.ToggleButtons(
            options=list(CHINCHILLA_CONSTANTS), value=_checked_constants_name(constants_name),
            description="fitted constants", style={"description_width": "initial", "button_width": "170px"},
        )
        # The figure is built with its data: a FigureWidget in a VBox keeps only the last update made
        # before it is displayed, so the first state must not come from an update.
        state = self._state()
        traces = [
            go.Scatter(mode="lines", line=dict(color=OTHER_COLOUR, dash="dash", width=1.5), legendrank=2,
                       hovertemplate=self._curve_hover()),
            go.Scatter(mode="lines", line=dict(color=SELECTED_COLOUR, width=3), legendrank=1,
                       hovertemplate=self._curve_hover()),
            go.Scatter(mode="markers", name="compute-optimal", legendrank=3,
                       marker=dict(symbol="star", size=16, color=OPTIMUM_COLOUR, line=dict(color="white", width=1)),
                       hovertemplate="%{customdata}<extra>compute-optimal</extra>"),
        ]
        for rank, (name, _, _) in enumerate(MODELS, start=4):
            traces.append(go.Scatter(
                mode="markers+text", text=[name], textposition="bottom center", legendrank=rank,
                textfont=dict(color=MODEL_COLOURS[name], size=11),
                marker=dict(symbol="circle", size=11, color=MODEL_COLOURS[name], line=dict(color="white", width=1)),
                hovertemplate="%{customdata}<extra></extra>"))
        for trace, update in zip(traces, state["traces"]):
            trace.update(update)
        self.figure = figure_widget(
            traces,
            layout=go.Layout(
                height=480, margin=dict(l=10, r=10, t=50, b=10),
                xaxis=dict(type="log", title_text="model size N (parameters); D = C / (6N) tokens",
                           range=[math.log10(N_GRID[0]), math.log10(N_GRID[-1])]),
                yaxis=dict(title_text="loss L(N, D) (nats per token)"),
                legend=dict(orientation="h", yanchor="top", y=-0.15, x=0),
                annotations=[dict(xref="x", yref="y", showarrow=True, arrowhead=2, arrowcolor=OPTIMUM_COLOUR,
                                  ax=0, ayref="y", bgcolor="rgba(255,255,255,0.85)", bordercolor=OPTIMUM_COLOUR,
                                  font=dict(color=OPTIMUM_COLOUR, size=12), **state["annotation"])],
                **state["layout"],
            ),
        )
        self.summary = widgets.HTML(state["summary"])
        self.notice = widgets.HTML(state["notice"])
        self._message = state["message"]
        self._optimum = state["optimum"]
        self.caption = widgets.HTML(
            "Training costs C ≈ 6·N·D FLOPs, so for a fixed budget a bigger model sees fewer tokens. "
            "Chinchilla (70B parameters, 1.4T tokens) and Gopher (280B, 300B tokens) had almost the same "
            "compute; the smaller Chinchilla, trained on more tokens, reached the lower loss and beat Gopher. "
            "They lie on the curve only when the budget is near their own compute. Hoffmann et al.'s published "
            "constants give far more tokens per parameter than the ~20 that the paper's two other methods "
            "found; Epoch AI's 2024 refit of the same data points agrees with ~20."
        )
        super().__init__([self.slider, self.toggle, self.figure, self.summary, self.notice, self.caption, FitWidth()])
        self.slider.observe(lambda change: self._redraw(), names="value")
        self.toggle.observe(lambda change: self._redraw(), names="value")

    # The Python API -------------------------------------------------------------------------------
    @property
    def widget(self) -> widgets.VBox:
        """What to display (the explorer itself)."""
        return self

    @property
    def budget(self) -> float:
        """The compute budget C in FLOPs (the slider)."""
        return self.slider.value

    @budget.setter
    def budget(self, value: float):
        self.slider.value = _checked_budget(value)

    @property
    def constants_name(self) -> str:
        """The selected fit, a key of CHINCHILLA_CONSTANTS."""
        return self.toggle.value

    @constants_name.setter
    def constants_name(self, name: str):
        self.toggle.value = _checked_constants_name(name)

    @property
    def optimum(self) -> tuple[float, float, float]:
        """(N, D, loss) of the compute-optimal point, as marked."""
        return self._optimum

    @property
    def message(self) -> str:
        """The warning and info lines as plain text, one per line; "" when both functions work."""
        return self._message

    # Calling the learner's functions -------------------------------------------------------------
    def _losses(self, n: np.ndarray, d: np.ndarray, constants: dict) -> tuple[np.ndarray, str]:
        """loss_fn at every (n, d) and "", or the reference's losses and why loss_fn was not used."""
        expected = chinchilla_loss(n, d, constants)
        if self.loss_fn is chinchilla_loss:
            return expected, ""
        try:
            # Copies, so a function that edits its inputs cannot corrupt the grid or the constants.
            result = self.loss_fn(n.copy(), d.copy(), dict(constants))
        except NotImplementedError:
            return expected, NOT_IMPLEMENTED
        except Exception:  # perhaps written for one number at a time (math.pow, if N > ...): try that
            try:
                result = [self.loss_fn(float(a), float(b), dict(constants)) for a, b in zip(n, d)]
            except NotImplementedError:
                return expected, NOT_IMPLEMENTED
            except Exception as error:  # the learner's code: report it, keep the widget alive
                return expected, f"raised {type(error).__name__}: {error}"
        if isinstance(result, list):  # one call per point: each must be a number
            values = [as_number(value) for value in result]
            if None in values:
                return expected, f"returned a {type(result[values.index(None)]).__name__}, not a number"
            result = np.array(values)
        key, problem = loss_law_problem(result, n, d, constants, LOSS_RELATIVE_TOLERANCE)
        if key:
            return expected, problem
        return np.asarray(result, dtype=float).reshape(n.shape), ""

    def _optimal(self, budget: float, constants: dict) -> tuple[float, float, str]:
        """optimal_fn's (N, D) and "", or the reference's and why optimal_fn was not used."""
        n_best, d_best = compute_optimal(budget, constants)
        if self.optimal_fn is compute_optimal:
            return n_best, d_best, ""
        try:
            result = self.optimal_fn(budget, dict(constants))
        except NotImplementedError:
            return n_best, d_best, NOT_IMPLEMENTED
        except Exception as error:  # the learner's code: report it, keep the widget alive
            return n_best, d_best, f"raised {type(error).__name__}: {error}"
        key, problem = split_problem(result, budget, constants, BUDGET_RELATIVE_TOLERANCE,
                                     OPTIMUM_RELATIVE_TOLERANCE)
        if key:
            return n_best, d_best, problem
        n, d = result
        return float(n), float(d), ""

    def _notices(self, problems: dict[str, str]) -> tuple[str, str]:
        """(HTML lines, plain text lines) for each function that was not used."""
        lines, text = [], []
        fallbacks = {"loss": (self.loss_fn, "chinchilla_loss"), "optimal": (self.optimal_fn, "compute_optimal")}
        for key, problem in problems.items():
            if not problem:
                continue
            function, default = fallbacks[key]
            name = getattr(function, "__name__", default)
            if problem == NOT_IMPLEMENTED:
                message = f"Your {name} {problem}. The plot uses the course's reference {default} instead."
                colour = INFO_COLOUR
            else:
                message = f"⚠ Your {name} {problem}. The plot uses the course's reference {default} instead."
                colour = WARNING_COLOUR
            lines.append(notice_html(message, colour))
            text.append(message)
        return "".join(lines), "\n".join(text)

    # Drawing -------------------------------------------------------------------------------------
    @staticmethod
    def _curve_hover() -> str:
        return ("N = %{customdata[0]} parameters<br>D = %{customdata[1]} tokens "
                "(%{customdata[2]:.3g} per parameter)<br>loss %{y:.4f} nats/token<extra>%{fullData.name}</extra>")

    @staticmethod
    def _curve_customdata(n: np.ndarray, d: np.ndarray) -> list:
        return [[human(a), human(b), b / a] for a, b in zip(n, d)]

    def _state(self) -> dict:
        """Everything drawn for the current budget and constant set: trace updates, layout, texts."""
        budget, selected = self.budget, self.constants_name
        constants = CHINCHILLA_CONSTANTS[selected]
        other = next(name for name in CHINCHILLA_CONSTANTS if name != selected)
        d_grid = budget / (6 * N_GRID)

        n_opt, d_opt, optimal_problem = self._optimal(budget, constants)
        # One call for the curve, the optimum and the two models, so one problem is reported once.
        model_n = np.array([n for _, n, _ in MODELS])
        model_d = np.array([d for _, _, d in MODELS])
        n_all = np.concatenate([N_GRID, [n_opt], model_n])
        d_all = np.concatenate([d_grid, [d_opt], model_d])
        losses, loss_problem = self._losses(n_all, d_all, constants)
        curve, loss_opt, model_losses = losses[: len(N_GRID)], float(losses[len(N_GRID)]), losses[len(N_GRID) + 1:]
        other_curve, other_problem = self._losses(N_GRID, d_grid, CHINCHILLA_CONSTANTS[other])
        notice, message = self._notices({"loss": loss_problem or other_problem, "optimal": optimal_problem})

        traces = [
            dict(x=N_GRID, y=other_curve, name=html.escape(f"{other} (for comparison)", quote=False),
                 customdata=self._curve_customdata(N_GRID, d_grid)),
            dict(x=N_GRID, y=curve, name=html.escape(f"{selected}: loss at C = {flops(budget)} FLOPs", quote=False),
                 customdata=self._curve_customdata(N_GRID, d_grid)),
            dict(x=[n_opt], y=[loss_opt],
                 customdata=[f"N = {human(n_opt)} parameters, D = {human(d_opt)} tokens, loss {loss_opt:.4f}"]),
        ]
        for (name, n, d), loss in zip(MODELS, model_losses):
            label = model_label(name, n, d)
            traces.append(dict(x=[n], y=[float(loss)], name=label,
                               customdata=[f"{label}<br>loss {loss:.4f} nats/token ({selected})"]))
        # The bottom of the U and the two models; the walls of the U rise far above and leave the plot.
        low = min(float(curve.min()), float(model_losses.min()))
        high = max(float(curve.min()) + Y_SPAN, float(model_losses.max()) + 0.1)
        pad = 0.12 * (high - low)
        layout = dict(
            title_text=f"Loss against model size N for a budget of C = {flops(budget)} FLOPs",
            yaxis_range=[low - pad, high],
        )
        # The label near the top of the plot, straight above the optimum: the U is low and flat there,
        # and Chinchilla and Gopher, near the bottom, stay clear of it.
        annotation = dict(x=math.log10(n_opt), y=loss_opt,  # annotations on a log axis take log10(x)
                          ay=high - 0.08 * (high - low + pad),
                          text=f"optimum: {human(n_opt)} params, {human(d_opt)} tokens")
        summary = (
            f"<b>Compute-optimal at C = {flops(budget)} FLOPs</b> ({html.escape(selected, quote=False)}): "
            f"N = <b>{human(n_opt)}</b> parameters, D = <b>{human(d_opt)}</b> tokens, "
            f"<b>{d_opt / n_opt:.1f}</b> tokens per parameter, loss <b>{loss_opt:.3f}</b> nats/token"
        )
        return dict(traces=traces, layout=layout, annotation=annotation, summary=summary, notice=notice,
                    message=message, optimum=(n_opt, d_opt, loss_opt))

    def _redraw(self):
        state = self._state()
        with self.figure.batch_update():
            for trace, update in zip(self.figure.data, state["traces"]):
                trace.update(update)
            self.figure.layout.update(state["layout"])
            self.figure.layout.annotations[0].update(state["annotation"])
        self.summary.value = state["summary"]
        self.notice.value = state["notice"]
        self._message = state["message"]
        self._optimum = state["optimum"]
