"""The critique-and-revise loop of Constitutional AI (course_lib.train.constitution)."""
import pytest

from course_lib.models.smollm import load_smollm2
from course_lib.train.constitution import (
    CONCISE_REQUESTS,
    CONCISE_WORDS,
    HARM_REQUESTS,
    PRINCIPLES,
    ConstitutionalStep,
    Principle,
    compliance,
    critique_and_revise,
    critique_and_revise_each,
    show_steps,
)


class RecordingSmol:
    """Stands in for SmolLM: renders conversations in SmolLM2's format and records every generate call."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.calls = []

    def apply_chat_template(self, messages, add_generation_prompt=True):
        turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        return turns + ("<|im_start|>assistant\n" if add_generation_prompt else "")

    def reply_to_each(self, prompts, max_new_tokens=128, temperature=0.0, seed=None, chat=True):
        self.calls.append({"prompts": prompts, "max_new_tokens": max_new_tokens, "temperature": temperature,
                           "chat": chat})
        return [self.replies.pop(0) for _ in prompts]


def step(draft_follows, revision_follows, draft="draft", revision="revision"):
    return ConstitutionalStep(request="Tell me about the moon.", draft=draft, critique="critique",
                              revision=revision, principle="concise", draft_follows=draft_follows,
                              revision_follows=revision_follows, seconds=1.0)


def test_each_step_sees_the_conversation_so_far():
    principle = PRINCIPLES["concise"]
    smol = RecordingSmol(["DRAFT-TEXT " + "word " * 60, " CRITIQUE-TEXT ", "REVISION-TEXT short."])
    result = critique_and_revise(smol, "Tell me about the moon.", principle, max_new_tokens=17)

    (draft_prompt,), (critique_prompt,), (revision_prompt,) = (call["prompts"] for call in smol.calls)
    assert "Tell me about the moon." in draft_prompt and draft_prompt.endswith("<|im_start|>assistant\n")
    assert "DRAFT-TEXT" in critique_prompt
    assert principle.text in critique_prompt and principle.critique_request in critique_prompt
    assert "CRITIQUE-TEXT" not in critique_prompt
    assert "DRAFT-TEXT" in revision_prompt and "CRITIQUE-TEXT" in revision_prompt
    assert principle.revision_request in revision_prompt
    # the critique request comes after the draft, the revision request after the critique
    assert critique_prompt.index("DRAFT-TEXT") < critique_prompt.index(principle.critique_request)
    assert revision_prompt.index("CRITIQUE-TEXT") < revision_prompt.index(principle.revision_request)
    for call in smol.calls:
        assert call["temperature"] == 0.0  # greedy: the notebook is reproducible
        assert call["chat"] is False  # already in the chat format: not to be wrapped a second time
        assert call["max_new_tokens"] == 17

    assert (result.draft.startswith("DRAFT-TEXT"), result.critique, result.revision) == (
        True, "CRITIQUE-TEXT", "REVISION-TEXT short.")
    assert (result.draft_follows, result.revision_follows) == (False, True)
    assert result.principle == "concise" and result.seconds > 0


def test_several_requests_go_through_each_stage_as_one_batch():
    principle = PRINCIPLES["concise"]
    smol = RecordingSmol(["short one.", "long " * 60, "critique one", "critique two", "revised one.", "revised two."])
    first, second = critique_and_revise_each(smol, ["Tell me about the moon.", "What is the internet?"], principle,
                                             progress=False)
    assert [len(call["prompts"]) for call in smol.calls] == [2, 2, 2]  # three generations, not six
    draft_prompts, critique_prompts, _ = (call["prompts"] for call in smol.calls)
    assert "moon" in draft_prompts[0] and "internet" in draft_prompts[1]
    assert "short one." in critique_prompts[0] and "long long" in critique_prompts[1]  # each its own draft
    assert (first.revision, second.revision) == ("revised one.", "revised two.")
    assert (first.draft_follows, second.draft_follows) == (True, False)
    with pytest.raises(ValueError, match="a list of requests"):
        critique_and_revise_each(smol, "Tell me about the moon.", principle)


def test_a_principle_without_check_gives_no_verdict():
    smol = RecordingSmol(["draft", "critique", "revision"])
    result = critique_and_revise(smol, HARM_REQUESTS[0], PRINCIPLES["harmless"])
    assert result.draft_follows is None and result.revision_follows is None


def test_concise_check_is_the_word_limit_its_text_states():
    concise = PRINCIPLES["concise"]
    assert f"at most {CONCISE_WORDS} words" in concise.text
    assert concise.check(" ".join(["word"] * CONCISE_WORDS))
    assert not concise.check(" ".join(["word"] * (CONCISE_WORDS + 1)))
    assert any(p.check is None for p in PRINCIPLES.values())
    assert 6 <= len(CONCISE_REQUESTS) <= 8 and 2 <= len(HARM_REQUESTS) <= 3
    assert all(isinstance(p, Principle) and name == p.name for name, p in PRINCIPLES.items())


@pytest.mark.parametrize("request_text, principle, max_new_tokens, message", [
    ("", PRINCIPLES["concise"], 96, "request is empty"),
    ("   \n", PRINCIPLES["concise"], 96, "request is empty"),
    ("Tell me about the moon.", "concise", 96, "expected a Principle"),
    ("Tell me about the moon.", PRINCIPLES["concise"], 0, "max_new_tokens"),
    ("Tell me about the moon.", PRINCIPLES["concise"], 2.5, "max_new_tokens"),
])
def test_invalid_arguments_are_refused_before_generating(request_text, principle, max_new_tokens, message):
    smol = RecordingSmol([])
    with pytest.raises(ValueError, match=message):
        critique_and_revise(smol, request_text, principle, max_new_tokens=max_new_tokens)
    assert smol.calls == []


def test_compliance_counts_only_measured_steps():
    steps = [step(False, True), step(False, False), step(True, True), step(False, True), step(None, None)]
    assert compliance(steps) == {"measured": 4, "draft_rate": 0.25, "revision_rate": 0.75}
    with pytest.raises(ValueError, match="no step has a measurable principle"):
        compliance([step(None, None)])
    with pytest.raises(ValueError):
        compliance([])


def test_show_steps_escapes_the_model_text_and_marks_verdicts():
    rendered = show_steps([step(False, True, draft="<script>alert(1)</script> & more",
                                revision="line one\nline two " + "long " * 200)]).data
    assert "<script>" not in rendered and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in rendered
    assert "line one\nline two " + "long " * 199 in rendered  # kept whole
    assert rendered.count("✗") == 1 and rendered.count("✓") == 1
    assert "✓" not in show_steps([step(None, None)]).data and "✗" not in show_steps([step(None, None)]).data


@pytest.fixture(scope="module")
def smol():
    return load_smollm2(device="cpu", progress=False)


@pytest.mark.slow
def test_one_real_request_through_smollm2(smol):
    result = critique_and_revise(smol, CONCISE_REQUESTS[0], PRINCIPLES["concise"], max_new_tokens=24)
    for text in (result.draft, result.critique, result.revision):
        assert isinstance(text, str) and text.strip()
    assert isinstance(result.draft_follows, bool) and isinstance(result.revision_follows, bool)
    assert result.seconds > 0
