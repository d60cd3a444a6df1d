"""SkillPanel (C1) on the real SmolLM2: each probe continued and marked by what the model did."""
import pytest

from course_lib.models.smollm import load_smollm2
from course_lib.widgets.skills import SKILL_PROBES, Probe, SkillPanel, run_probe


@pytest.fixture(scope="module")
def smol():
    return load_smollm2(device="cpu", progress=False)


@pytest.fixture(scope="module")
def panel(smol):
    return SkillPanel(smol, max_new_tokens=4)


def test_every_probe_is_continued_and_marked_by_its_continuation(panel, smol):
    assert [r.probe for r in panel.results] == list(SKILL_PROBES)
    for r in panel.results:
        assert r.continuation == smol.generate(r.probe.prompt, 4, chat=False)
        assert r.right == r.continuation.strip().startswith(r.probe.expected)
        probabilities = [p for _, p in r.top]
        assert len(r.top) == 3 and probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1
    # The greedy continuation starts with the likeliest first token.
    assert all(r.continuation.startswith(r.top[0][0]) for r in panel.results)


def test_the_panel_shows_successes_and_failures(panel):
    by_skill = {r.probe.skill: r for r in panel.results}
    assert by_skill["a well-known fact"].right  # " Paris", SmolLM2's first choice by far
    assert 0 < panel.right < len(panel.results), panel.summary()


def test_the_table_shows_each_probe_and_the_count(panel):
    page = panel._repr_html_()
    assert page.count("<tr>") == len(SKILL_PROBES) + 1
    assert f"got {panel.right} of {len(SKILL_PROBES)} probes right" in page
    assert page.count("✓ right") == panel.right and page.count("✗ wrong") == len(SKILL_PROBES) - panel.right


def test_a_wrong_answer_is_marked_wrong_and_text_is_escaped(smol):
    result = run_probe(smol, Probe("nonsense", "<b>2 + 2</b> =", ("banana",)), max_new_tokens=2)
    assert not result.right
    page = SkillPanel(smol, [result.probe], max_new_tokens=2)._repr_html_()
    assert "&lt;b&gt;2 + 2&lt;/b&gt;" in page and "<b>2 + 2</b>" not in page
    assert "expected “banana”" in page


def test_no_probes_is_a_clear_error(smol):
    with pytest.raises(ValueError, match="at least one probe"):
        SkillPanel(smol, [])
