"""The oldest libraries the course runs with, checked when course_lib is imported.

`make course` installs the pinned versions of pyproject.toml. Colab (and any environment the course
is added to with --no-deps) hands the course its own torch, ipywidgets and plotly instead; those
must be at least as new as below, or something fails later with a message about the library, not
the fix. The check reads the installed versions' metadata only: it imports none of them.
"""
from __future__ import annotations

import re
from importlib import metadata

# torch 2.5: scaled_dot_product_attention's enable_gqa (the Llama's fused attention).
# ipywidgets 7.7, plotly 5.24 and matplotlib 3.10: Colab's versions, with which every widget was
# built and tested.
MINIMUM = {"torch": (2, 5), "ipywidgets": (7, 7), "plotly": (5, 24), "matplotlib": (3, 10)}


def _release(version: str) -> tuple[int, ...]:
    """The numeric release of a version string: "2.13.0+cpu" -> (2, 13, 0)."""
    match = re.match(r"\d+(\.\d+)*", version)
    return tuple(int(part) for part in match.group(0).split(".")) if match else ()


def too_old() -> dict[str, str]:
    """Installed libraries older than the course needs: name -> installed version (those not
    installed are not listed: importing them names them)."""
    found = {}
    for name, minimum in MINIMUM.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        if _release(installed) < minimum:
            found[name] = installed
    return found


def check() -> None:
    old = too_old()
    if old:
        wanted = " ".join(f'"{name}>={".".join(map(str, MINIMUM[name]))}"' for name in old)
        found = ", ".join(f"{name} {version}" for name, version in old.items())
        raise ImportError(f"course_lib needs newer libraries than this environment has ({found}). "
                          f"Fix: pip install -U {wanted}, then restart the kernel "
                          f"(on Colab: Runtime > Restart session) and run the notebook again.")
