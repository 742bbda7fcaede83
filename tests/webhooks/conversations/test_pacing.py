"""How an answer is cut into the messages it is sent as, and how long "typing…" shows."""

import re

from hypothesis import example, given
from hypothesis import strategies as st

from webhooks.conversations.pacing import (
    MAX_PART_CHARS,
    reply_parts,
    split_reply,
    typing_delay_ms,
)


def without_whitespace(text: str) -> str:
    return re.sub(r"\s", "", text)


def test_it_splits_an_answer_on_blank_lines():
    text = "Olá, Maria!\n\nSeu pedido saiu hoje.\nChega amanhã.\n \n\n\tAlgo mais?\n"

    assert split_reply(text) == [
        "Olá, Maria!",
        "Seu pedido saiu hoje.\nChega amanhã.",
        "Algo mais?",
    ]


def test_a_long_paragraph_is_cut_at_the_last_sentence_end_before_the_limit():
    text = "One two. Three four! Five six"

    assert split_reply(text, limit=22) == ["One two. Three four!", "Five six"]


def test_a_sentence_may_end_with_a_quote_or_a_line_break():
    assert split_reply('He said "go." Then left', limit=16) == ['He said "go."', "Then left"]
    assert split_reply("first line\nsecond line here", limit=20) == [
        "first line",
        "second line here",
    ]


def test_a_long_sentence_is_cut_at_the_last_space_before_the_limit():
    assert split_reply("alpha beta gamma delta", limit=12) == ["alpha beta", "gamma delta"]


def test_a_boundary_right_at_the_limit_is_used():
    assert split_reply("abcd. efgh", limit=5) == ["abcd.", "efgh"]
    assert split_reply("abcde fgh", limit=5) == ["abcde", "fgh"]


def test_a_word_longer_than_the_limit_is_cut_at_the_limit():
    assert split_reply("x" * 9, limit=4) == ["xxxx", "xxxx", "x"]


def test_a_decimal_point_is_no_sentence_end():
    assert split_reply("Costs 3.50 each now", limit=12) == ["Costs 3.50", "each now"]


def test_the_default_limit_is_4000_characters():
    words = ("palavra " * 1200).strip()  # 9,599 characters, no sentence end

    parts = split_reply(words)

    assert [len(part) for part in parts] == [3999, 3999, 1599]


def test_an_answer_is_sent_whole_when_splitting_is_off_and_not_at_all_when_blank():
    text = "One.\n\nTwo."

    assert reply_parts(text, split=False) == [text]
    assert reply_parts(text, split=True) == ["One.", "Two."]
    assert reply_parts(" \n\n ", split=True) == []
    assert reply_parts(" \n ", split=False) == []


# Words, sentence ends, quotes and every kind of space, where the boundaries are.
ANSWERS = st.lists(
    st.sampled_from(
        ["ab", "c", ".", "!", "?", "\u2026", "\u201d", " ", "\n", "\n\n", "\t", "\u00a0"]
    ),
    max_size=150,
).map("".join)


@given(ANSWERS, st.integers(min_value=1, max_value=40))
@example("a" * 4001, MAX_PART_CHARS)
@example("a. " * 2000, MAX_PART_CHARS)
def test_parts_rejoin_to_the_answer_and_none_is_over_the_limit(text, limit):
    parts = split_reply(text, limit=limit)

    assert without_whitespace("".join(parts)) == without_whitespace(text)
    assert all(0 < len(part) <= limit for part in parts)
    assert all(part == part.strip() for part in parts)


@given(st.text(max_size=3000))
def test_any_text_splits_into_parts_that_fit(text):
    parts = split_reply(text, limit=500)

    assert without_whitespace("".join(parts)) == without_whitespace(text)
    assert all(0 < len(part) <= 500 for part in parts)


def test_typing_lasts_per_character_up_to_eight_seconds():
    assert typing_delay_ms("Olá!", ms_per_char=50) == 200
    assert typing_delay_ms("x" * 1000, ms_per_char=50) == 8000
    assert typing_delay_ms("Olá!", ms_per_char=0) == 0
