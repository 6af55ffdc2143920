"""Normalising identifiers and turning them into keyed tokens, so people can be matched without raw values."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

import pandas as pd
import phonenumbers

from anonymizers.keys import Key
from retention.config.catalog import IdentifierKind

DEFAULT_REGION = "DK"


_NOT_DIGIT = re.compile(r"[^\d+]")


def normalise_email(value: str) -> str | None:
    text = unicodedata.normalize("NFKC", value).strip().lower()
    return text or None


def normalise_phone(value: str, region: str = DEFAULT_REGION) -> str | None:
    """E.164 where the number parses (Danish by default), else its digits, so formats do not split a person."""
    text = unicodedata.normalize("NFKC", value).strip()
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, region)
        if phonenumbers.is_possible_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    digits = _NOT_DIGIT.sub("", text)
    return digits or None


def normalise_customer_number(value: str) -> str | None:
    text = re.sub(r"\s+", "", unicodedata.normalize("NFKC", value)).upper()
    return text or None


NORMALISERS = {
    IdentifierKind.EMAIL: normalise_email,
    IdentifierKind.PHONE: normalise_phone,
    IdentifierKind.CUSTOMER_NUMBER: normalise_customer_number,
}


def normalise(kind: IdentifierKind, value: object, region: str = DEFAULT_REGION) -> str | None:
    """`region`: the country a phone number without its country code is read in (the source's locale)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if kind is IdentifierKind.PHONE:
        return normalise_phone(str(value), region)
    return NORMALISERS[kind](str(value))


def identifier_token(key: Key, kind: IdentifierKind, normalised: str) -> str:
    """A keyed token of one normalised identifier; a plain hash would be reversible by guessing."""
    digest = hmac.new(key.secret, f"identifier\x1f{kind.value}\x1f{normalised}".encode(), hashlib.sha256)
    return f"{kind.value[0]}:{digest.hexdigest()[:32]}"


def tokenise_series(key: Key, kind: IdentifierKind, values: pd.Series, region: str = DEFAULT_REGION) -> pd.Series:
    """Vectorised over distinct values: real tables repeat identifiers little, but chunks repeat None a lot."""
    out = pd.Series(None, index=values.index, dtype="object")
    present = values.dropna()
    if present.empty:
        return out
    tokens: dict[object, str | None] = {}
    for raw in present.unique():
        norm = normalise(kind, raw, region)
        tokens[raw] = identifier_token(key, kind, norm) if norm else None
    out.loc[present.index] = present.map(tokens)
    return out


def subject_key(key: Key, anchor_token: str) -> str:
    """The subject key of a person: keyed from the smallest identifier token of their identity group."""
    digest = hmac.new(key.secret, f"subject\x1f{anchor_token}".encode(), hashlib.sha256)
    return "s_" + digest.hexdigest()[:24]
