"""Paced replies: how an answer is cut into the WhatsApp messages it is sent as, and how long
"typing…" shows before each.

Pure functions of the text and the tenant's settings; the parts are stored (ReplyPart) before
the first is sent, so a retry sends the same parts whatever the settings have become since.
"""

import re

# Parts stay far below WhatsApp's own limit, short enough to read as one message each.
MAX_PART_CHARS = 4000
# Evolution shows "typing…" for the whole delay before it sends: more than this feels stuck.
MAX_TYPING_MS = 8000

_BLANK_LINES = re.compile(r"\n\s*\n")
# Where a sentence ends: its closing punctuation (and any closing quote or bracket) before a
# space, or a line break.
_SENTENCE_END = re.compile(r"[.!?\u2026][\"')\]\u201d\u2019]*(?=\s)|\n")
_SPACE = re.compile(r"\s")


def reply_parts(text: str, *, split: bool) -> list[str]:
    """The messages that send `text`: one per paragraph when `split`, else the text as it is;
    none when there is nothing to send."""
    if not text.strip():
        return []
    if not split:
        return [text]
    return split_reply(text)


def split_reply(text: str, *, limit: int = MAX_PART_CHARS) -> list[str]:
    """`text` split on blank lines, and any paragraph longer than `limit` characters cut at the
    last sentence end before the limit, else at the last space, else at the limit itself.
    Each part is stripped of the whitespace around it; no part is empty."""
    parts: list[str] = []
    for paragraph in _BLANK_LINES.split(text):
        paragraph = paragraph.strip()
        start = 0
        while len(paragraph) - start > limit:
            # A window, not a copy of the rest: an answer may be a megabyte long.
            cut = start + _cut_at(paragraph[start : start + limit + 1], limit)
            parts.append(paragraph[start:cut].rstrip())
            start = cut
            while paragraph[start].isspace():  # the paragraph ends with no space
                start += 1
        if paragraph[start:]:
            parts.append(paragraph[start:])
    return parts


def typing_delay_ms(part: str, *, ms_per_char: int) -> int:
    """How long Evolution shows "typing…" before sending `part` (0: not at all)."""
    return min(len(part) * ms_per_char, MAX_TYPING_MS)


def _cut_at(window: str, limit: int) -> int:
    """Where to cut `window` (the next `limit` + 1 characters, starting with no space) so that
    the piece before the cut fits in `limit`: a boundary right after the limit still does."""
    # A sentence's end is before a space, or is a line break, which the piece drops.
    ends = [m.end() for m in _SENTENCE_END.finditer(window)]
    if ends:
        return ends[-1]
    spaces = [m.start() for m in _SPACE.finditer(window)]
    return spaces[-1] if spaces else limit
