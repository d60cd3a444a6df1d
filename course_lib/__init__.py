"""course_lib: the shared code behind "How LLMs Actually Work", the hands-on edition."""
from course_lib.device import get_device, is_fast, pick, seed_everything

__all__ = ["get_device", "is_fast", "pick", "seed_everything"]
__version__ = "0.1.0"
