"""Where the course keeps what it builds on a learner's machine: one cache folder for every user of it
(SmolLM2's expanded weights, TinyGPT's tokenized corpus, the base model a learner saves in C)."""
from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "COURSE_CACHE_DIR"  # grading points the sandboxed kernels at caches built beforehand


def cache_dir() -> Path:
    """COURSE_CACHE_DIR if set, else the user's cache directory (XDG_CACHE_HOME or ~/.cache)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "course_lib"
