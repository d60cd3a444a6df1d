"""Text to train on that needs no download: English prose that ships with every Python installation."""
from course_lib.data.corpus import python_docs_text

__all__ = ["python_docs_text"]
