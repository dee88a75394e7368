"""The search query language: what each form means, and that no input string makes it raise."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from query.search import FieldTerm, InvalidQuery, ParsedQuery, SearchIndex, SearchRequest, SearchResult, parse_query
from query.search.parser import MAX_QUERY_CHARS, MAX_TERMS
from tests.relevance.builders import searchable

pytestmark = pytest.mark.unit


def parsed(text: str) -> ParsedQuery:
    result = parse_query(text)
    assert isinstance(result, ParsedQuery), result
    return result


def invalid(text: str) -> str:
    result = parse_query(text)
    assert isinstance(result, InvalidQuery), result
    return result.message


class TestFreeWordsAndPhrases:
    def test_words_are_split_on_anything_not_a_letter_or_digit(self) -> None:
        assert parsed("card-fraud_detector v2, EMEA").words == ("card", "fraud", "detector", "v2", "EMEA")

    def test_quoted_words_are_a_phrase(self) -> None:
        query = parsed('fraud "card transactions" emea')
        assert query.words == ("fraud", "emea")
        assert query.phrases == (("card", "transactions"),)

    def test_an_unterminated_quote_runs_to_the_end(self) -> None:
        assert parsed('churn "telecom subscr').phrases == (("telecom", "subscr"),)

    def test_an_empty_query_only_filters(self) -> None:
        assert not parsed("").ranked
        assert not parsed("   ").ranked


class TestTypingPrefix:
    def test_the_last_word_is_a_prefix_while_it_is_being_typed(self) -> None:
        assert parsed("fraud det").prefix

    def test_a_trailing_space_ends_the_word(self) -> None:
        assert not parsed("fraud det ").prefix

    def test_a_phrase_or_a_field_at_the_end_is_not_a_prefix(self) -> None:
        assert not parsed('fraud "card"').prefix
        assert not parsed("fraud team:risk").prefix


class TestFieldTerms:
    @pytest.mark.parametrize(
        ("text", "term"),
        [
            ("framework:XGBoost", FieldTerm("framework", "xgboost")),
            ("status:deployed", FieldTerm("status", "deployed")),
            ("env:prod", FieldTerm("environment", "prod")),
            ("environment:prod", FieldTerm("environment", "prod")),
            ("team:fraud", FieldTerm("team", "fraud")),
            ("target:sagemaker", FieldTerm("deployment_target", "sagemaker")),
            ("lifecycle:active", FieldTerm("lifecycle", "active")),
            ("name:card-", FieldTerm("name", "card-")),
        ],
    )
    def test_a_field_term_names_an_index_field(self, text: str, term: FieldTerm) -> None:
        assert parsed(text).fields == (term,)

    def test_tags_match_a_pair_written_either_way_or_a_key(self) -> None:
        assert parsed("tag:owner=Alice").fields == (FieldTerm("tag", "owner=Alice"),)
        assert parsed("tag:owner:Alice").fields == (FieldTerm("tag", "owner=Alice"),)
        assert parsed('tag:"owner=Alice Smith"').fields == (FieldTerm("tag", "owner=Alice Smith"),)
        assert parsed("tag:pii").fields == (FieldTerm("tag_key", "pii"),)

    def test_an_unknown_field_is_refused_with_the_known_ones(self) -> None:
        message = invalid("colour:blue")
        assert "'colour'" in message and "framework" in message

    def test_an_unknown_enumerated_value_is_refused_with_the_allowed_ones(self) -> None:
        assert "xgboost" in invalid("framework:sklearn")
        assert "deployed" in invalid("status:live")

    def test_a_field_without_a_value_is_a_word(self) -> None:
        assert parsed("status: fraud").words == ("status", "fraud")

    def test_a_quoted_empty_value_is_refused(self) -> None:
        assert "needs a value" in invalid('team:""')


class TestBounds:
    def test_overlong_queries_are_refused(self) -> None:
        assert str(MAX_QUERY_CHARS) in invalid("a" * (MAX_QUERY_CHARS + 1))

    def test_too_many_terms_are_refused(self) -> None:
        assert str(MAX_TERMS) in invalid(" ".join(["word"] * (MAX_TERMS + 1)))


QUERY_ALPHABET = st.sampled_from([*"abcdeéß019 :\"=-_*?()[]{}\\/'~^!+&|<>\t\n\x00", "framework", "tag", "env"])
ANY_TEXT = st.one_of(st.text(max_size=600), st.lists(QUERY_ALPHABET, max_size=80).map("".join))


@given(ANY_TEXT)
def test_any_text_parses_or_says_why_not(text: str) -> None:
    result = parse_query(text)
    assert isinstance(result, ParsedQuery | InvalidQuery)
    if isinstance(result, InvalidQuery):
        assert result.message


@pytest.fixture(scope="module")
def small_index() -> SearchIndex:
    index = SearchIndex()
    index.upsert(
        [
            searchable("fraud", "card-fraud-detector", description="Scores card payments for fraud: <b>café</b> ß"),
            searchable("nlp", "review-sentiment", framework="huggingface", description="Sentiment of reviews"),
        ]
    )
    index.commit()
    return index


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ANY_TEXT)
def test_any_text_searches_or_says_why_not(small_index: SearchIndex, text: str) -> None:
    result = small_index.search(SearchRequest(text, frozenset({"fraud"})))
    assert isinstance(result, SearchResult | InvalidQuery)
