"""What a person reads about their rights in an access export, in Danish and in English (`controller.language`
of policy.yaml): the rights (Art 15(1)(e)), the right to complain (Art 15(1)(f), 77), where the data came from
(Art 15(1)(g)) and automated decisions (Art 15(1)(h)), and the export's README around them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from retention.config.policy import Language, Policy
from retention.requests.kinds import ARTICLE, RequestKind


@dataclass(frozen=True)
class Right:
    article: str
    text: str


RIGHTS = {
    Language.ENGLISH: (
        Right("Art 16", "rectification: to have inaccurate data about you corrected and incomplete data completed"),
        Right(ARTICLE[RequestKind.ERASURE], "erasure: to have your data erased where we have no reason to keep it"),
        Right(
            ARTICLE[RequestKind.RESTRICTION],
            "restriction: to have your data only stored while a question about it is settled",
        ),
        Right(
            "Art 21",
            "objection: to object to processing based on our legitimate interests, and at any time to direct marketing",
        ),
        Right("Art 20", "portability: to receive the data you gave us in a machine-readable form, as in this export"),
    ),
    Language.DANISH: (
        Right("Art 16", "berigtigelse: at få urigtige oplysninger om dig rettet og ufuldstændige oplysninger udfyldt"),
        Right(
            ARTICLE[RequestKind.ERASURE],
            "sletning: at få dine oplysninger slettet, når vi ikke længere har grund til at opbevare dem",
        ),
        Right(
            ARTICLE[RequestKind.RESTRICTION],
            "begrænsning: at vi kun opbevarer dine oplysninger, mens et spørgsmål om dem bliver afklaret",
        ),
        Right(
            "Art 21",
            "indsigelse: at gøre indsigelse mod behandling på grundlag af vores legitime interesser og til enhver "
            "tid mod direkte markedsføring",
        ),
        Right("Art 20", "dataportabilitet: at modtage de oplysninger, du har givet os, i et maskinlæsbart format"),
    ),
}

WORDS = {
    Language.ENGLISH: {
        "intro": "This archive holds a copy of the personal data {controller} keeps about you (GDPR Art 15 and 20).",
        "intro_unnamed": "This archive holds a copy of the personal data we keep about you (GDPR Art 15 and 20).",
        "files": (
            "export.json   everything, machine-readable (Art 20): each record with its purposes, legal basis and\n"
            "              the date until which it is kept, the recipients your data was shared with, our\n"
            "              retention schedule, where data not collected from you came from, and your rights\n"
            "<table>.csv   the same records, one file per table\n\n"
            "Password hashes are withheld for your security."
        ),
        "sources": "Where the data came from (Art 15(1)(g)):",
        "all_from_you": "All of it was collected from you.",
        "automated": "Automated decisions (Art 15(1)(h)):",
        "none_declared": "No decisions are made about you by automated means alone.",
        "rights": "Your rights:",
        "contact": "Send requests to {contact}.",
        "dpo": "Our data protection officer: {dpo}.",
        "complaint": "You may complain to {authority} (Art 77).",
        "complaint_unnamed": "You may complain to the data protection authority of your country (Art 77).",
    },
    Language.DANISH: {
        "intro": "Dette arkiv indeholder en kopi af de personoplysninger, {controller} har om dig "
        "(GDPR art. 15 og 20).",
        "intro_unnamed": "Dette arkiv indeholder en kopi af de personoplysninger, vi har om dig (GDPR art. 15 og 20).",
        "files": (
            "export.json   alt, maskinlæsbart (art. 20): hver post med formål, retsgrundlag og datoen, den\n"
            "              opbevares til, modtagerne af dine oplysninger, vores slettepolitik, hvor oplysninger,\n"
            "              vi ikke har fået fra dig, kommer fra, og dine rettigheder\n"
            "<tabel>.csv   de samme poster, én fil pr. tabel\n\n"
            "Adgangskoders hashværdier er udeladt af hensyn til din sikkerhed."
        ),
        "sources": "Hvor oplysningerne kommer fra (art. 15, stk. 1, litra g):",
        "all_from_you": "Alle oplysninger er indsamlet hos dig.",
        "automated": "Automatiske afgørelser (art. 15, stk. 1, litra h):",
        "none_declared": "Der træffes ingen afgørelser om dig alene på grundlag af automatisk behandling.",
        "rights": "Dine rettigheder:",
        "contact": "Send anmodninger til {contact}.",
        "dpo": "Vores databeskyttelsesrådgiver: {dpo}.",
        "complaint": "Du kan klage til {authority} (art. 77).",
        "complaint_unnamed": "Du kan klage til databeskyttelsesmyndigheden i dit land (art. 77).",
    },
}


def cite(article: str, language: Language) -> str:
    """An article as the language writes it: 'Art 17' in English, 'art. 17' in Danish."""
    return article.replace("Art ", "art. ", 1) if language is Language.DANISH else article


def language_of(policy: Policy) -> Language:
    return policy.controller.language if policy.controller else Language.ENGLISH


def complaint(policy: Policy) -> str:
    words = WORDS[language_of(policy)]
    if policy.controller is None:
        return words["complaint_unnamed"]
    return words["complaint"].format(authority=policy.controller.authority.describe())


def automated_decisions(policy: Policy) -> str:
    return policy.automated_decisions or WORDS[language_of(policy)]["none_declared"]


def export_readme(policy: Policy, sources: Mapping[str, str]) -> str:
    """The README of an access export: what the files hold, where data came from, automated decisions, the
    person's rights, where to send requests and where to complain."""
    language = language_of(policy)
    words = WORDS[language]
    controller = policy.controller
    intro = words["intro"].format(controller=controller.name) if controller else words["intro_unnamed"]
    lines = [intro, "", words["files"]]
    lines += ["", words["sources"]]
    lines += [f"  {table}: {text}" for table, text in sources.items()] or [f"  {words['all_from_you']}"]
    lines += ["", words["automated"], f"  {automated_decisions(policy)}", "", words["rights"]]
    lines += [f"  - {right.text} ({cite(right.article, language)})" for right in RIGHTS[language]]
    lines.append("")
    if controller is not None:
        lines.append(words["contact"].format(contact=controller.contact))
        if controller.dpo:
            lines.append(words["dpo"].format(dpo=controller.dpo))
    lines.append(complaint(policy))
    return "\n".join(lines) + "\n"
