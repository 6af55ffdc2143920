"""Normalising identifiers and turning them into keyed tokens, so people can be matched without raw values."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Sequence

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


EMAIL_MAX_CHARS = 254
"""RFC 5321: no longer address can be delivered to."""


EMAIL_LOCAL_MAX_CHARS = 64


_EMAIL_LOCAL_SPECIALS = frozenset('()<>[]:;,\\"')
"""Characters an address has only inside quotes; unquoted they are pasting slips (`<a@b.dk>`, `mailto:`, `a@b.dk,`)."""


_EMAIL_FIX = "give the address as the person wrote it, e.g. name@example.com"


def _invisible(text: str) -> bool:
    """Control characters and invisible format characters (zero-width space, BOM): nobody types them on purpose."""
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


def _empty(value: str, fix: str) -> str | None:
    if value.strip():
        return None
    return f"{'is empty' if not value else 'holds only spaces'}; {fix}"


def _domain_label_ok(label: str) -> bool:
    """Letters of any script (with their combining marks), digits, hyphens and underscores."""
    return bool(label) and all(ch.isalnum() or ch in "-_" or unicodedata.category(ch).startswith("M") for ch in label)


def email_problem(value: str) -> str | None:
    """What makes `value` no e-mail address, in words that never repeat it; None if it is one.

    Deliberately lenient where real addresses vary (any script, `+` tags, dots): one @, something before it, a
    domain with a dot after it, no spaces, nothing invisible and none of the characters that only a quoted local
    part or a slip of the mouse puts there. Surrounding spaces are allowed: the normaliser drops them."""
    empty = _empty(value, "give the person's e-mail address, e.g. name@example.com")
    if empty:
        return empty
    text = unicodedata.normalize("NFKC", value).strip()

    def bad(why: str, fix: str = _EMAIL_FIX) -> str:
        return f"is not an e-mail address ({why}); {fix}"

    if any(ch.isspace() for ch in text):
        return bad("it holds a space", "give the address alone, without spaces or a name, e.g. name@example.com")
    if _invisible(text):
        return bad("it holds a control or invisible character", "type the address again rather than pasting it")
    if "@" not in text:
        return bad("it has no @")
    if text.count("@") > 1:
        return bad("it has more than one @", "give one address, e.g. name@example.com")
    local, domain = text.split("@")
    if not local:
        return bad("it has nothing before the @")
    if not domain:
        return bad("it has no domain after the @")
    if len(text) > EMAIL_MAX_CHARS:
        return bad(f"it has {len(text):,} characters; an address has at most {EMAIL_MAX_CHARS}")
    if len(local) > EMAIL_LOCAL_MAX_CHARS:
        return bad(f"its part before the @ has more than {EMAIL_LOCAL_MAX_CHARS} characters")
    if _EMAIL_LOCAL_SPECIALS.intersection(local):
        return bad(
            'its part before the @ holds one of ( ) < > [ ] : ; , \\ "',
            "give the address alone, without name, brackets or mailto:, e.g. name@example.com",
        )
    if "." not in domain:
        return bad("its domain has no dot", "give the whole domain, e.g. name@example.com")
    labels = domain.split(".")
    if not all(labels):
        return bad("its domain starts or ends with a dot or has two dots in a row")
    if not all(_domain_label_ok(label) for label in labels):
        return bad("its domain holds a character no domain has; a domain has letters, digits, hyphens and dots")
    return None


def _phone_reason(text: str, region: str) -> str | None:
    """Why the number cannot be a phone number when read in `region`; None if it can."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        return {
            phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "no country has its country code",
            phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
            phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
            phonenumbers.NumberParseException.TOO_LONG: "too long",
        }.get(exc.error_type, "not a number")
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason == phonenumbers.ValidationResult.IS_POSSIBLE:
        return None
    return {
        phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "no area code",
        phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "no country has its country code",
        phonenumbers.ValidationResult.TOO_SHORT: "too short",
        phonenumbers.ValidationResult.TOO_LONG: "too long",
    }.get(reason, "a length no number of its country has")


def _phone_example(region: str) -> str:
    example = phonenumbers.example_number(region)
    if example is None:
        return "+45 32 12 34 56"
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def phone_problem(value: str, regions: Sequence[str] = (DEFAULT_REGION,)) -> str | None:
    """What makes `value` no phone number, in words that never repeat it; None if it is one.

    Any format people type is accepted (spaces, dashes, dots, brackets, slashes, `+` or `00` before the country
    code) as long as the number is a possible one read in one of the estate's `regions` (a number with its
    country code is read as that country's). Letters are refused: an extension or a name cannot be looked up."""
    regions = list(regions) or [DEFAULT_REGION]
    example = _phone_example(regions[0])
    empty = _empty(value, f"give the person's phone number, e.g. {example}")
    if empty:
        return empty
    text = unicodedata.normalize("NFKC", value).strip()
    fix = f"give the number's digits, e.g. {example}"
    if any(ch.isalpha() for ch in text):
        return f"is not a phone number (it holds letters); {fix}"
    if any(not (ch.isdecimal() or ch.isspace() or ch in "+-.()/") for ch in text):
        return f"is not a phone number (it holds characters other than digits, spaces, + - . ( ) /); {fix}"
    if not any(ch.isdecimal() for ch in text):
        return f"is not a phone number (it has no digits); {fix}"
    reasons = [_phone_reason(text, region) for region in regions]
    if None in reasons:
        return None
    where = regions[0] if len(regions) == 1 else ", ".join(regions[:-1]) + " or " + regions[-1]
    return (
        f"is not a possible phone number in {where} ({reasons[0]}); give it with its country code "
        f"if it is from elsewhere, e.g. {example}"
    )


def customer_number_problem(value: str) -> str | None:
    """What makes `value` no customer number: nothing left once spaces are dropped, or invisible characters."""
    empty = _empty(value, "give the person's customer number as it stands on an invoice or in the account")
    if empty:
        return empty
    if _invisible(re.sub(r"\s+", "", unicodedata.normalize("NFKC", value))):
        return "holds a control or invisible character; type the customer number again rather than pasting it"
    return None


def identifier_problem(kind: IdentifierKind, value: str, regions: Sequence[str] = (DEFAULT_REGION,)) -> str | None:
    """What makes `value` no identifier of its `kind` (`regions`: the estate's phone regions), worded to follow
    the option's name and never repeating the value, which may be personal data; None if it is one."""
    if kind is IdentifierKind.EMAIL:
        return email_problem(value)
    if kind is IdentifierKind.PHONE:
        return phone_problem(value, regions)
    return customer_number_problem(value)


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
