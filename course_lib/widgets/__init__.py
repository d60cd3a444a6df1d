"""Interactive widgets the notebooks share: a tokenizer comparison box and a temperature explorer."""
from course_lib.widgets.temperature import TemperatureExplorer
from course_lib.widgets.tokens import TokenizerBox, bytes_tokenizer

__all__ = ["TemperatureExplorer", "TokenizerBox", "bytes_tokenizer"]
