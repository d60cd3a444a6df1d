"""course_lib: the shared code behind "How LLMs Actually Work", the hands-on edition.

The device helpers are loaded on first use, so a light module (course_lib.paths, course_lib.cli)
can be imported without torch: the grading process and the command-line entry points need none.
"""
from course_lib import versions

__all__ = ["get_device", "is_fast", "pick", "seed_everything"]
__version__ = "0.1.0"

versions.check()  # a library too old for the course is named here, with its fix


def __getattr__(name: str):
    if name in __all__:
        from course_lib import device

        return getattr(device, name)
    raise AttributeError(f"module 'course_lib' has no attribute {name!r}")
