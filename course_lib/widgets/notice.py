"""The one-line notices widgets show under their controls: a learner's function that is not written
yet (information) or that failed (a warning), and what the widget does instead."""
from __future__ import annotations

import html

INFO_COLOUR = "#2f6fde"
WARNING_COLOUR = "#c62828"


def notice_html(message: str, colour: str) -> str:
    return f'<div style="border-left: 3px solid {colour}; padding: 2px 8px">{html.escape(message, quote=False)}</div>'
