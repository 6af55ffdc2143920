"""A subject request's input is checked at the door (`register_request`, and the CLI before it): identifiers
parse for their kind, the moment of receipt lies between 2000 and now, request ids are positive 32-bit numbers.
Each refusal is one line naming the option, saying what is wrong and how to fix it, and never repeating the
identifier, which is personal data."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from retention.config.catalog import IdentifierKind
from retention.requests.model import MAX_IDENTIFIER_CHARS
from retention.requests.register import (
    MAX_REQUEST_ID,
    RequestInputError,
    check_identifier,
    check_identifiers,
    check_received,
    parse_request_id,
)

EMAIL, PHONE, NUMBER = IdentifierKind.EMAIL, IdentifierKind.PHONE, IdentifierKind.CUSTOMER_NUMBER
CPH = ZoneInfo("Europe/Copenhagen")
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)

ACCEPTED = [
    (EMAIL, "someone@example.dk", ["DK"]),
    (EMAIL, " Anne.Hansen@Example.dk ", ["DK"]),  # the demo's messy spellings: spaces around, capitals
    (EMAIL, "ANNE_HANSEN@MAIL.EXAMPLE.COM", ["DK"]),
    (EMAIL, "o'brien+news@example.ie", ["DK"]),
    (EMAIL, "  ZOË.ÑANDÚ+ТЕСТ@例え.テスト ", ["DK"]),
    (
        EMAIL,
        "\u0938\u0902\u092a\u0930\u094d\u0915@\u0909\u0926\u093e\u0939\u0930\u0923.\u092d\u093e\u0930\u0924",
        ["DK"],
    ),
    (EMAIL, "ｎａｍｅ＠ｅｘａｍｐｌｅ．ｄｋ", ["DK"]),  # full-width, as NFKC reads it
    (PHONE, "+45 12 34 56 78", ["DK"]),
    (PHONE, "12345678", ["DK"]),
    (PHONE, "0045 1234 5678", ["DK"]),
    (PHONE, "12 34 56 78", ["DK"]),
    (PHONE, "+4512345678", ["DK"]),
    (PHONE, "(+45) 12-34-56-78", ["DK"]),
    (PHONE, "12.34.56.78", ["DK"]),
    (PHONE, "12/34 56 78", ["DK"]),
    (PHONE, "+1 202 555 0100", ["DK"]),  # a number with its country code is read as that country's
    (PHONE, "07700 900123", ["DK", "GB"]),  # national format in the estate's second region
    (PHONE, "030 901820", ["GB", "DE"]),
    (NUMBER, "C-10023", ["DK"]),
    (NUMBER, " c 100 23 ", ["DK"]),
    (NUMBER, "C-ΩMEGA-7", ["DK"]),
    (NUMBER, '" OR 1=1 --', ["DK"]),  # data, matched by keyed token only
]


@pytest.mark.parametrize(("kind", "value", "regions"), ACCEPTED, ids=[f"{k.value}:{v!r}" for k, v, _ in ACCEPTED])
def test_identifiers_people_type_are_accepted(kind: IdentifierKind, value: str, regions: list[str]) -> None:
    check_identifier(kind, value, regions)


REFUSED = [
    # (kind, value, regions, the expected message, whole)
    (EMAIL, "", ["DK"], "--email is empty; give the person's e-mail address, e.g. name@example.com"),
    (EMAIL, "   ", ["DK"], "--email holds only spaces; give the person's e-mail address, e.g. name@example.com"),
    (EMAIL, "\t\n", ["DK"], "--email holds only spaces"),
    (
        EMAIL,
        "notanemail",
        ["DK"],
        "--email is not an e-mail address (it has no @); give the address as the person wrote it, "
        "e.g. name@example.com",
    ),
    (EMAIL, "anne@@example.dk", ["DK"], "--email is not an e-mail address (it has more than one @)"),
    (EMAIL, "a@b.dk@c.dk", ["DK"], "--email is not an e-mail address (it has more than one @)"),
    (EMAIL, "@example.dk", ["DK"], "--email is not an e-mail address (it has nothing before the @)"),
    (EMAIL, "anne@", ["DK"], "--email is not an e-mail address (it has no domain after the @)"),
    (EMAIL, "anne@localhost", ["DK"], "--email is not an e-mail address (its domain has no dot)"),
    (EMAIL, "anne@example..dk", ["DK"], "(its domain starts or ends with a dot or has two dots in a row)"),
    (EMAIL, "anne@.example.dk", ["DK"], "(its domain starts or ends with a dot or has two dots in a row)"),
    (EMAIL, "anne@example.dk.", ["DK"], "(its domain starts or ends with a dot or has two dots in a row)"),
    (EMAIL, "anne@example.dk,", ["DK"], "(its domain holds a character no domain has;"),
    (EMAIL, "anne@exa$mple.dk", ["DK"], "(its domain holds a character no domain has;"),
    (EMAIL, "anne hansen@example.dk", ["DK"], "--email is not an e-mail address (it holds a space)"),
    (EMAIL, "Anne Hansen <anne@example.dk>", ["DK"], "(it holds a space); give the address alone"),
    (EMAIL, "<anne@example.dk>", ["DK"], '(its part before the @ holds one of ( ) < > [ ] : ; , \\ ")'),
    (EMAIL, "mailto:anne@example.dk", ["DK"], "(its part before the @ holds one of"),
    (EMAIL, "x');DROP@example.dk", ["DK"], "(its part before the @ holds one of"),
    (EMAIL, "x'); DROP TABLE customers; --", ["DK"], "--email is not an e-mail address (it holds a space)"),
    (EMAIL, "anne\u200b@example.dk", ["DK"], "(it holds a control or invisible character)"),
    (EMAIL, "anne\x00@example.dk", ["DK"], "(it holds a control or invisible character)"),
    (EMAIL, "a" * 65 + "@example.dk", ["DK"], "(its part before the @ has more than 64 characters)"),
    (EMAIL, "a@" + "b" * 300 + ".dk", ["DK"], "(it has 305 characters; an address has at most 254)"),
    (EMAIL, "a\ud800b@example.dk", ["DK"], "--email is not valid text (it holds a lone surrogate)"),
    (EMAIL, "x" * (MAX_IDENTIFIER_CHARS + 1), ["DK"], "--email has 65,537 characters; at most 65,536"),
    (PHONE, "", ["DK"], "--phone is empty; give the person's phone number, e.g. +45 32 12 34 56"),
    (PHONE, "  ", ["DK"], "--phone holds only spaces"),
    (PHONE, "+45 1", ["DK"], "--phone is not a possible phone number in DK (too short); give it with its country"),
    (PHONE, "1234", ["DK"], "--phone is not a possible phone number in DK (too short)"),
    (PHONE, "123456789012", ["DK"], "--phone is not a possible phone number in DK (too long)"),
    (PHONE, "+45 12 34 56 78 9", ["DK"], "--phone is not a possible phone number in DK (too long)"),
    (PHONE, "12", ["DK", "GB", "DE"], "--phone is not a possible phone number in DK, GB or DE (too short)"),
    (PHONE, "12", ["DE"], "--phone is not a possible phone number in DE (no area code)"),
    (PHONE, "+999 12345678", ["DK"], "--phone is not a possible phone number in DK (no country has its country code)"),
    (PHONE, "00", ["DK"], "--phone is not a possible phone number in DK (too short)"),
    (PHONE, "+45 CALL ME", ["DK"], "--phone is not a phone number (it holds letters); give the number's digits"),
    (PHONE, "+45 12345678 ext 12", ["DK"], "--phone is not a phone number (it holds letters)"),
    (PHONE, "12345678;--", ["DK"], "--phone is not a phone number (it holds characters other than digits"),
    (PHONE, "'; DELETE FROM subject_requests", ["DK"], "--phone is not a phone number (it holds letters)"),
    (PHONE, "+--()", ["DK"], "--phone is not a phone number (it has no digits)"),
    (PHONE, "1" * 300, ["DK"], "--phone is not a possible phone number in DK (too long)"),
    (NUMBER, "", ["DK"], "--customer-number is empty; give the person's customer number as it stands on an invoice"),
    (NUMBER, " \t ", ["DK"], "--customer-number holds only spaces"),
    (NUMBER, "C-1\x07", ["DK"], "--customer-number holds a control or invisible character"),
]


@pytest.mark.parametrize(
    ("kind", "value", "regions", "message"), REFUSED, ids=[f"{k.value}:{v[:30]!r}" for k, v, _, _ in REFUSED]
)
def test_refusals_say_what_is_wrong_in_one_line_without_the_value(
    kind: IdentifierKind, value: str, regions: list[str], message: str
) -> None:
    with pytest.raises(RequestInputError) as caught:
        check_identifier(kind, value, regions)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text, "one line"
    assert text.startswith(("--email ", "--phone ", "--customer-number ")), "the option is named first"
    if len(value.strip()) >= 4:
        assert value.strip() not in text, "the identifier is not repeated"


def test_a_refusal_is_a_value_error_and_every_identifier_is_checked() -> None:
    with pytest.raises(ValueError, match="at least one identifier"):
        check_identifiers({})
    with pytest.raises(ValueError, match="--phone is not a possible phone number"):
        check_identifiers({EMAIL: "someone@example.dk", PHONE: "1"})
    check_identifiers({EMAIL: "someone@example.dk", PHONE: "+45 12 34 56 78", NUMBER: "C-1"})


@pytest.mark.parametrize(
    ("received", "message"),
    [
        (dt.datetime(1, 1, 1, tzinfo=CPH), "--received 0001-01-01 is before 2000-01-01; give the day the request"),
        (dt.datetime(1999, 12, 31, 23, 59, tzinfo=CPH), "--received 1999-12-31 23:59 is before 2000-01-01"),
        (dt.datetime(9999, 12, 31, tzinfo=CPH), "--received 9999-12-31 is in the future; give the day the request"),
        (dt.datetime(9999, 12, 31, 23, 59, tzinfo=ZoneInfo("America/New_York")), "is in the future"),
        (dt.datetime(2026, 3, 2, tzinfo=CPH), "--received 2026-03-02 is in the future"),
        (dt.datetime(2026, 3, 1, 13, 10, tzinfo=CPH), "--received 2026-03-01 13:10 is in the future"),
        (dt.datetime(9999, 12, 31), "--received 9999-12-31 is in the future"),  # naive: read as UTC
    ],
)
def test_moments_of_receipt_out_of_bounds_are_refused(received: dt.datetime, message: str) -> None:
    with pytest.raises(RequestInputError) as caught:
        check_received(received, CPH, now=NOW)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_moments_of_receipt_in_bounds_are_kept_in_utc() -> None:
    assert check_received(None, CPH, now=NOW) == NOW
    assert check_received(dt.datetime(2000, 1, 1, tzinfo=CPH), CPH, now=NOW) == dt.datetime(
        1999, 12, 31, 23, 0, tzinfo=dt.UTC
    )
    assert check_received(dt.datetime(2026, 1, 2, tzinfo=CPH), CPH, now=NOW).tzinfo == dt.UTC
    skewed = NOW + dt.timedelta(minutes=4)  # another machine's clock a little ahead
    assert check_received(skewed, CPH, now=NOW) == skewed
    with pytest.raises(RequestInputError, match="in the future"):
        check_received(NOW + dt.timedelta(minutes=6), CPH, now=NOW)


@pytest.mark.parametrize("text", ["1", "12", " 7 ", "0007", str(MAX_REQUEST_ID)])
def test_request_ids_in_range_are_read(text: str) -> None:
    assert parse_request_id(text) == int(text)


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "-1",
        "000",
        "",
        " ",
        "abc",
        "1.5",
        "1e3",
        "+3",
        "#3",
        "٣",
        "²",
        str(MAX_REQUEST_ID + 1),
        "9" * 20,
        "9" * 5000,
    ],
)
def test_request_ids_out_of_range_are_refused_in_one_line(text: str) -> None:
    with pytest.raises(RequestInputError) as caught:
        parse_request_id(text)
    assert str(caught.value) == (
        "request ids are positive whole numbers up to 2147483647; `retention request list` shows the register"
    )
