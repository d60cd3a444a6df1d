"""`python -m PACKAGE STEP [ARGS]`: one command, several steps, each a module with its own main."""
from __future__ import annotations

import importlib
import sys


def run_step(package: str, steps: dict[str, str], argv: list[str]) -> int:
    """Run `package.STEP.main(ARGS)`; with no step or an unknown one, list `steps` (name: what it
    does) and exit 1 (0 for --help)."""
    if not argv or argv[0] not in steps:
        print(f"usage: python -m {package} STEP [ARGS]   (STEP --help for its arguments)\n", file=sys.stderr)
        width = max(map(len, steps))
        for step, what in steps.items():
            print(f"  {step:<{width}}  {what}", file=sys.stderr)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nerror: unknown step {argv[0]!r}", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 1
    module = importlib.import_module(f"{package}.{argv[0]}")
    sys.argv[0] = f"python -m {package} {argv[0]}"  # the name the step's --help shows
    return module.main(argv[1:]) or 0
