"""Text to train on that needs no download (English prose that ships with every Python
installation), and GPT-2's rule for cutting text into words before BPE."""
from course_lib.data.corpus import python_docs_text

# GPT-2's pre-tokenizer: English contractions, then an optional space followed by letters, digits or
# other symbols, then whitespace (leaving the last space of a run to start the next word).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

__all__ = ["GPT2_PATTERN", "python_docs_text"]
