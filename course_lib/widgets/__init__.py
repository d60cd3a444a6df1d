"""Interactive widgets the notebooks share: tokenizer box, temperature explorer, attention views, embedding map, the N×N square,
the next-token game and Chinchilla's U-curve."""
from course_lib.widgets.attention import AttentionMap
from course_lib.widgets.attention_hover import AttentionHover
from course_lib.widgets.chinchilla import ChinchillaExplorer
from course_lib.widgets.embeddings import EmbeddingMap
from course_lib.widgets.next_token_game import NextTokenGame
from course_lib.widgets.square import SquareExplorer
from course_lib.widgets.temperature import TemperatureExplorer
from course_lib.widgets.tokens import TokenizerBox, bytes_tokenizer

__all__ = ["AttentionHover", "AttentionMap", "ChinchillaExplorer", "EmbeddingMap", "NextTokenGame", "SquareExplorer", "TemperatureExplorer", "TokenizerBox", "bytes_tokenizer"]
