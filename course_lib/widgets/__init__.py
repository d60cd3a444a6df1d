"""Interactive widgets the notebooks share: tokenizer box, temperature explorer, attention views, embedding map, the N×N square."""
from course_lib.widgets.attention import AttentionMap
from course_lib.widgets.attention_hover import AttentionHover
from course_lib.widgets.embeddings import EmbeddingMap
from course_lib.widgets.square import SquareExplorer
from course_lib.widgets.temperature import TemperatureExplorer
from course_lib.widgets.tokens import TokenizerBox, bytes_tokenizer

__all__ = ["AttentionHover", "AttentionMap", "EmbeddingMap", "SquareExplorer", "TemperatureExplorer", "TokenizerBox", "bytes_tokenizer"]
