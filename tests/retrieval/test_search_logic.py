"""Query terms, attribute filters and reciprocal rank fusion."""

from __future__ import annotations

from portway.api.wire import parse_model
from portway.retrieval.filters import matches
from portway.retrieval.search import query_terms, reciprocal_rank_fusion, relative
from portway.store.chunks import ScoredChunk
from portway.vector_stores.wire import SearchRequest


def test_query_terms_drop_stop_words_and_syntax() -> None:
    assert query_terms(['What is the "refund" policy? (NOT) OR*']) == ["refund", "policy"]
    assert query_terms(["the a"]) == ["the", "a"]  # only stop words: keep them
    assert query_terms(["Ação", "ação"]) == ["ação"]


def _filter(raw: dict) -> object:
    return parse_model({"query": "q", "filters": raw}, SearchRequest).filters


def test_filters_compare_attributes() -> None:
    attrs = {"lang": "en", "year": 2024, "draft": False}
    assert matches(_filter({"type": "eq", "key": "lang", "value": "en"}), attrs)
    assert not matches(_filter({"type": "ne", "key": "lang", "value": "en"}), attrs)
    assert matches(_filter({"type": "gte", "key": "year", "value": 2024}), attrs)
    assert not matches(_filter({"type": "gt", "key": "lang", "value": 3}), attrs)
    assert matches(_filter({"type": "in", "key": "lang", "value": ["pt", "en"]}), attrs)
    assert matches(_filter({"type": "nin", "key": "year", "value": [1999]}), attrs)
    assert not matches(_filter({"type": "eq", "key": "missing", "value": 1}), attrs)
    compound = {
        "type": "and",
        "filters": [
            {"type": "eq", "key": "draft", "value": False},
            {
                "type": "or",
                "filters": [
                    {"type": "lt", "key": "year", "value": 2000},
                    {"type": "eq", "key": "lang", "value": "en"},
                ],
            },
        ],
    }
    assert matches(_filter(compound), attrs)
    assert not matches(_filter(compound), {**attrs, "draft": True})


def test_fusion_rewards_agreement_and_scales_to_one() -> None:
    fused = reciprocal_rank_fusion([[1, 2, 3], [2, 1, 4]])
    assert [hit.chunk_id for hit in fused][:2] in ([1, 2], [2, 1])
    assert fused[-1].chunk_id in (3, 4)
    assert reciprocal_rank_fusion([[7], [7]])[0].score == 1.0
    assert all(0 < hit.score <= 1 for hit in fused)
    only_one = reciprocal_rank_fusion([[5, 6], []])
    assert [hit.chunk_id for hit in only_one] == [5, 6] and only_one[0].score < 1


def test_relative_scores() -> None:
    scores = relative([ScoredChunk(1, 4.0), ScoredChunk(2, 1.0)])
    assert [(h.chunk_id, h.score) for h in scores] == [(1, 1.0), (2, 0.25)]
    assert relative([]) == []
