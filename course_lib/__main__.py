"""`python -m course_lib doctor`: is this machine ready for the course, and how to fix what is not.

`python -m course_lib validate NOTEBOOK [...]`: would a notebook lose points (course_lib/validate.py).
"""
from __future__ import annotations

import platform
import sys


def doctor() -> int:
    import torch

    from course_lib.device import get_device
    from course_lib.models import smollm
    from course_lib.paths import cache_dir

    problems = 0
    print(f"python   {platform.python_version()} ({sys.executable})")
    print(f"torch    {torch.__version__}")
    try:
        device = get_device()
        detail = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
        print(f"device   {device}{detail}")
    except (RuntimeError, ValueError) as error:
        problems += 1
        print(f"device   ✗ {error}")
    try:
        path = smollm.gguf_path()
        print(f"model    ✓ {path} ({path.stat().st_size / 1e6:.0f} MB)")
    except smollm.ModelNotInstalledError as error:
        print(f"model    ✗ {error}")
        return 1
    print(f"cache    {cache_dir()}")
    try:
        smol = smollm.load_smollm2(progress=True)
        reply = smol.generate(smol.encode("The capital of France is"), 3, chat=False)
        print(f"loads    ✓ {smol}")
        print(f"runs     ✓ 'The capital of France is' -> {reply!r}")
    except Exception as error:  # report anything: this is the diagnostic tool
        problems += 1
        print(f"loads    ✗ {type(error).__name__}: {error}")
        print("         try deleting the cache folder above, then run this again")
    print("ready for the course" if not problems else f"{problems} problem(s) above")
    return 1 if problems else 0


def main(argv: list[str]) -> int:
    if argv[1:] == ["doctor"]:
        return doctor()
    if argv[1:2] == ["validate"]:
        from course_lib.validate import main as validate

        return validate(argv[2:])
    print("usage: python -m course_lib doctor\n"
          "       python -m course_lib validate NOTEBOOK [NOTEBOOK ...] [--json] [--timeout S]")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
