"""The glossary: each notebook defines a term where it first uses it (the term in bold, in that
cell) or links the term's entry in GLOSSARY.md there; every link names an entry that exists."""
import re
from pathlib import Path

import nbformat
import pytest

from course_lib.glossary import BY_NAME, TERMS, glossary, markdown

REPO = Path(__file__).resolve().parent.parent
SOURCES = sorted((REPO / "solutions").glob("*/*.ipynb"))
LINK = re.compile(r"\]\(\.\./\.\./GLOSSARY\.md#([a-z0-9-]+)\)")


def prose(text: str) -> str:
    """A markdown cell's text without code (fenced or `inline`), maths and link targets: variable
    names such as `logits` are not uses of a term."""
    text = re.sub(r"```.*?```|\$\$.*?\$\$|\$[^$]+\$", " ", text, flags=re.S)
    text = re.sub(r"`[^`]*`", " ", text)
    return re.sub(r"\]\([^)]*\)", "]", text)


def first_uses(nb) -> dict[str, tuple[int, str]]:
    """Each glossary term's first markdown cell in the notebook: (index, that cell's text). The hint
    cells are left out: they are written from the declarations and sit below the instructions."""
    found = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown" or cell.get("id", "").startswith("hints-"):
            continue
        text = prose(cell.source)
        for term in TERMS:
            if term.name not in found and re.search(term.pattern, text, flags=re.I if term.name.islower() else 0):
                found[term.name] = (index, cell.source)
    return found


def defined_or_linked(term, source: str) -> bool:
    flags = re.I if term.name.islower() else 0
    bold = any(re.search(term.pattern, span, flags) for span in re.findall(r"\*\*(.+?)\*\*", prose(source)))
    return bold or term.anchor in LINK.findall(source)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_every_term_is_defined_or_linked_where_the_notebook_first_uses_it(path):
    nb = nbformat.read(path, as_version=4)
    missing = [f"{name!r} in cell {index}" for name, (index, source) in first_uses(nb).items()
               if not defined_or_linked(BY_NAME[name.lower()], source)]
    assert not missing, (f"{path.stem} uses these terms first without defining them in bold or linking "
                         f"../../GLOSSARY.md#<entry>: " + ", ".join(missing))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_every_glossary_link_names_an_entry(path):
    anchors = {t.anchor for t in TERMS}
    links = [a for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "markdown"
             for a in LINK.findall(cell.source)]
    assert set(links) <= anchors, sorted(set(links) - anchors)


def test_the_page_has_every_term_under_its_anchor_and_is_current():
    page = (REPO / "GLOSSARY.md").read_text(encoding="utf-8")
    assert page == markdown(), "GLOSSARY.md is out of date: run `make notebooks`"
    headings = re.findall(r"^### (.+)$", page, flags=re.M)
    assert sorted(headings, key=str.lower) == headings and len(headings) == len(TERMS)
    assert {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings} == {t.anchor for t in TERMS}


def test_a_notebook_can_show_an_entry_and_an_unknown_one_is_a_clear_error():
    assert glossary("rope").data.startswith("**RoPE**: Rotary position embedding")
    assert glossary().data == markdown()
    with pytest.raises(KeyError, match="has no 'ropey'; it has: AdamW"):
        glossary("ropey")
