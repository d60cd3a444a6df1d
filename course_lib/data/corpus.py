"""English prose every Python installation carries: a corpus to train tokenizers and tiny models on.

First the reference pages `help()` shows for keywords and topics (pydoc_data, about 465 KB), then the
docstrings of a fixed list of standard-library modules and of their public classes and functions.
The text is the same on every run for a given Python version, and needs no network.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import warnings

# Modules that every CPython build has, alike on every platform and none removed up to Python 3.13;
# their docstrings add about 650 KB of prose to the topics (Python 3.11). Not builtins or pdb:
# Jupyter replaces builtins.input and pdb.Pdb, and the text must be the same in a notebook as in a script.
DOCSTRING_MODULES = (
    "abc", "argparse", "ast", "base64", "bdb", "calendar", "cmd", "code", "codecs", "collections",
    "configparser", "contextlib", "copy", "dataclasses", "datetime", "difflib", "dis", "doctest",
    "email.headerregistry", "email.message", "email.parser", "email.policy", "email.utils", "enum",
    "filecmp", "fileinput", "fractions", "ftplib", "functools", "gettext", "graphlib", "gzip", "heapq",
    "http.client", "http.cookiejar", "http.cookies", "http.server", "imaplib", "inspect", "io",
    "ipaddress", "itertools", "json", "json.decoder", "json.encoder", "logging", "logging.handlers",
    "mailbox", "math", "mimetypes", "numbers", "operator", "optparse", "pathlib", "pickle",
    "pickletools", "plistlib", "poplib", "pprint", "profile", "pstats", "pyclbr", "pydoc", "queue",
    "random", "re", "sched", "smtplib", "statistics", "string", "tarfile", "tempfile", "textwrap",
    "threading", "timeit", "tokenize", "trace", "traceback", "types", "typing", "unittest.case",
    "unittest.loader", "unittest.mock", "unittest.result", "unittest.runner", "urllib.parse",
    "urllib.request", "urllib.robotparser", "uuid", "warnings", "weakref", "wsgiref.handlers",
    "wsgiref.simple_server", "xml.dom.minidom", "xml.etree.ElementTree", "xml.sax.handler",
    "xml.sax.saxutils", "xmlrpc.client", "zipfile", "zipimport",
)


@functools.cache
def _topics_text() -> str:
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))


def documented(module):
    """The module, then its public classes and functions in name order, each class followed by its
    public methods and properties. Only what the module defines itself, not what it imports."""
    yield module
    for name in sorted(dir(module)):
        if name.startswith("_"):
            continue
        obj = getattr(module, name)
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isroutine(obj):
            yield obj
        elif inspect.isclass(obj):
            yield obj
            for attr, value in sorted(vars(obj).items()):
                if not attr.startswith("_") and (inspect.isroutine(value) or isinstance(value, property)):
                    yield getattr(obj, attr)


@functools.cache
def docstrings() -> tuple[str, ...]:
    """The docstrings of DOCSTRING_MODULES and of their public classes and functions, each once."""
    docs: dict[str, None] = {}  # an ordered set: inherited and shared docstrings appear once
    with warnings.catch_warnings():  # some modules warn about deprecated names on import or getattr
        warnings.simplefilter("ignore")
        for module_name in DOCSTRING_MODULES:
            for obj in documented(importlib.import_module(module_name)):
                doc = inspect.getdoc(obj)  # None under python -OO: the corpus is then just the topics
                if doc:
                    docs[doc] = None
    return tuple(docs)


def python_docs_text(n_chars: int | None = None) -> str:
    """The first `n_chars` characters of the corpus; all of pydoc's topic pages when n_chars is None.

    Up to about 465 KB it is the topic pages alone (sorted by topic name, separated by blank
    lines); beyond that the standard-library docstrings follow (about 1.1 MB in all).
    """
    topics = _topics_text()
    if n_chars is None:
        return topics
    if isinstance(n_chars, bool) or not isinstance(n_chars, int) or n_chars < 0:
        raise ValueError(f"n_chars must be a whole number >= 0 (or None), got {n_chars!r}")
    if n_chars <= len(topics):
        return topics[:n_chars]
    text = topics + "\n\n" + "\n\n".join(docstrings())
    if n_chars > len(text):
        raise ValueError(f"asked for {n_chars:,} characters, but this Python's documentation has "
                         f"{len(text):,}")
    return text[:n_chars]
