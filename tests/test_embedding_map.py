"""EmbeddingMap, driven from Python the way a notebook would: PCA correctness, adding and removing
words, refusals that change nothing, and one run on SmolLM2's real embedding table."""
import html
import math

import numpy as np
import pytest
import torch

from course_lib.widgets.embeddings import EmbeddingMap, pca_2d

# A fake 10-token vocabulary in 4 dimensions; words outside TOKENS become one token per letter.
TABLE = torch.randn(10, 4, generator=torch.Generator().manual_seed(0))
TOKENS = {" king": [0], " queen": [1], " apple": [2], " pear": [3], " strawberry": [4, 5, 6]}


def encode(word):
    return TOKENS.get(word) or [ord(c) % 10 for c in word]


def token_label(token_id):
    return f"t{token_id}"


def embedding_map(words=(" king", " queen", " apple"), **kwargs):
    return EmbeddingMap(TABLE, encode, token_label, words, **kwargs)


def state(w):
    """Everything a refused input must leave unchanged."""
    return (w.words, w.points, w.explained_variance, [(list(t.x), list(t.y), list(t.text)) for t in w.figure.data],
            w.figure.layout.title.text)


def coordinates_of(w):
    return np.array(list(w.points.values()))


def pairwise_distances(points):
    points = np.asarray(points, dtype=float)
    return np.linalg.norm(points[:, None] - points[None], axis=-1)


# ---- PCA ----


def test_pca_matches_numpy_eigendecomposition_of_the_covariance():
    data = np.random.default_rng(0).normal(size=(7, 5)) * [5, 3, 1, 0.5, 0.1]
    coordinates, kept = pca_2d(torch.tensor(data))
    centred = data - data.mean(0)
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred)  # ascending
    top_two = eigenvectors[:, ::-1][:, :2]
    expected = centred @ top_two
    # Each direction's sign is a convention: compare up to sign, then check ours puts row 0 at x, y >= 0.
    for column in range(2):
        assert np.allclose(np.abs(coordinates[:, column].numpy()), np.abs(expected[:, column]), atol=1e-9)
    assert (coordinates[0] >= 0).all()
    assert kept == pytest.approx(eigenvalues[::-1][:2].sum() / eigenvalues.sum())


def test_points_on_a_plane_keep_all_their_spread_and_their_distances():
    plane = torch.tensor([[1.0, 0, 2, 0, 0], [0, 1, 0, 0, 3]], dtype=torch.float64)
    weights = torch.randn(6, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    vectors = weights @ plane + 7.0  # six points on a plane in 5-D, away from the origin
    coordinates, kept = pca_2d(vectors)
    assert kept == pytest.approx(1.0)
    assert np.allclose(pairwise_distances(coordinates), pairwise_distances(vectors), atol=1e-9)


def test_two_points_lie_on_the_first_direction_and_identical_points_do_not_divide_by_zero():
    coordinates, kept = pca_2d(torch.tensor([[0.0, 0, 0], [3.0, 4, 0]], dtype=torch.float64))
    assert kept == pytest.approx(1.0)
    assert coordinates[:, 0].abs().tolist() == pytest.approx([2.5, 2.5])
    assert coordinates[:, 1].abs().max().item() < 1e-12
    coordinates, kept = pca_2d(torch.ones(3, 4, dtype=torch.float64))
    assert kept == 1.0 and torch.equal(coordinates, torch.zeros(3, 2, dtype=torch.float64))


# ---- the map ----


def test_points_are_the_pca_of_the_words_vectors_and_the_chart_shows_them():
    w = embedding_map()
    expected, kept = pca_2d(TABLE[[0, 1, 2]].double())
    assert w.words == [" king", " queen", " apple"]
    assert np.allclose(coordinates_of(w), expected.numpy())
    assert w.explained_variance == pytest.approx(kept)
    (trace,) = [t for t in w.figure.data if len(t.x)]
    assert np.allclose(np.column_stack([trace.x, trace.y]), coordinates_of(w))
    assert list(trace.text) == ["␣king", "␣queen", "␣apple"]
    assert f"{kept:.0%} of their spread" in w.figure.layout.title.text


def test_a_multi_token_word_sits_at_the_mean_of_its_tokens_and_says_how_many():
    w = embedding_map()
    w.add_word(" strawberry")
    vectors = torch.stack([TABLE[0], TABLE[1], TABLE[2], TABLE[[4, 5, 6]].mean(0)]).double()
    expected, _ = pca_2d(vectors)
    assert w.points[" strawberry"] == pytest.approx(tuple(expected[3].tolist()))
    trace = w.figure.data[0]
    assert trace.text[-1] == "␣strawberry (3 tokens)"
    assert "t4|t5|t6" in trace.customdata[-1]
    assert "3 tokens (t4|t5|t6)" in w.status.value


def test_adding_and_removing_recompute_the_whole_map():
    w = embedding_map()
    before = coordinates_of(w)
    w.add_word(" pear")
    assert w.words == [" king", " queen", " apple", " pear"]
    assert np.allclose(coordinates_of(w), pca_2d(TABLE[[0, 1, 2, 3]].double())[0].numpy())
    assert not np.allclose(coordinates_of(w)[:3], before)  # four words, new directions
    w.remove_word(" pear")
    assert np.allclose(coordinates_of(w), before)
    assert "Removed ' pear'." in html.unescape(w.status.value)


@pytest.mark.parametrize("bad, message", [
    ("", "Type a word first"), ("   ", "Type a word first"), ("\n\t", "Type a word first"),
    (" king", "already on the map"), (None, "must be text"),
])
def test_bad_words_are_refused_and_change_nothing(bad, message):
    w = embedding_map()
    before = state(w)
    with pytest.raises(ValueError, match=message):
        w.add_word(bad)
    assert state(w) == before


def test_removing_a_word_that_is_not_there_is_refused():
    w = embedding_map()
    before = state(w)
    with pytest.raises(ValueError, match="' pear' is not on the map; the words are: ' king', ' queen', ' apple'"):
        w.remove_word(" pear")
    assert state(w) == before


def test_ids_outside_the_table_and_a_table_that_is_not_2d_are_refused():
    w = EmbeddingMap(TABLE, lambda word: [3, 99], token_label)
    with pytest.raises(ValueError, match="outside the embedding table's 10 rows"):
        w.add_word("x")
    assert w.words == []
    with pytest.raises(ValueError, match=r"\(vocabulary, dim\)"):
        EmbeddingMap(torch.zeros(10), encode, token_label)


def test_fewer_than_two_words_say_so_instead_of_drawing():
    w = embedding_map(words=())
    assert "at least 2 words" in w.figure.layout.title.text and "0 so far" in w.figure.layout.title.text
    w.add_word(" king")
    assert w.points == {} and w.explained_variance is None
    assert all(len(t.x) == 0 for t in w.figure.data)
    w.add_word(" queen")
    assert set(w.points) == {" king", " queen"} and w.explained_variance == pytest.approx(1.0)


def test_the_text_box_adds_on_the_button_and_on_enter_and_reports_refusals():
    w = embedding_map()
    w.text.value = " pear"
    w.add_button.click()
    assert w.words[-1] == " pear" and w.text.value == ""
    w.text.value = " strawberry"
    w.text._handle_custom_msg({"event": "submit"}, [])  # what the browser sends on Enter
    assert w.words[-1] == " strawberry" and w.text.value == ""
    before = state(w)
    for typed, message in [("  ", "Type a word first"), (" king", "already on the map")]:
        w.text.value = typed
        w.add_button.click()
        assert message in w.status.value
        assert w.text.value == typed  # kept, so it can be corrected
        assert state(w) == before
    w.text.value = " pear"
    w.remove_button.click()
    assert " pear" not in w.words and w.text.value == ""


def test_groups_get_their_own_coloured_trace():
    groups = {" king": "royals", " queen": "royals", " apple": "fruit", " pear": "fruit"}
    w = embedding_map(words=[" king", " apple", " queen", " pear", " strawberry"], groups=groups)
    traces = {t.name: list(t.text) for t in w.figure.data}
    assert traces == {"royals": ["␣king", "␣queen"], "fruit": ["␣apple", "␣pear"],
                      "other": ["␣strawberry (3 tokens)"]}
    assert w.figure.layout.showlegend
    assert [t.showlegend for t in w.figure.data] == [True, True, True]
    w.remove_word(" strawberry")
    assert [t.showlegend for t in w.figure.data] == [True, True, False]


# ---- SmolLM2 ----


def test_real_smollm2_embeddings_cluster_by_meaning():
    from course_lib.models.smollm import load_smollm2

    smol = load_smollm2(device="cpu", progress=False)
    groups = {" king": "royals", " queen": "royals", " prince": "royals", " princess": "royals",
              " apple": "fruit", " banana": "fruit", " orange": "fruit", " grape": "fruit",
              " France": "countries", " Germany": "countries", " Italy": "countries", " Spain": "countries"}
    w = EmbeddingMap(smol.model.embed.weight, smol.encode, smol.token_label, list(groups), groups=groups)
    table = smol.model.embed.weight.detach().double()
    expected, kept = pca_2d(table[[smol.encode(word)[0] for word in groups]])
    assert np.allclose(coordinates_of(w), expected.numpy())
    assert w.explained_variance == pytest.approx(kept) and 0 < kept < 1
    # On the map, every word's nearest neighbour belongs to its own group.
    for word, point in w.points.items():
        nearest = min((other for other in w.points if other != word), key=lambda o: math.dist(point, w.points[o]))
        assert groups[nearest] == groups[word], (word, nearest)
    w.add_word(" Zanzibar")  # several tokens for SmolLM2
    n_tokens = len(smol.encode(" Zanzibar"))
    assert n_tokens > 1 and f"({n_tokens} tokens)" in w.figure.data[-1].text[-1]
