"""The course in a real browser: JupyterLab on 127.0.0.1, driven by headless Chromium.

Every student notebook, untouched as handed out, gets Run All: it reaches its last cell with one
"not done yet" panel per exercise and no traceback (the course's answers stand in, visibly). In the
on-ramp the widgets must really render (token chips, the attention heatmap, the temperature chart),
the temperature slider moved with the keyboard must move the bar chart, a hint must open and a
glossary link must open its entry. Notebooks A and C also have their widgets driven and their plotly
figures checked.

Needs Debian's Chromium (`apt-get install chromium chromium-driver`; CI installs it) and the
Playwright Python package, which is only used to drive that Chromium: no browser is downloaded.
Without them the test is skipped, unless COURSE_REQUIRE_BROWSER=1 (as in CI) makes that a failure.
COURSE_CHROMIUM=/path/to/chromium picks another Chromium or Chrome binary.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from course_lib.widgets import advantage

REPO = Path(__file__).resolve().parent.parent
# The student notebooks are served as the course lays them out (notebooks/NAME/NAME.ipynb, the glossary
# at the root), so that their relative links resolve as they do for a learner.
STUDENT = "notebooks/{0}/{0}.ipynb"
INSTALL_HINT = "install Debian's chromium: apt-get install chromium chromium-driver"

SERVER_START_S = 90  # JupyterLab answering its REST API
PAGE_READY_S = 120  # the notebook open and its kernel idle
RUN_ALL_S = 360  # every cell run; loads the 135M model (a cold cache adds ~20 s)
RENDER_S = 60  # widget views drawn after their cells finished
CHART_UPDATE_S = 30  # kernel redraws and plotly re-renders after a slider move

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def unavailable(reason: str):
    """Skip, or fail where COURSE_REQUIRE_BROWSER=1 says the browser test must run."""
    if os.environ.get("COURSE_REQUIRE_BROWSER", "").strip() == "1":
        pytest.fail(f"{reason} (COURSE_REQUIRE_BROWSER=1, so this is a failure, not a skip)")
    pytest.skip(reason)


def find_chromium() -> str | None:
    override = os.environ.get("COURSE_CHROMIUM", "").strip()
    if override:
        path = shutil.which(override)
        return path if path else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        where = os.environ.get("COURSE_CHROMIUM", "").strip()
        found = f"COURSE_CHROMIUM={where} is not an executable" if where else "no chromium on PATH"
        unavailable(f"browser test needs Chromium ({found}); {INSTALL_HINT}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("browser test needs the playwright Python package: pip install -e '.[test]' "
                    "(no `playwright install` needed: it drives the system's chromium)")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(path: Path, chars: int = 6000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError as error:
        return f"(no server log: {error})"


class Lab:
    def __init__(self, root: Path, port: int, token: str, log: Path):
        self.root, self.port, self.token, self.log = root, port, token, log
        self.base = f"http://127.0.0.1:{port}"

    def url(self, path: str) -> str:
        return f"{self.base}{path}?token={self.token}"


@pytest.fixture
def lab(tmp_path, chromium_path):
    """A JupyterLab serving a copy of the student notebooks and the glossary from tmp_path, laid out as
    in the course, with its own config and runtime dirs."""
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    shutil.copy(REPO / "GLOSSARY.md", root / "GLOSSARY.md")
    home = tmp_path / "jupyter"
    dirs = {name: home / name for name in ("runtime", "config", "data", "settings", "workspaces", "ipython")}
    for path in dirs.values():
        path.mkdir(parents=True)
    # No "Would you like to get notified about official Jupyter news?" toast over the notebook.
    notification = dirs["settings"] / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    notification /= "notification.jupyterlab-settings"
    notification.write_text(json.dumps({"fetchNews": "false"}))
    env = dict(
        os.environ,
        COURSE_FAST="1",
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),
        JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
        JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
        IPYTHONDIR=str(dirs["ipython"]),
    )
    port, token = free_port(), secrets.token_hex(16)
    log = tmp_path / "jupyterlab.log"
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.allow_root=True",
        # window.jupyterapp: the test runs cells through JupyterLab's (and Notebook 7's) own commands.
        "--LabApp.expose_app_in_browser=True", "--JupyterNotebookApp.expose_app_in_browser=True",
    ]
    with open(log, "wb") as log_file:
        server = subprocess.Popen(command, cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    server_lab = Lab(root, port, token, log)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {server.returncode} before answering; "
                            f"its log ({log}):\n{log_tail(log)}")
            try:
                with urllib.request.urlopen(server_lab.url("/api/status"), timeout=5):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on port {port} within {SERVER_START_S} s; "
                                f"its log ({log}):\n{log_tail(log)}")
                time.sleep(0.5)
        yield server_lab
    finally:
        stop_server(server_lab, server)


def stop_server(lab: Lab, server: subprocess.Popen):
    """Ask JupyterLab to shut down (it stops its kernels), then terminate, then kill."""
    if server.poll() is None:
        try:
            request = urllib.request.Request(lab.url("/api/shutdown"), method="POST", data=b"")
            urllib.request.urlopen(request, timeout=10).close()
            server.wait(timeout=20)
        except (urllib.error.URLError, OSError, subprocess.TimeoutExpired):
            pass
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        if server.poll() is not None:
            break
        try:
            os.killpg(server.pid, sig)  # its own session: catches anything it started in it
        except ProcessLookupError:
            break
        try:
            server.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass


# ---- JavaScript run in the page (window.jupyterapp is JupyterLab's application object) ----

NOTEBOOK_READY_JS = """(name) => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.sessionContext || !panel.context || !panel.context.isReady) return false;
  if (panel.context.path !== name) return false;  // a tab restored from before is not the one asked for
  if (!panel.sessionContext.isReady || !panel.content.isVisible) return false;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle' && kernel.connectionStatus === 'connected';
}"""  # a plain function: wait_for_function would take an async one's Promise as already true

# Starts Run All Cells without waiting for it; its result (false if a cell failed) lands in a global.
RUN_ALL_JS = """() => {
  window.__courseRunAll = null;
  window.jupyterapp.commands.execute('notebook:run-all-cells').then(
    (ok) => { window.__courseRunAll = {ok: ok}; },
    (error) => { window.__courseRunAll = {error: String(error)}; });
}"""

RUN_ALL_DONE_JS = """() => {
  if (!window.__courseRunAll) return false;
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  return kernel.status === 'idle';
}"""

# Per code cell: execution count and any error output, read from the notebook model.
CELL_STATES_JS = """() => {
  const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
  const states = [];
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== 'code') continue;
    const outputs = cell.outputs.toJSON();
    const errors = outputs.filter((o) => o.output_type === 'error')
      .map((o) => `${o.ename}: ${o.evalue}`);
    const source = cell.sharedModel.getSource();
    states.push({index: i, count: cell.executionCount, errors: errors, source: source.slice(0, 80)});
  }
  return states;
}"""

# The temperature chart as drawn: bar labels, bar widths in pixels, the token tick labels.
CHART_STATE_JS = """(plot) => ({
  texts: Array.from(plot.querySelectorAll('.trace.bars .point text, .trace.bars text.bartext'))
    .map((t) => t.textContent),
  widths: Array.from(plot.querySelectorAll('.trace.bars .point path'))
    .map((p) => Math.round(p.getBBox().width * 10) / 10),
  ticks: Array.from(plot.querySelectorAll('.ytick text')).map((t) => t.textContent),
})"""


def move_temperature(page, slider, plot, key: str, expected_readout: str, old_top: str) -> dict:
    """Press key on the temperature slider; once its readout says expected_readout and the top bar's
    label has changed from old_top, the chart as drawn (CHART_STATE_JS)."""
    from playwright.sync_api import expect

    slider.locator(".noUi-handle").press(key)
    expect(slider.locator(".widget-readout")).to_have_text(expected_readout)
    page.wait_for_function(
        "([plot, old]) => { const top = plot.querySelector("
        "'.trace.bars .point text, .trace.bars text.bartext'); return top && top.textContent !== old; }",
        arg=[plot.element_handle(), old_top], timeout=CHART_UPDATE_S * 1000)
    return plot.evaluate(CHART_STATE_JS)


def percent(text: str) -> float:
    match = re.fullmatch(r"\s*([0-9.]+)%\s*", text)
    assert match, f"bar label {text!r} is not a percentage"
    return float(match.group(1))


@contextmanager
def browser_page(chromium_path: str, lab: Lab, tmp_path: Path):
    """A page in headless Chromium; if the test fails, a screenshot and the browser's errors are printed."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    problems: list[str] = []  # browser-side errors, reported with any failure
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=chromium_path, headless=True,
                # --no-sandbox: Chromium refuses to start as root (CI) with its sandbox on.
                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            )
        except PlaywrightError as error:
            pytest.fail(f"{chromium_path} is installed but Playwright could not start it: {error}")
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on("console", lambda message: message.type == "error"
                and problems.append(f"console error: {message.text}"))
        try:
            yield page
        except BaseException:
            shot = tmp_path / "failure.png"
            try:
                page.screenshot(path=str(shot))
                print(f"\nscreenshot of the failure: {shot}")
            except PlaywrightError as error:
                print(f"\n(no screenshot: {error})")
            print(f"JupyterLab log: {lab.log}")
            if problems:
                print("browser errors:\n  " + "\n  ".join(problems[:20]))
            raise
        finally:
            browser.close()
    if problems:  # not failures by themselves (JupyterLab logs some), but worth seeing with -rA
        print("browser errors seen (the test passed anyway):\n  " + "\n  ".join(problems[:20]))


def test_onramp_runs_and_temperature_slider_moves_the_chart(lab, chromium_path, tmp_path):
    with browser_page(chromium_path, lab, tmp_path) as page:
        panels = run_all_untouched(page, lab, "00_onramp")  # the course's answers stand in, visibly
        drive_the_onramp(page, lab, tmp_path)
        check_panels_hints_and_glossary(page, panels, tmp_path)


def check_panels_hints_and_glossary(page, panels, tmp_path: Path):
    """After Run All on the untouched on-ramp: a panel names its hint, the hint opens (the next stays
    folded), and a glossary link opens its entry."""
    from playwright.sync_api import expect

    softmax_panel = panels.filter(has_text="softmax_with_temperature").first
    softmax_panel.scroll_into_view_if_needed()
    expect(softmax_panel).to_contain_text("hint 1 above the exercise")
    page.screenshot(path=str(tmp_path / "student_panel.png"))
    shown = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    hints = shown.locator(".jp-MarkdownCell", has_text="Stuck on softmax_with_temperature?")
    details = hints.locator("details")
    expect(details).to_have_count(3)
    expect(details.nth(1)).not_to_have_attribute("open", "")
    details.first.locator("summary").click()
    expect(details.first).to_have_attribute("open", "")
    expect(details.first).to_contain_text("dim=-1")
    expect(details.nth(1)).not_to_have_attribute("open", "")  # the next hint stays folded
    hints.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "student_hint.png"))
    check_glossary_link(page, tmp_path)


def run_all_untouched(page, lab: Lab, name: str):
    """Run All on an untouched student notebook: no cell raises, every cell runs, and each graded
    exercise shows one "not done yet" panel. Returns the panels' locator."""
    from playwright.sync_api import expect

    from autograder.generate import checked_exercise

    cells = json.loads((REPO / STUDENT.format(name)).read_text())["cells"]
    exercises = {checked_exercise("".join(c["source"])) for c in cells
                 if c.get("metadata", {}).get("nbgrader", {}).get("grade")} - {None}
    open_and_run_all(page, lab, STUDENT.format(name))
    problems = check_layout(page)
    assert not problems, f"{name}: layout problems in the outputs:\n" + "\n".join(problems)
    panels = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output",
                          has_text=re.compile(r"is not done yet"))
    expect(panels).to_have_count(len(exercises))
    for exercise in sorted(exercises):
        expect(panels.filter(has_text=f"{exercise} is not done yet")).to_have_count(1)
    return panels


# Layout problems in the rendered outputs of cells first to last - 1: an output wider than its cell;
# a bordered box whose text spills out of it; in a plotly chart, two labels (title, panel titles,
# axis titles, legend entries) that intersect, a label across a tick label or outside the chart; a
# chart of no fixed width that fills less than 90% of an output it has to itself.
LAYOUT_PROBLEMS_JS = """([first, last]) => {
  const problems = [];
  const meets = (a, b) => a.width > 0 && b.width > 0 && a.left < b.right - 1 && b.left < a.right - 1
    && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  const labelled = (nodes) => Array.from(nodes).map((t) => ({text: t.textContent.trim(), box: t.getBoundingClientRect()}))
    .filter((l) => l.text);
  window.jupyterapp.shell.currentWidget.content.widgets.slice(first, last).forEach((cell) => {
    if (cell.model.type !== 'code' || !cell.node.querySelector('.jp-OutputArea-output')) return;
    const where = `cell ${cell.model.id}`;
    cell.node.querySelectorAll('.jp-OutputArea-output').forEach((output) => {
      if (output.scrollWidth > output.clientWidth + 2)
        problems.push(`${where}: output ${output.scrollWidth} px wide in ${output.clientWidth} px`);
      output.querySelectorAll('div[style*="border"]').forEach((box) => {
        if (box.scrollWidth > box.clientWidth + 2 || box.scrollHeight > box.clientHeight + 2)
          problems.push(`${where}: text spills out of a box: ${box.textContent.slice(0, 60)}`);
      });
      const plots = output.querySelectorAll('.js-plotly-plot');
      plots.forEach((plot) => {
        const svg = plot.querySelector('.main-svg');
        if (!svg) return;
        const frame = svg.getBoundingClientRect();
        if (plots.length === 1 && !(plot.layout && plot.layout.width) && frame.width < 0.9 * output.clientWidth)
          problems.push(`${where}: a chart ${Math.round(frame.width)} px wide in ${output.clientWidth} px`);
        const labels = labelled(plot.querySelectorAll('.gtitle, .annotation-text, .legendtext, text[class$="title"]'));
        const ticks = labelled(plot.querySelectorAll('.xtick text, .ytick text, [class*="tick"] text'));
        labels.forEach((label, i) => {
          labels.slice(i + 1).forEach((other) => {
            if (meets(label.box, other.box)) problems.push(`${where}: '${label.text}' overlaps '${other.text}'`);
          });
          ticks.forEach((tick) => {
            if (meets(label.box, tick.box)) problems.push(`${where}: '${label.text}' overlaps the tick '${tick.text}'`);
          });
          if (label.box.left < frame.left - 1 || label.box.right > frame.right + 1)
            problems.push(`${where}: '${label.text}' is cut off at the chart's edge`);
        });
      });
    });
  });
  return problems;
}"""


NEXT_FRAME_JS = "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"


def check_layout(page) -> list[str]:
    """Scrolls through the open notebook (JupyterLab lays out only the cells near the view) and
    returns its layout problems, each group of four cells checked once it is at the top of the view.
    A group is checked two frames after the scroll; one that shows a problem is checked again after
    the charts have had time to fit their new width, and only what is still wrong counts."""
    count = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets.length")
    problems: list[str] = []
    for index in range(0, count, 4):
        page.evaluate(f"() => window.jupyterapp.shell.currentWidget.content.scrollToItem({index}, 'start')")
        page.evaluate(NEXT_FRAME_JS)
        found = page.evaluate(LAYOUT_PROBLEMS_JS, [index, index + 4])
        if found:
            page.wait_for_timeout(500)
            found = page.evaluate(LAYOUT_PROBLEMS_JS, [index, index + 4])
        problems += [p for p in found if p not in problems]
    return problems


def check_glossary_link(page, tmp_path: Path):
    """A glossary link in the notebook's first cell opens GLOSSARY.md in JupyterLab, its entry in view."""
    # The first cell may be out of the DOM after Run All (JupyterLab renders the cells near the view).
    page.evaluate("() => { const notebook = window.jupyterapp.shell.currentWidget.content;"
                  " notebook.activeCellIndex = 0; return notebook.scrollToItem(0, 'start'); }")
    shown = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    link = shown.locator(".jp-MarkdownOutput a[href*='GLOSSARY.md']").first  # JupyterLab resolves the href
    anchor = link.get_attribute("href").split("#", 1)[1]
    link.click()
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.context"
                           " && window.jupyterapp.shell.currentWidget.context.path === 'GLOSSARY.md'",
                           timeout=RENDER_S * 1000)
    # The entry's heading, by the anchor the notebook links (GitHub's form: lower case, - for spaces).
    entry_in_view = """(anchor) => {
      const view = window.jupyterapp.shell.currentWidget.node;
      const heading = Array.from(view.querySelectorAll('h3')).find((h) =>
        h.textContent.replace('¶', '').trim().toLowerCase().replace(/ /g, '-') === anchor);
      if (!heading) return null;
      const box = heading.getBoundingClientRect(), frame = view.getBoundingClientRect();
      return box.top >= frame.top && box.bottom <= frame.bottom;
    }"""
    page.wait_for_function(entry_in_view, arg=anchor, timeout=RENDER_S * 1000)
    page.screenshot(path=str(tmp_path / "glossary.png"))


def open_and_run_all(page, lab: Lab, notebook_name: str, app: str = "/lab/tree/"):
    """Open a notebook of the server's root in JupyterLab (or, with app="/notebooks/", Notebook 7),
    run all its cells and check that none failed."""
    page.set_default_timeout(30_000)
    page.goto(lab.url(f"{app}{notebook_name}"), wait_until="domcontentloaded")
    page.wait_for_function(NOTEBOOK_READY_JS, arg=notebook_name, timeout=PAGE_READY_S * 1000, polling=500)

    started = time.monotonic()
    page.evaluate(RUN_ALL_JS)
    page.wait_for_function(RUN_ALL_DONE_JS, timeout=RUN_ALL_S * 1000, polling=1000)
    print(f"\nRun All Cells took {time.monotonic() - started:.0f} s")

    # Every code cell ran, without an error.
    result = page.evaluate("() => window.__courseRunAll")
    cells = page.evaluate(CELL_STATES_JS)
    failed = [f"cell {c['index']} ({c['source']!r}): {'; '.join(c['errors'])}"
              for c in cells if c["errors"]]
    assert not failed, "cells raised errors in the browser:\n" + "\n".join(failed)
    not_run = [f"cell {c['index']} ({c['source']!r})" for c in cells if c["count"] is None]
    assert not not_run, "Run All Cells left cells unexecuted:\n" + "\n".join(not_run)
    assert result == {"ok": True}, f"Run All Cells reported {result}"
    shown_error = re.compile(r"Traceback|Error displaying widget|Failed to (load|render)")
    tracebacks = page.locator(".jp-OutputArea-output", has_text=shown_error)
    assert tracebacks.count() == 0, "an output shows an error:\n" + tracebacks.first.text_content()[:2000]


def drive_the_onramp(page, lab: Lab, tmp_path: Path):
    from playwright.sync_api import expect


    # TokenizerBox: both rows of coloured chips (SmolLM2 and raw bytes).
    expect(page.locator(".tokbox-name")).to_have_text(["SmolLM2", "raw bytes"], timeout=RENDER_S * 1000)
    chip_rows = page.locator(".tokbox-chips")
    smol_chips = chip_rows.nth(0).locator(".tokbox-chip")
    byte_chips = chip_rows.nth(1).locator(".tokbox-chip")
    prompt = "How many r's are in strawberry?"
    expect(byte_chips, "one raw-bytes chip per byte of the prompt").to_have_count(len(prompt.encode("utf-8")))
    assert 1 < smol_chips.count() < len(prompt), f"{smol_chips.count()} SmolLM2 chips for {prompt!r}"
    backgrounds = set(smol_chips.evaluate_all("chips => chips.map(c => getComputedStyle(c).backgroundColor)"))
    assert len(backgrounds) > 1, f"token chips are not coloured apart: {backgrounds}"
    chip_rows.first.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "tokens.png"))

    # The attention heatmap and the temperature chart are drawn by plotly.
    heatmap = page.locator(".js-plotly-plot").filter(has=page.locator(".heatmaplayer .hm image"))
    expect(heatmap, "the attention heatmap did not render").to_have_count(1, timeout=RENDER_S * 1000)
    heatmap.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "attention.png"))

    # The temperature explorer: its slider, chart and stats line live in one VBox.
    explorer = page.locator(".widget-vbox").filter(
        has=page.locator(".widget-label", has_text=re.compile(r"^temperature$"))).last
    slider = explorer.locator(".widget-slider").filter(
        has=page.locator(".widget-label", has_text=re.compile(r"^temperature$")))
    readout = slider.locator(".widget-readout")
    plot = explorer.locator(".js-plotly-plot")
    explorer.scroll_into_view_if_needed()
    page.wait_for_function("(plot) => plot.querySelectorAll('.trace.bars .point path').length > 0",
                           arg=plot.element_handle(), timeout=RENDER_S * 1000)
    expect(readout).to_have_text("1.00")
    before = plot.evaluate(CHART_STATE_JS)
    # 12 token bars, then one grey bar for all the other tokens together
    assert len(before["texts"]) == len(before["widths"]) == 13, f"temperature chart: {before}"
    assert before["ticks"][-1].startswith("all other"), f"temperature chart: {before}"
    top_before = percent(before["texts"][0])
    assert 0 < top_before < 100

    # Coldest (Home): the top token takes almost everything, and its bar grows.
    cold = move_temperature(page, slider, plot, "Home", "0.05", before["texts"][0])
    assert percent(cold["texts"][0]) > top_before, \
        f"T=0.05 top bar {cold['texts'][0]} vs T=1 {before['texts'][0]}"
    assert cold["widths"][0] > before["widths"][0], "the top bar did not grow when the temperature fell"
    assert cold["ticks"][0] == before["ticks"][0], "the most likely token changed with the temperature"
    # The stats line is a separate widget, synced just after the chart.
    expect(explorer.locator(".widget-html").first).to_contain_text(f"top token: {cold['texts'][0]}")
    page.screenshot(path=str(tmp_path / "cold.png"))

    # Hottest (End): the distribution flattens, the top bar shrinks below where it started.
    hot = move_temperature(page, slider, plot, "End", "3.00", cold["texts"][0])
    assert percent(hot["texts"][0]) < top_before, \
        f"T=3 top bar {hot['texts'][0]} vs T=1 {before['texts'][0]}"
    assert hot["widths"][0] < before["widths"][0], "the top bar did not shrink when the temperature rose"
    assert hot["widths"][-1] > before["widths"][-1], "the bar of all other tokens did not grow when hot"
    shot = tmp_path / "after_slider.png"
    page.screenshot(path=str(shot))
    print(f"temperature 1.00 -> 0.05 -> 3.00: top bar {before['texts'][0]} -> {cold['texts'][0]} -> "
          f"{hot['texts'][0]}; screenshot {shot}")


# ---- AttentionHover in the browser ----

HOVER_NOTEBOOK = "every_widget.ipynb"
TOKBOX_PROMPT = "How many r's are in strawberry?"
HOVER_SENTENCE = "The cat sat on the mat because it was tired."

# Every chip of the widget as drawn: its shade (--ah-strength, 0..1), background and classes.
CHIP_STATES_JS = """(widget) => Array.from(widget.querySelectorAll('.ah-chip')).map((chip) => ({
  strength: chip.style.getPropertyValue('--ah-strength'),
  background: getComputedStyle(chip).backgroundColor,
  future: chip.classList.contains('ah-future'),
  focus: chip.classList.contains('ah-focus'),
  locked: chip.classList.contains('ah-locked'),
  title: chip.title,
}))"""

# Runs code in the notebook's kernel, outside any cell, and returns what it printed.
KERNEL_PRINT_JS = """async (code) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  let printed = '';
  const future = kernel.requestExecute({code: code, store_history: false});
  future.onIOPub = (message) => {
    if (message.header.msg_type === 'stream') printed += message.content.text;
  };
  await future.done;
  return printed;
}"""


def assert_attention_from(chips: list[dict], focus: int, looker: str):
    """The chip at `focus` outlined, every chip up to it shaded (the most attended in full colour), the
    chips after it greyed and unshaded."""
    earlier, later = chips[: focus + 1], chips[focus + 1:]
    assert [chip["focus"] for chip in chips] == [i == focus for i in range(len(chips))]
    assert all(chip["strength"] for chip in earlier), f"earlier chips without a shade: {earlier}"
    strongest = max(earlier, key=lambda chip: float(chip["strength"]))
    assert float(strongest["strength"]) == 1
    assert strongest["background"] != later[0]["background"], "the shade is not drawn"
    assert all(f"weight from {looker}: " in chip["title"] for chip in earlier)
    assert all(chip["future"] and not chip["strength"] for chip in later), f"later chips: {later}"
    assert not any(chip["future"] for chip in earlier)


def test_every_kind_of_widget_works_in_notebook_7(lab, chromium_path, tmp_path):
    """In Notebook 7 (JupyterLab has the same widgets in the on-ramp and A): AttentionHover on the real
    SmolLM2 (anywidget, hover): hovering " it" shades the tokens up to it and greys those after it,
    drawn in the browser alone; a click locks it, and the lock and head reach the kernel. TokenizerBox
    (anywidget chips) draws a chip per byte; the TemperatureExplorer's slider (ipywidgets) redraws its
    plotly FigureWidget; no output has a layout problem."""
    import nbformat
    from playwright.sync_api import expect

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in (
        "from course_lib.models.smollm import load_smollm2\n"
        "from course_lib.widgets import AttentionHover, TemperatureExplorer, TokenizerBox, bytes_tokenizer\n"
        "smol = load_smollm2(device='cpu')\n"
        f"hover = AttentionHover(smol, text={HOVER_SENTENCE!r})\n"
        "hover",
        f"TokenizerBox({{'SmolLM2': smol.tokenize, 'raw bytes': bytes_tokenizer}}, text={TOKBOX_PROMPT!r})",
        "TemperatureExplorer(smol.logits(smol.encode('The capital of France is')), smol.token_label)")])
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(notebook, lab.root / HOVER_NOTEBOOK)

    with browser_page(chromium_path, lab, tmp_path) as page:
        open_and_run_all(page, lab, HOVER_NOTEBOOK, app="/notebooks/")
        byte_chips = page.locator(".tokbox-chips").nth(1).locator(".tokbox-chip")
        expect(byte_chips).to_have_count(len(TOKBOX_PROMPT.encode("utf-8")), timeout=RENDER_S * 1000)
        slider = page.locator(".widget-slider").filter(
            has=page.locator(".widget-label", has_text=re.compile(r"^temperature$")))
        plot = page.locator(".js-plotly-plot").last
        slider.scroll_into_view_if_needed()
        page.wait_for_function("(plot) => plot.querySelectorAll('.trace.bars .point path').length > 0",
                               arg=plot.element_handle(), timeout=RENDER_S * 1000)
        before = plot.evaluate(CHART_STATE_JS)
        hot = move_temperature(page, slider, plot, "End", "3.00", before["texts"][0])
        assert percent(hot["texts"][0]) < percent(before["texts"][0])
        page.screenshot(path=str(tmp_path / "notebook7_widgets.png"))
        problems = check_layout(page)
        assert not problems, "layout problems in Notebook 7:\n" + "\n".join(problems)
        widget = page.locator(".ah")
        chips = widget.locator(".ah-chip")
        readout = widget.locator(".ah-readout")
        expect(chips).to_have_count(11, timeout=RENDER_S * 1000)
        labels = chips.all_text_contents()
        it = labels.index("␣it")
        looker = "“␣it”"

        chips.nth(it).hover()
        expect(readout).to_contain_text(f"{looker} (layer 0, average of 9 heads) looks most at: “")
        assert_attention_from(widget.evaluate(CHIP_STATES_JS), it, looker)
        named = re.findall(r"“([^”]*)” [0-9.]+%", readout.text_content())
        assert len(named) == 3 and set(named) <= set(labels[: it + 1]), readout.text_content()
        page.screenshot(path=str(tmp_path / "attention_hover.png"))

        # Locked by a click: hovering another chip, or leaving the row, changes nothing.
        chips.nth(it).click()
        chips.nth(1).hover()
        expect(readout).to_contain_text("locked")
        assert_attention_from(widget.evaluate(CHIP_STATES_JS), it, looker)
        page.mouse.move(5, 5)
        assert widget.evaluate(CHIP_STATES_JS)[it]["locked"]
        widget.locator(".ah-head").select_option("3")
        expect(readout).to_contain_text(f"{looker} (layer 0, head 3) looks most at: “")
        assert_attention_from(widget.evaluate(CHIP_STATES_JS), it, looker)
        assert page.evaluate(KERNEL_PRINT_JS, "print(hover.locked, hover.head)").split() == [str(it), "3"]


# ---- Notebook A, the lifecycle of an LLM: every widget drawn and answering ----

LIFECYCLE = "A_lifecycle"  # the student version, untouched: the course's versions stand in, visibly
TOKBOX_TEXT = "Tokenizers don't see letters: strawberry, 12345, naïve, 🍓, שלום"
TROPHY_SENTENCE = "The trophy did not fit in the suitcase because it was too big."

# The cells the test looks into, by their cell ids (set in the solution notebooks and kept in the
# student versions): an edit to a cell's code does not lose it.
LIFECYCLE_CELLS = ("compression-chart", "tokenizer-box", "languages-chart", "embedding-map", "bank-states-chart",
                   "attention-hover", "tiny-model-paris-chart", "cost-calculator", "temperature-explorer",
                   "inference-lab")

# Marks each of those cells' node with data-course-cell=ID, so locators can be scoped to one cell's
# outputs; returns the ids it found among the notebook's code cells.
MARK_CELLS_JS = """(ids) => {
  const notebook = window.jupyterapp.shell.currentWidget.content;
  const found = [];
  notebook.widgets.forEach((cell) => {
    if (cell.model.type === 'code' && ids.includes(cell.model.id)) {
      cell.node.dataset.courseCell = cell.model.id;
      found.push(cell.model.id);
    }
  });
  return found;
}"""


def run_fast_and_mark(page, lab: Lab, name: str, cell_ids):
    """Runs the untouched student notebook under the server's COURSE_FAST=1 (checked: the kernel ran
    the short settings) and marks the cells named; returns outputs(cell_id), the locator of one
    cell's outputs."""
    run_all_untouched(page, lab, name)
    assert page.evaluate(KERNEL_PRINT_JS, "print(pick('normal', 'fast'))").strip() == "fast"
    found = page.evaluate(MARK_CELLS_JS, list(cell_ids))
    assert sorted(found) == sorted(cell_ids), f"cells missing from the notebook: {sorted(set(cell_ids) - set(found))}"
    return lambda cell_id: page.locator(f'[data-course-cell="{cell_id}"] .jp-OutputArea')


# A plotly scatter as drawn: per trace, its points and text labels; the legend's entries.
SCATTER_STATE_JS = """(plot) => ({
  traces: Array.from(plot.querySelectorAll('.scatterlayer .trace')).map((trace) => ({
    points: trace.querySelectorAll('path.point').length,
    texts: Array.from(trace.querySelectorAll('.textpoint text')).map((t) => t.textContent),
    line: !!trace.querySelector('path.js-line'),
  })),
  legend: Array.from(plot.querySelectorAll('.legend .traces .legendtext')).map((t) => t.textContent),
})"""


def test_lifecycle_notebook_widgets_render_and_respond(lab, chromium_path, tmp_path):
    """Notebook A runs in the browser without an error; its TokenizerBox, EmbeddingMap,
    AttentionHover and TemperatureExplorer (with top-k, top-p and draws) render and answer input, and
    its plotly figures are drawn."""
    with browser_page(chromium_path, lab, tmp_path) as page:
        drive_the_lifecycle(page, lab, tmp_path)


def drive_the_lifecycle(page, lab: Lab, tmp_path: Path):
    started = time.monotonic()
    outputs = run_fast_and_mark(page, lab, LIFECYCLE, LIFECYCLE_CELLS)

    check_tokenizer_box(page, outputs("tokenizer-box"), tmp_path)
    unlabelled = check_embedding_map(page, outputs("embedding-map"), tmp_path)
    check_attention_hover(page, outputs("attention-hover"), tmp_path)
    check_cost_calculator(page, outputs("cost-calculator"), tmp_path)
    entities = check_temperature_filters(page, outputs("temperature-explorer"), tmp_path)
    check_inference_cost(page, outputs("inference-lab"), tmp_path)
    check_lifecycle_figures(page, outputs, tmp_path)
    print(f"notebook A in the browser: {time.monotonic() - started:.0f} s")
    # Last, so that these do not hide the checks of the other widgets.
    assert not unlabelled + entities, "labels missing or garbled:\n" + "\n".join(unlabelled + entities)


def check_tokenizer_box(page, out, tmp_path: Path):
    """Four rows of chips for the notebook's sentence (raw bytes: one chip per byte), and typing in the
    box re-cuts every row."""
    from playwright.sync_api import expect

    box = out.locator(".tokbox")
    names = box.locator(".tokbox-name")
    expect(names).to_have_text(
        [re.compile(r"^SmolLM2 "), re.compile(r"^your BPE "), re.compile(r"^tokenizers library "),
         re.compile(r"^raw bytes ")], timeout=RENDER_S * 1000)
    expect(box.locator(".tokbox-input")).to_have_value(TOKBOX_TEXT)
    expect(box.locator(".tokbox-error"), "a tokenizer row shows an error").to_have_count(0)
    rows = box.locator(".tokbox-row")
    n_bytes = len(TOKBOX_TEXT.encode("utf-8"))
    expect(rows.nth(3).locator(".tokbox-chip"), "one raw-bytes chip per byte").to_have_count(n_bytes)
    counts = [rows.nth(i).locator(".tokbox-chip").count() for i in range(4)]
    assert all(0 < count < n_bytes for count in counts[:3]), f"chips per row: {counts}"
    for i, count in enumerate(counts):
        expect(rows.nth(i).locator(".tokbox-counts")).to_contain_text(f"{count} tokens")
    box.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "lifecycle_tokens.png"))

    # Typing goes to the kernel and back: every row re-cut for the new text.
    box.locator(".tokbox-input").fill("strawberry")
    expect(rows.nth(3).locator(".tokbox-chip")).to_have_count(len("strawberry"), timeout=CHART_UPDATE_S * 1000)
    for i in range(3):
        expect(rows.nth(i).locator(".tokbox-counts")).to_contain_text("10 characters")
        assert 1 <= rows.nth(i).locator(".tokbox-chip").count() < len("strawberry")


def check_embedding_map(page, out, tmp_path: Path) -> list[str]:
    """The map of the notebook's 20 words; typing " cat" and Enter adds a point labelled ␣cat, and a
    second " cat" is refused with a message and leaves the map as it was. Returns the points drawn
    without their label, checked last so that the other widgets are checked too."""
    from playwright.sync_api import expect

    text_box = out.locator(".widget-text input")
    status = out.locator(".widget-html")
    plot = out.locator(".js-plotly-plot")
    title = plot.locator(".gtitle")
    expect(plot, "the embedding map did not render").to_have_count(1, timeout=RENDER_S * 1000)
    expect(status).to_have_count(1)
    plot.scroll_into_view_if_needed()
    expect(title).to_contain_text("20 words in 2-D", timeout=RENDER_S * 1000)

    def points(state) -> int:
        return sum(trace["points"] for trace in state["traces"])

    def labels(state) -> list[str]:
        return [text for trace in state["traces"] for text in trace["texts"]]

    def unlabelled(state, when: str) -> list[str]:
        return [f"embedding map {when}: legend {state['legend']}: trace {i} has {trace['points']} points but "
                f"{len(trace['texts'])} labels {trace['texts']}"
                for i, trace in enumerate(state["traces"]) if len(trace["texts"]) != trace["points"]]

    before = plot.evaluate(SCATTER_STATE_JS)
    assert points(before) == 20, f"embedding map: {before}"
    assert set(before["legend"]) == {"royalty", "people", "places", "fruit", "numbers"}, before["legend"]
    assert "␣cat" not in labels(before)
    problems = unlabelled(before, "as the notebook drew it")

    text_box.fill(" cat")
    text_box.press("Enter")
    expect(status).to_contain_text("Added ' cat': 1 token.", timeout=CHART_UPDATE_S * 1000)
    expect(title).to_contain_text("21 words in 2-D", timeout=CHART_UPDATE_S * 1000)
    page.wait_for_function(
        "(plot) => Array.from(plot.querySelectorAll('.scatterlayer .textpoint text'))"
        ".some((t) => t.textContent === '␣cat')",
        arg=plot.element_handle(), timeout=CHART_UPDATE_S * 1000)
    added = plot.evaluate(SCATTER_STATE_JS)
    assert points(added) == 21, f"after adding ' cat': {added}"
    assert labels(added).count("␣cat") == 1, f"after adding ' cat': {added}"
    assert "other" in added["legend"], f"' cat' has no group, so it is drawn as 'other': {added['legend']}"
    problems += unlabelled(added, "after adding ' cat'")
    expect(text_box, "the box is emptied after a word is added").to_have_value("")
    page.screenshot(path=str(tmp_path / "lifecycle_embedding_map.png"))

    # The same word again: a message, no second point, and the box keeps the word to fix.
    text_box.fill(" cat")
    text_box.press("Enter")
    expect(status).to_contain_text("' cat' is already on the map.", timeout=CHART_UPDATE_S * 1000)
    expect(title).to_contain_text("21 words in 2-D")
    assert plot.evaluate(SCATTER_STATE_JS) == added, "a refused word changed the map"
    expect(text_box).to_have_value(" cat")
    return problems


def check_cost_calculator(page, out, tmp_path: Path):
    """The cost calculator: Llama 3.1's sum step by step, beside its controls and within the cell;
    another preset redraws it; a negative price is refused in words, the figures kept."""
    from playwright.sync_api import expect

    caption = out.locator(".widget-html-content").filter(has_text="GPU-hours").first
    expect(caption, "the cost calculator did not render").to_contain_text("the paper reports 3.80e+25 FLOPs",
                                                                          timeout=RENDER_S * 1000)
    expect(caption).to_contain_text("million GPU-hours")
    caption.scroll_into_view_if_needed()
    area, box = out.bounding_box(), caption.bounding_box()
    assert box["x"] + box["width"] <= area["x"] + area["width"] + 1, f"the caption overflows its cell: {box} {area}"
    controls = out.locator(".widget-dropdown").first.bounding_box()
    assert controls["x"] + controls["width"] <= box["x"], f"the caption overlaps the controls: {controls} {box}"
    page.screenshot(path=str(tmp_path / "lifecycle_cost.png"))
    out.locator(".widget-dropdown select").select_option("GPT-3 (175B)")
    expect(caption).to_contain_text("the paper reports 3.14e+23 FLOPs")
    price = out.locator(".widget-text").filter(has_text="$ per GPU-hour").locator("input")
    price.fill("-3")
    price.press("Enter")
    expect(out).to_contain_text("must be a number > 0")
    expect(caption).to_contain_text("3.14e+23")


def check_inference_cost(page, out, tmp_path: Path):
    """A8's lab: speed, bytes and agreement as bars for the three precisions, under titles that do not
    run into each other; a caption reading int8 against float32; a price table that follows the price
    and refuses a negative one in words, its prices kept."""
    from playwright.sync_api import expect

    caption = out.locator(".widget-html-content").filter(has_text="float32's speed").first
    expect(caption, "the inference lab did not render").to_contain_text("int8", timeout=RENDER_S * 1000)
    plot = out.locator(".js-plotly-plot").first
    expect(plot.locator(".barlayer .point")).to_have_count(9)
    titles = [plot.locator(".annotation").nth(i).bounding_box() for i in range(3)]
    for left, right in zip(titles, titles[1:]):
        assert left["x"] + left["width"] <= right["x"], f"the chart titles overlap: {left} {right}"
    table = out.locator("table").first
    expect(table.locator("tr")).to_have_count(4)
    plot.scroll_into_view_if_needed()
    expect(plot).to_be_in_viewport()
    out.screenshot(path=str(tmp_path / "lifecycle_inference_cost.png"))
    first = table.text_content()
    price = out.locator(".widget-text").filter(has_text="$ per hour").locator("input")
    price.fill("7.2")
    price.press("Enter")
    expect(table).not_to_have_text(first)
    priced = table.text_content()
    price.fill("-1")
    price.press("Enter")
    expect(out).to_contain_text("the prices below are for the last valid one")
    assert table.text_content() == priced


def check_attention_hover(page, out, tmp_path: Path):
    """The trophy sentence as chips; hovering " it" shades the chips up to it and greys the later ones,
    at the layer and head the notebook's head search chose (set from the kernel after the widget ran)."""
    from playwright.sync_api import expect

    widget = out.locator(".ah")
    chips = widget.locator(".ah-chip")
    readout = widget.locator(".ah-readout")
    expect(chips.first).to_be_visible(timeout=RENDER_S * 1000)
    labels = chips.all_text_contents()
    assert "".join(labels).replace("␣", " ") == TROPHY_SENTENCE, f"chips: {labels}"
    layer, head = page.evaluate(KERNEL_PRINT_JS, "print(hover.layer, hover.head)").split()
    assert head != "-1", "the head search did not pick a head for the widget"
    it = labels.index("␣it")
    looker = "“␣it”"

    widget.scroll_into_view_if_needed()
    chips.nth(it).hover()
    expect(readout).to_contain_text(f"{looker} (layer {layer}, head {head}) looks most at: “",
                                    timeout=CHART_UPDATE_S * 1000)
    assert_attention_from(widget.evaluate(CHIP_STATES_JS), it, looker)
    page.screenshot(path=str(tmp_path / "lifecycle_attention_hover.png"))
    page.mouse.move(5, 5)
    expect(readout).to_contain_text("Hover over a token")
    assert not any(chip["future"] or chip["strength"] for chip in widget.evaluate(CHIP_STATES_JS))


def check_temperature_filters(page, out, tmp_path: Path) -> list[str]:
    """TemperatureExplorer with filters: three sliders at their starting values; top-k 3 cuts the other 9
    bars, "Draw 10" draws only kept tokens; top-p 0.05 then keeps the top token alone. Returns the tick
    labels that show an HTML entity instead of the token's text, checked last."""
    from playwright.sync_api import expect

    def slider(label: str):
        return out.locator(".widget-slider").filter(
            has=page.locator(".widget-label", has_text=re.compile(f"^{re.escape(label)}$")))

    temperature, top_k, top_p = slider("temperature"), slider("top-k (0 = off)"), slider("top-p (1 = off)")
    plot = out.locator(".js-plotly-plot")
    expect(plot, "the temperature chart did not render").to_have_count(1, timeout=RENDER_S * 1000)
    plot.scroll_into_view_if_needed()
    page.wait_for_function("(plot) => plot.querySelectorAll('.trace.bars .point path').length > 0",
                           arg=plot.element_handle(), timeout=RENDER_S * 1000)
    for control, value in ((temperature, "0.80"), (top_k, "0"), (top_p, "1.00")):
        expect(control.locator(".widget-readout")).to_have_text(value)
    before = plot.evaluate(CHART_STATE_JS)
    assert len(before["texts"]) == len(before["ticks"]) == 13, f"temperature chart: {before}"
    assert not any("cut" in text for text in before["texts"] + before["ticks"]), f"cut at the start: {before}"
    problems = [f"temperature chart: tick label {tick!r} shows an HTML entity, not the token's text"
                for tick in before["ticks"] if re.search(r"&#?\w+;", tick)]
    stats = out.locator(".widget-html").first
    expect(stats).to_contain_text("sampling pool: 49,152 of 49,152 tokens")

    def cut_count(n: int):
        """The chart once n of its token bars are marked cut (in their tick label: plotly draws no text on
        a bar of length 0)."""
        page.wait_for_function(
            "([plot, n]) => Array.from(plot.querySelectorAll('.ytick text'))"
            ".filter((t) => t.textContent.endsWith(' ✂ cut')).length === n",
            arg=[plot.element_handle(), n], timeout=CHART_UPDATE_S * 1000)
        return plot.evaluate(CHART_STATE_JS)

    handle = top_k.locator(".noUi-handle")
    for _ in range(3):
        handle.press("ArrowRight")
    expect(top_k.locator(".widget-readout")).to_have_text("3")
    filtered = cut_count(9)
    assert [tick.endswith(" ✂ cut") for tick in filtered["ticks"]] == [False] * 3 + [True] * 9 + [False], filtered
    assert [tick.removesuffix(" ✂ cut") for tick in filtered["ticks"]] == before["ticks"], \
        "top-k changed which tokens the bars show"
    assert percent(filtered["texts"][0]) > percent(before["texts"][0]), "the kept tokens were not renormalised"
    assert sum(map(percent, filtered["texts"][:3])) == pytest.approx(100, abs=0.2), filtered
    assert filtered["widths"][3:12] == [0] * 9, f"cut bars are not at 0: {filtered}"
    expect(stats).to_contain_text("sampling pool: 3 of 49,152 tokens")
    page.screenshot(path=str(tmp_path / "lifecycle_top_k.png"))

    draw_button = page.locator("button", has_text=re.compile(r"^Draw 10$"))  # a `has=` locator is relative
    draw = out.locator(".widget-hbox").filter(has=draw_button).locator("button")
    draws = out.locator(".widget-hbox").filter(has=draw_button).locator(".widget-html")

    def drawn(settings: str) -> list[str]:
        suffix = f" ({settings})"
        expect(draws).to_contain_text(suffix, timeout=CHART_UPDATE_S * 1000)
        tokens = draws.text_content().strip().removesuffix(suffix).split(" · ")
        assert len(tokens) == 10, f"draws: {draws.text_content()!r}"
        return tokens

    draw.click()
    tokens = drawn("temperature 0.8, top_k 3, seed 0")
    assert set(tokens) <= set(filtered["ticks"][:3]), f"drew {tokens}, outside the kept {filtered['ticks'][:3]}"
    top_p.locator(".noUi-handle").press("Home")
    expect(top_p.locator(".widget-readout")).to_have_text("0.05")
    cut_count(11)
    expect(stats).to_contain_text("sampling pool: 1 of 49,152 tokens")
    draw.click()
    assert drawn("temperature 0.8, top_k 3, top_p 0.05, seed 1") == [before["ticks"][0]] * 10
    expect(out, "the explorer fell back to the reference or showed a warning").not_to_contain_text("⚠")
    page.screenshot(path=str(tmp_path / "lifecycle_draws.png"))
    return problems


def check_lifecycle_figures(page, outputs, tmp_path: Path):
    """The four static plotly figures drawn with their traces, and six plotly plots in the notebook."""
    from playwright.sync_api import expect

    def drawn(name: str, selector: str, count: int):
        plot = outputs(name).locator(".js-plotly-plot")
        expect(plot, f"the {name} figure did not render").to_have_count(1, timeout=RENDER_S * 1000)
        plot.scroll_into_view_if_needed()
        expect(plot.locator(selector), f"the {name} figure").to_have_count(count, timeout=RENDER_S * 1000)
        return plot

    compression = drawn("compression-chart", ".trace.bars .point path", 4)
    ticks = compression.locator(".ytick text").all_text_contents()
    assert sorted(re.sub(r" \(.*", "", tick) for tick in ticks) == \
        ["SmolLM2", "raw bytes", "tokenizers library", "your BPE"], ticks
    bar_texts = compression.evaluate(CHART_STATE_JS)["texts"]
    assert len(bar_texts) == 4 and "1.00" in bar_texts, f"raw bytes should be 1 byte per token: {bar_texts}"

    languages = drawn("languages-chart", ".trace.bars", 4)
    expect(languages.locator(".trace.bars").first.locator(".point path")).to_have_count(14)
    expect(languages.locator(".legend .legendtext")).to_have_text(
        [re.compile(r"^SmolLM2 "), re.compile(r"^your BPE "), re.compile(r"^tokenizers library "),
         re.compile(r"^raw bytes ")])

    bank = drawn("bank-states-chart", ".scatterlayer .trace", 3)
    state = bank.evaluate(SCATTER_STATE_JS)
    assert [trace["points"] for trace in state["traces"]] == [31] * 3 and all(t["line"] for t in state["traces"]), state
    assert state["legend"] == ["river vs river", "money vs money", "river vs money"], state

    tiny = drawn("tiny-model-paris-chart", ".scatterlayer .trace", 1)
    state = tiny.evaluate(SCATTER_STATE_JS)
    steps = int(page.evaluate(KERNEL_PRINT_JS, "print(len(paris))"))  # a point per step the notebook took
    assert steps > 1 and state["traces"][0]["points"] == steps and state["traces"][0]["line"], state

    # Those four, the embedding map and the temperature chart.
    assert page.locator(".jp-Notebook .js-plotly-plot").count() >= 6
    page.screenshot(path=str(tmp_path / "lifecycle_figures.png"))


# ---- Notebook C, pre-training: the next-token game, the Chinchilla explorer, the live curve ----

PRETRAINING = "C_pretraining"
PRETRAINING_CELLS = ("next-token-game", "c1-skills", "chinchilla-explorer", "pretraining-run")

# A plotly bar chart as drawn: its title, tick labels, bar labels, bar widths and fill colours.
BARS_STATE_JS = """(plot) => ({
  title: (plot.querySelector('.gtitle') || {}).textContent || '',
  ticks: Array.from(plot.querySelectorAll('.ytick text')).map((t) => t.textContent),
  texts: Array.from(plot.querySelectorAll('.trace.bars .point text, .trace.bars text.bartext'))
    .map((t) => t.textContent),
  widths: Array.from(plot.querySelectorAll('.trace.bars .point path'))
    .map((p) => Math.round(p.getBBox().width * 10) / 10),
  fills: Array.from(plot.querySelectorAll('.trace.bars .point path')).map((p) => getComputedStyle(p).fill),
})"""

COUNT_UNITS = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}


def optimal_n(summary: str) -> float:
    """The compute-optimal N of ChinchillaExplorer's summary line ("N = 32.2B parameters") as a number."""
    match = re.search(r"N = ([0-9.,]+)([KMBT]?) parameters", summary)
    assert match, f"no optimal N in the summary {summary!r}"
    return float(match.group(1).replace(",", "")) * COUNT_UNITS[match.group(2)]


def test_pretraining_notebook_widgets_render_and_respond(lab, chromium_path, tmp_path):
    """Notebook C runs in the browser without an error; its NextTokenGame scores a guess, refuses an
    empty one kindly and moves to the next prompt; its skill panel's caption counts the marks it
    shows; its ChinchillaExplorer follows the budget slider and the constants toggle; TinyGPT's live
    pre-training curve and progress bar are drawn to the end."""
    with browser_page(chromium_path, lab, tmp_path) as page:
        drive_the_pretraining(page, lab, tmp_path)


def drive_the_pretraining(page, lab: Lab, tmp_path: Path):
    started = time.monotonic()
    outputs = run_fast_and_mark(page, lab, PRETRAINING, PRETRAINING_CELLS)

    check_next_token_game(page, outputs("next-token-game"), tmp_path)
    check_skill_panel(page, outputs("c1-skills"), tmp_path)
    check_chinchilla_explorer(page, outputs("chinchilla-explorer"), tmp_path)
    check_pretraining_curve(page, outputs("pretraining-run"), tmp_path)
    print(f"notebook C in the browser: {time.monotonic() - started:.0f} s")


def check_skill_panel(page, out, tmp_path: Path):
    """C1's panel: a row per probe, each marked right or wrong, and a caption that counts the marks."""
    from course_lib.widgets.skills import SKILL_PROBES

    table = out.locator("table")
    table.scroll_into_view_if_needed()
    rows = table.locator("tbody tr")
    assert rows.count() == len(SKILL_PROBES)
    right = rows.filter(has_text="✓ right").count()
    assert right + rows.filter(has_text="✗ wrong").count() == len(SKILL_PROBES)
    assert f"SmolLM2 got {right} of {len(SKILL_PROBES)} probes right" in out.inner_text()
    page.screenshot(path=str(tmp_path / "pretraining_skills.png"))


def check_next_token_game(page, out, tmp_path: Path):
    """The first prompt with its chart hidden; "Paris" revealed: SmolLM2's top 10 bars, " Paris" first,
    in orange, rank 1; an empty guess: a friendly message, the chart hidden again, and the game still
    scores the next guess; "Next prompt": the second prompt, everything reset."""
    from playwright.sync_api import expect

    prompt = out.locator(".widget-html", has_text="What comes next?")
    text_box = out.locator(".widget-text input")
    reveal = out.locator("button", has_text=re.compile(r"^Reveal$"))
    next_prompt = out.locator("button", has_text=re.compile(r"^Next prompt$"))
    plot = out.locator(".js-plotly-plot")
    title = plot.locator(".gtitle")
    result = out.locator(".widget-html", has_text="If it really came next")
    friendly = out.locator(".widget-html", has_text="Type your guess for the next token first")

    expect(plot, "the game's chart did not render").to_have_count(1, timeout=RENDER_S * 1000)
    plot.scroll_into_view_if_needed()
    expect(prompt).to_contain_text("prompt 1 of 5", timeout=RENDER_S * 1000)
    expect(prompt).to_contain_text("The capital of France is")
    expect(title).to_contain_text("Make a guess and press Reveal", timeout=RENDER_S * 1000)
    hidden = plot.evaluate(BARS_STATE_JS)
    assert hidden["ticks"] == ["?"] * 10, f"the chart gives the answer away before Reveal: {hidden}"

    def revealed(both_tried: bool) -> dict:
        expect(title).to_contain_text("SmolLM2's top 10 next tokens", timeout=CHART_UPDATE_S * 1000)
        expect(plot.locator(".ytick text").first).to_have_text("␣Paris", timeout=CHART_UPDATE_S * 1000)
        page.wait_for_function(
            "(plot) => Array.from(plot.querySelectorAll('.trace.bars .point path'))"
            ".filter((p) => p.getBBox().width > 0).length === 10",
            arg=plot.element_handle(), timeout=CHART_UPDATE_S * 1000)
        state = plot.evaluate(BARS_STATE_JS)
        assert len(state["ticks"]) == len(state["widths"]) == len(state["texts"]) == 10, f"game chart: {state}"
        assert all(width > 0 for width in state["widths"]), f"empty bars after Reveal: {state}"
        assert state["widths"] == sorted(state["widths"], reverse=True), f"bars not most likely first: {state}"
        assert percent(state["texts"][0]) > 50, f"' Paris' should be the model's clear favourite: {state}"
        assert "?" not in state["ticks"], state
        orange = "rgb(230, 81, 0)"  # GUESS_COLOUR: the guess's own bar
        assert state["fills"][0] == orange and orange not in state["fills"][1:], f"bar colours: {state}"
        expect(result).to_contain_text("“␣Paris” is the model's top choice", timeout=CHART_UPDATE_S * 1000)
        tried = out.locator(".widget-html", has_text="tried with and without a leading space")
        if both_tried:  # "Paris" scored as " Paris", the first token, and as "Paris", further down
            expect(tried).to_contain_text("“␣Paris” (1 token, first token #1) and “Paris” (1 token, first token #")
        else:
            expect(tried).to_have_count(0)
        return state

    # "Paris" without its space: the game tries both, and scores " Paris", SmolLM2's first choice.
    text_box.fill("Paris")
    reveal.click()
    first = revealed(both_tried=True)
    expect(friendly).to_have_count(0)
    page.screenshot(path=str(tmp_path / "pretraining_next_token_game.png"))

    # An empty guess: a message, not an error, and the chart hidden again.
    text_box.fill("")
    reveal.click()
    expect(friendly).to_have_count(1, timeout=CHART_UPDATE_S * 1000)
    expect(title).to_contain_text("Make a guess and press Reveal", timeout=CHART_UPDATE_S * 1000)
    expect(result).to_have_count(0)
    expect(plot.locator(".ytick text")).to_have_text(["?"] * 10)
    page.screenshot(path=str(tmp_path / "pretraining_next_token_game_empty.png"))
    # ...and the game still plays: the same guess gives the same chart.
    text_box.fill(" Paris")
    reveal.click()
    again = revealed(both_tried=False)
    expect(friendly).to_have_count(0)
    assert again["ticks"] == first["ticks"] and again["texts"] == first["texts"], (first, again)

    # The next prompt: a new text, the guess box emptied and the chart hidden.
    next_prompt.click()
    expect(prompt).to_contain_text("prompt 2 of 5", timeout=CHART_UPDATE_S * 1000)
    expect(prompt).to_contain_text("def add(a, b):")
    expect(prompt).not_to_contain_text("The capital of France is")
    expect(text_box).to_have_value("")
    expect(title).to_contain_text("Make a guess and press Reveal", timeout=CHART_UPDATE_S * 1000)
    expect(result).to_have_count(0)
    expect(out, "the game showed a warning").not_to_contain_text("⚠")
    expect(out.locator(".jp-OutputArea-output", has_text=re.compile("Traceback|Error"))).to_have_count(0)


def check_chinchilla_explorer(page, out, tmp_path: Path):
    """The U-curves, the optimum's star and label, Chinchilla and Gopher drawn; the summary gives the
    notebook's ~32B (Hoffmann) and ~72B (Epoch AI) optima at Chinchilla's budget; the slider moved with
    the keyboard to its top and bottom moves the optimum up and down; the toggle switches the fit."""
    from playwright.sync_api import expect

    slider = out.locator(".widget-slider")
    readout = slider.locator(".widget-readout")
    handle = slider.locator(".noUi-handle")
    summary = out.locator(".widget-html", has_text="Compute-optimal at C =")
    label = out.locator(".annotation-text")
    plot = out.locator(".js-plotly-plot")
    expect(plot, "the Chinchilla explorer did not render").to_have_count(1, timeout=RENDER_S * 1000)
    plot.scroll_into_view_if_needed()
    expect(plot.locator(".scatterlayer .trace")).to_have_count(5, timeout=RENDER_S * 1000)
    state = plot.evaluate(SCATTER_STATE_JS)
    curves, optimum, models = state["traces"][:2], state["traces"][2], state["traces"][3:]
    assert all(curve["line"] for curve in curves), f"the U-curves are not drawn: {state}"
    assert optimum["points"] == 1 and not optimum["line"], f"the compute-optimal star: {state}"
    assert [m["texts"] for m in models] == [["Chinchilla"], ["Gopher"]], f"the real models: {state}"
    # Chinchilla's budget, 5.76e23, as passed in: the slider's step is fine enough that the browser's
    # snapping to its grid does not move it.
    expect(readout).to_have_text("5.76e+23")
    expect(label).to_have_count(1)
    expect(label).to_contain_text(re.compile(r"^optimum: [0-9.]+B params, [0-9.]+T tokens$"))
    expect(summary).to_contain_text("Compute-optimal at C = 5.8e23 FLOPs (Hoffmann et al. 2022)")
    expect(out, "the explorer fell back to the reference or showed a warning").not_to_contain_text("⚠")
    hoffmann = optimal_n(summary.text_content())
    assert 30e9 < hoffmann < 35e9, f"the notebook says about 32 billion: {summary.text_content()!r}"
    page.screenshot(path=str(tmp_path / "pretraining_chinchilla.png"))

    def summary_after(action, expected: str) -> tuple[float, str]:
        old = summary.text_content()
        old_label = label.text_content()
        action()
        expect(summary).to_contain_text(expected, timeout=CHART_UPDATE_S * 1000)
        expect(label).not_to_have_text(old_label, timeout=CHART_UPDATE_S * 1000)
        text = summary.text_content()
        assert text != old
        return optimal_n(text), text

    # The other fit at the same budget: the notebook's "about 72 billion".
    epoch_button = out.locator("button", has_text="Epoch AI 2024 refit")
    epoch, text = summary_after(epoch_button.click, "(Epoch AI 2024 refit)")
    assert 65e9 < epoch < 80e9, f"the notebook says about 72 billion: {text!r}"
    expect(summary).to_contain_text("C = 5.8e23 FLOPs")

    # The budget slider, driven by the keyboard: its top and bottom.
    top, text = summary_after(lambda: handle.press("End"), "Compute-optimal at C = 1.0e26 FLOPs")
    expect(readout).to_have_text("1.00e+26")
    assert top > epoch, f"a bigger budget did not buy a bigger model: {text!r}"
    page.screenshot(path=str(tmp_path / "pretraining_chinchilla_big_budget.png"))
    bottom, text = summary_after(lambda: handle.press("Home"), "Compute-optimal at C = 1.0e18 FLOPs")
    expect(readout).to_have_text("1.00e+18")
    assert bottom < epoch, f"a smaller budget did not call for a smaller model: {text!r}"

    # Back to Hoffmann's constants at the small budget: the other fit's optimum.
    hoffmann_button = out.locator("button", has_text="Hoffmann et al. 2022")
    small, text = summary_after(hoffmann_button.click, "C = 1.0e18 FLOPs (Hoffmann et al. 2022)")
    assert small != bottom, f"the two fits give the same optimum: {text!r}"
    expect(out, "the explorer fell back to the reference or showed a warning").not_to_contain_text("⚠")
    page.screenshot(path=str(tmp_path / "pretraining_chinchilla_toggled.png"))


def check_pretraining_curve(page, out, tmp_path: Path):
    """TinyGPT's live curve: three traces (train smoothed, validation prose and code), the validation ones
    measured at step 0, every eval_every steps and at the end, as the kernel's run log says; the progress bar
    full and green."""
    from playwright.sync_api import expect

    plot = out.locator(".js-plotly-plot")
    expect(plot, "the live pre-training curve did not render").to_have_count(1, timeout=RENDER_S * 1000)
    plot.scroll_into_view_if_needed()
    expect(plot.locator(".scatterlayer .trace")).to_have_count(3, timeout=RENDER_S * 1000)
    expect(plot.locator(".legend .legendtext")).to_have_text(
        ["train (smoothed)", "validation: prose", "validation: code"])
    state = plot.evaluate(SCATTER_STATE_JS)
    train, prose, code = state["traces"]
    assert train["line"], f"the training curve has no line: {state}"
    # What the run did, from the kernel: a validation point at step 0, at each measurement and at the end.
    steps, eval_every, *eval_steps = map(int, page.evaluate(
        KERNEL_PRINT_JS, "print(trainer.step, train_cfg.eval_every, *run_log.eval_steps)").split())
    assert eval_steps == sorted({*range(0, steps + 1, eval_every), steps}), eval_steps
    assert prose["points"] == code["points"] == len(eval_steps), f"expected {len(eval_steps)} validation points: {state}"

    bar = out.locator(".widget-hbox").filter(has=page.locator(".widget-hprogress")).first
    expect(bar).to_contain_text("pre-training TinyGPT")
    expect(bar).to_contain_text(f"{steps}/{steps} [")
    expect(bar).to_contain_text("100%")
    expect(bar.locator(".progress-bar"), "tqdm marks a finished bar green").to_have_class(
        re.compile(r"progress-bar-success"))
    bar.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "pretraining_curve.png"))


# ---- the other student notebooks: Run All reaches the end ----

UNTOUCHED_ONLY = ("B_why_transformers_won", "D_post_training", "E_reinforcement_learning")
# The colours plotly fills E5's bars with, by verdict: course_lib.widgets.advantage's.
def as_rgb(hex_colour: str) -> str:
    """'#2da44e' as a browser writes a computed fill: 'rgb(45, 164, 78)'."""
    return "rgb({}, {}, {})".format(*(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)))


VERDICT_FILLS = {as_rgb(advantage.REINFORCE): "reinforce", as_rgb(advantage.SUPPRESS): "suppress",
                 as_rgb(advantage.NEUTRAL): "no change"}
BAR_FILLS_JS = "(plot) => Array.from(plot.querySelectorAll('.trace.bars .point path')).map((b) => b.style.fill)"


def check_advantage_explorer(page, out, tmp_path: Path):
    """E5: the caption's counts are the bars' colours; after the GRPO button, each bar's colour is
    the sign of GRPO's advantage for it, as the caption prints them."""
    from playwright.sync_api import expect

    plot = out.locator(".js-plotly-plot")
    expect(plot, "the advantage explorer did not render").to_have_count(1, timeout=RENDER_S * 1000)
    plot.scroll_into_view_if_needed()
    caption = out.locator(".widget-html-content").filter(has_text="reinforced").first

    def agree() -> tuple[list[str], str]:
        text = caption.text_content()
        counts = re.search(r"(\d+) reinforced, (\d+) suppressed, (\d+) unchanged", text)
        verdicts = [VERDICT_FILLS.get(fill, fill) for fill in plot.evaluate(BAR_FILLS_JS)]
        drawn = [verdicts.count(v) for v in ("reinforce", "suppress", "no change")]
        assert counts and drawn == list(map(int, counts.groups())), f"caption {text!r}, bars {verdicts}"
        return verdicts, text

    agree()
    out.get_by_role("button", name="the group's average (GRPO)").click()
    page.wait_for_timeout(500)
    verdicts, text = agree()
    grpo = [float(v) for v in re.search(r"\[([^\]]*)\]", text.split("GRPO")[-1]).group(1).split(",")]
    expected = ["reinforce" if a > 0.005 else "suppress" if a < -0.005 else "no change" for a in grpo]
    assert verdicts == expected, f"GRPO says {grpo}, the bars say {verdicts}"
    page.screenshot(path=str(tmp_path / "advantage_explorer.png"))


def check_leash_dial(page, out, tmp_path: Path):
    """E9's dial: the caption's accuracy for each reward is the height of its bar in the first panel."""
    from playwright.sync_api import expect

    plot = out.locator(".js-plotly-plot")
    expect(plot, "the KL-leash dial did not render").to_have_count(1, timeout=RENDER_S * 1000)
    plot.scroll_into_view_if_needed()
    text = out.locator(".widget-html-content").filter(has_text="KL weight").first.text_content()
    drawn = dict(plot.evaluate("(p) => p.data.filter((t) => (t.xaxis || 'x') === 'x').map((t) => [t.name, t.y[0]])"))
    said = dict(re.findall(r"([a-z ]+reward[a-z ]*): accuracy [\d.]+ → ([\d.]+)", text))
    assert said and {name.strip(): value for name, value in said.items()} == \
        {name: f"{value:.2f}" for name, value in drawn.items()}, f"caption {text!r}, bars {drawn}"
    page.screenshot(path=str(tmp_path / "leash_dial.png"))


# Each cell whose widget's caption is checked against what its chart draws, after Run All.
CAPTIONS_CHECKED = {"E_reinforcement_learning": {"f93897cd": check_advantage_explorer, "aa0df2b5": check_leash_dial}}


def test_untouched_student_notebooks_run_to_their_last_cell(lab, chromium_path, tmp_path):
    """B, D and E as handed out, one after the other on one server: Run All reaches the last cell,
    each unfinished exercise is one panel, and no output shows a traceback (00, A and C get the same
    check in their own tests)."""
    with browser_page(chromium_path, lab, tmp_path) as page:
        for name in UNTOUCHED_ONLY:
            started = time.monotonic()
            run_all_untouched(page, lab, name)
            checked = CAPTIONS_CHECKED.get(name, {})
            assert sorted(page.evaluate(MARK_CELLS_JS, list(checked))) == sorted(checked)
            for cell_id, check in checked.items():
                check(page, page.locator(f'[data-course-cell="{cell_id}"] .jp-OutputArea'), tmp_path)
            last = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell").last
            last.scroll_into_view_if_needed()
            page.screenshot(path=str(tmp_path / f"{name}_end.png"))
            # Its kernel goes before the next notebook loads a model of its own (2 cores, little memory).
            page.evaluate("() => window.jupyterapp.serviceManager.sessions.shutdownAll()")
            print(f"{name} untouched in the browser: {time.monotonic() - started:.0f} s")
