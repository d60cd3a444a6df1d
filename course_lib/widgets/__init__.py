"""Interactive widgets the notebooks share: tokenizer box, temperature explorer, attention map."""
from course_lib.widgets.attention import AttentionMap
from course_lib.widgets.temperature import TemperatureExplorer
from course_lib.widgets.tokens import TokenizerBox, bytes_tokenizer

__all__ = ["AttentionMap", "TemperatureExplorer", "TokenizerBox", "bytes_tokenizer"]
