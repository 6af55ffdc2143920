"""Scrubbing free text: contact details, CPR numbers and the writer's own name replaced by placeholders.

Forum posts and notes are kept for the community, but an e-mail address or phone number inside them is as
identifying as the account itself (Datatilsynet 2019: deleting the name but keeping the phone number is not
anonymisation). Patterns prefer to over-scrub a bare 8-digit number rather than leak a phone number, while
ordinary numbers (years, prices, dates, course codes) are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from anonymizers.base import TEXT_KINDS, Context, FunctionAnonymizer, output_series

EMAIL = "[e-mail]"
PHONE = "[phone]"
URL = "[url]"
NAME = "[name]"
CPR = "[cpr]"

_URL = re.compile(r"""\b(?:https?://|ftp://|www\.)[^\s<>"]+""", re.IGNORECASE)
_EMAIL = re.compile(
    r"""
    (?<![\w.+-])[\w.+-]+
    (?:@|\s*[\[(]\s*(?:at|snabel-a)\s*[\])]\s*)          # also 'jens (at) firma.dk'
    [\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}(?![\w-])
    """,
    re.VERBOSE | re.IGNORECASE,
)
_NUMBER = re.compile(
    r"""
    (?=[\d+(])(?<![\w+\-\#])(?<!\d[.,])                    # not inside a longer number or a code
    (?:
        (?P<cpr>[0-3]\d[01]\d\d\d[-\s]?\d{4})
      | (?:(?:\+|00)\s?45[\s.-]?|\(\+?45\)\s?)?             # +45, 0045, (+45)
        (?:
            \d{2}(?P<sep>[\s.-]?)\d{2}(?P=sep)\d{2}(?P=sep)\d{2} # 12345678, 12 34 56 78, 12-34-56-78
          | (?P<first4>\d{4})\s(?P<last4>\d{4})                # 1234 5678
        )
      | (?P<foreign>\+(?!45)[1-9]\d{0,2}(?:[\s.-]?\(?\d+\)?){2,6})
    )
    (?![\w\-]|[.,]\d)
    """,
    re.VERBOSE,
)
_URL_TRAILING = ".,;:!?)]}'\"»"
_DIGIT = re.compile(r"\d")  # every branch of _NUMBER needs one
_EMAIL_HINT = re.compile(r"@|[\[(]\s*(?:at|snabel-a)\s*[\])]", re.IGNORECASE)
_FOLD = {"æ": "(?:æ|ae)", "ø": "(?:ø|oe|o)", "å": "(?:å|aa)", "é": "(?:é|e)", "ü": "(?:ü|ue|u)", "ö": "(?:ö|oe|o)"}
_YEAR = re.compile(r"(?:19|20)\d\d")


def _url(match: re.Match[str]) -> str:
    """Keep sentence punctuation that follows a URL outside the placeholder."""
    text = match.group(0)
    core = text.rstrip(_URL_TRAILING)
    return URL + text[len(core) :]


def _number(match: re.Match[str]) -> str:
    """A CPR or phone number, except two years side by side ('2022 2023') or an implausible CPR date."""
    text = match.group(0)
    cpr = match.group("cpr")
    if cpr is not None:
        digits = "".join(ch for ch in cpr if ch.isdigit())
        return CPR if 1 <= int(digits[:2]) <= 31 and 1 <= int(digits[2:4]) <= 12 else text
    first, last = match.group("first4"), match.group("last4")
    if first and last and _YEAR.fullmatch(first) and _YEAR.fullmatch(last):
        return text
    if match.group("foreign") is not None and not 8 <= sum(ch.isdigit() for ch in text) <= 15:
        return text
    return PHONE


def _name_variant(part: str) -> str:
    """A regex for one name part that also matches the usual ASCII spellings of Danish letters."""
    return r"\s+".join("".join(_FOLD.get(ch.lower(), re.escape(ch)) for ch in word) for word in part.split())


def _name_parts(full_name: str) -> list[str]:
    """The full name and its parts of three or more letters, longest first."""
    words = full_name.split()
    if not words:
        return []
    candidates = {" ".join(words)}
    for word in words:
        for piece in (word, *word.split("-")):
            if len(piece.strip("-.'")) >= 3:
                candidates.add(piece)
    return sorted(candidates, key=lambda c: (-len(c), c))


@lru_cache(maxsize=8192)
def name_pattern(full_name: str) -> re.Pattern[str] | None:
    """Regex for a person's full name and its parts of three or more letters, longest first.

    Parts are the space-separated names and, for 'Anne-Marie', also 'Anne' and 'Marie'. A trailing
    genitive s ('Jensens') is included; placeholders such as '[name]' are never matched again.
    """
    parts = _name_parts(full_name)
    if not parts:
        return None
    body = "|".join(_name_variant(c) for c in parts)
    return re.compile(rf"(?<![\w\[])(?:{body})(?:'s|'|s)?(?![\w\]])", re.IGNORECASE)


def _skeleton(text: str) -> str:
    """Case-folded text, with the dotted and dotless i that IGNORECASE also matches to 'i' read as 'i'."""
    return text.casefold().replace("\u0131", "i").replace("i\u0307", "i")


@lru_cache(maxsize=8192)
def _name_anchors(full_name: str) -> tuple[str, ...] | None:
    """For each name part, its longest stretch that the pattern matches literally (ignoring case), so a text
    holding none of them cannot match and needs no compiled pattern; None if some part has no such stretch.
    Compiling a pattern per person is the costliest step of scrubbing, and most texts never name their author.
    """
    anchors = []
    for part in _name_parts(full_name):
        runs = re.split(r"\s+|[" + "".join(_FOLD) + "]", part, flags=re.IGNORECASE)
        longest = max(runs, key=len)
        if not longest:
            return None
        anchors.append(_skeleton(longest))
    return tuple(anchors)


def _may_name(text: str, full_name: str) -> bool:
    anchors = _name_anchors(full_name)
    if anchors is None:
        return True
    folded = _skeleton(text)
    return any(anchor in folded for anchor in anchors)


def scrub_one(text: str, own_name: str | None = None) -> str:
    """One text with URLs, e-mails, CPR and phone numbers and the given person's name replaced.

    Passes run in that order, each only when a cheap test says it can match: URLs first so that an
    e-mail inside a query string goes with its URL, names last so that 'jens.hansen@…' counts as e-mail.
    """
    scrubbed = text
    if "://" in scrubbed or "www." in scrubbed.lower():
        scrubbed = _URL.sub(_url, scrubbed)
    if _EMAIL_HINT.search(scrubbed):
        scrubbed = _EMAIL.sub(EMAIL, scrubbed)
    if _DIGIT.search(scrubbed):
        scrubbed = _NUMBER.sub(_number, scrubbed)
    if own_name and _may_name(scrubbed, own_name):
        pattern = name_pattern(own_name)
        if pattern is not None:
            scrubbed = pattern.sub(NAME, scrubbed)
    return scrubbed


def fit_text(text: str, max_length: int | None) -> str:
    """Cut to the column's length without leaving half a placeholder at the end."""
    if max_length is None or len(text) <= max_length:
        return text
    cut = text[:max_length]
    opening = cut.rfind("[")
    if opening != -1 and "]" not in cut[opening:]:
        cut = cut[:opening]
    return cut.rstrip()


def scrub_text(values: pd.Series, own_names: pd.Series | None = None, max_length: int | None = None) -> pd.Series:
    """`scrub_one` over a Series, with each row's own name taken from the aligned `own_names`."""
    mask = values.notna().to_numpy()
    texts = values[mask].astype(object).astype(str).tolist()
    if own_names is None:
        names: list[Any] = [None] * len(texts)
    else:
        names = own_names[mask].astype(object).where(own_names[mask].notna(), None).tolist()
    result = np.full(len(values), None, dtype=object)
    result[mask] = [
        fit_text(scrub_one(text, str(name) if name is not None else None), max_length)
        for text, name in zip(texts, names, strict=True)
    ]
    return output_series(result, values)


def _transform(values: pd.Series, ctx: Context, options: Mapping[str, Any]) -> pd.Series:
    return scrub_text(values, ctx.own_names, ctx.column.max_length)


SCRUB_TEXT = FunctionAnonymizer("scrub_text", TEXT_KINDS, _transform, uses_names=True)
