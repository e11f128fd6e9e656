"""Free text on the bus must not carry personal data: refuse text that looks like an e-mail or a phone number.

Public events are kept forever and read by other teams, so a contact's e-mail address or phone number
typed into a reason or a comment would outlive the contact's erasure (the customers service seals
contact details per customer, so that erasure is a key deletion; text in events cannot be erased).
:func:`personal_data_in` is the heuristic the contract's free-text types (``Reason``, ``LongText``)
apply. Names cannot be told from ordinary words, so they stay the producers' duty.

The phone heuristic must not flag ordinary business text: invoice and order numbers (``C536379``,
``order 12345678``), quantities, dates (``2011-12-09``), times, money (``1,234.50 GBP``). It flags a run
of digits, spaces, hyphens and parentheses (not glued to a word, a decimal point, a comma, a colon or a
slash; ISO dates and times are ignored) that has 8 to 15 digits and one of these shapes:

* international: a leading ``+`` (``+86-138-0000-7732``, ``+4420 7946 0958``), or a first group starting
  with ``00`` followed by more groups (``0044 20 7946 0958``);
* an area code in parentheses (``(020) 7946 0958``), unless it is a year (``ref (2011) 12 09``);
* national with a trunk ``0`` and at least 9 digits in two or more groups (``020 7946 0958``, ``010-12345678``);
* at least 9 digits in three or more groups of 2–4 digits, one of them of 4, the last of 3 or 4
  (``138 0000 7733``, ``555-123-4567``) — unless every group is a year (``2010 2011 2012``);
* a Chinese mobile number written without separators: 11 digits ``1[3-9]…`` (``13800007733``).
"""

from __future__ import annotations

import re
from typing import Any

_ADVICE = (
    "public events must not carry personal data — record contact details on a contact, "
    "where they are sealed and erasable"
)

_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]++[@＠][\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")

#: Eight digits with nothing but phone separators between them: what every phone number has, and most
#: text has not — a cheap first look (free text is validated in every event the consumers decode).
_EIGHT_DIGITS = re.compile(r"\d(?:[() \u00a0-]*\d){7}")
#: ISO dates with an optional time, and times: masked before looking for phone numbers.
_DATE_OR_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:?\d{2})?)?|\d{1,2}:\d{2}(?::\d{2})?"
)
#: A candidate: digits with spaces, hyphens and parentheses between them, optionally after a "+".
_RUN = re.compile(r"(?<![\w+.,:/])(?:\+|\()?\d(?:[\d() \u00a0-]*[\d)])?(?!\w|[.,:/]\d)")
_GROUP = re.compile(r"\d+")
_AREA_CODE = re.compile(r"\(\s?\+?\d{1,5}\s?\)")
_CHINESE_MOBILE = re.compile(r"1[3-9]\d{9}")
_YEAR = re.compile(r"(?:19|20)\d\d")


def personal_data_in(text: str) -> str | None:
    """Why ``text`` may not go on the bus (what it seems to contain, where, and why not), or None."""
    if "@" in text or "＠" in text:
        email = _EMAIL.search(text)
        if email is not None:
            return f"looks like an e-mail address (at character {email.start() + 1}); {_ADVICE}"
    phone = _phone_number_at(text)
    if phone is not None:
        return f"looks like a phone number (at character {phone + 1}); {_ADVICE}"
    return None


class PersonalDataFound(ValueError):
    """What :func:`refuse_personal_data` raises: a ValueError, so pydantic reports it as a field error, and
    a type of its own, so that whoever handles the refusal can tell it from the others (a dead letter
    withholds the text it refused, see :func:`withhold_personal_data`)."""


def refuse_personal_data(text: str) -> str:
    """A pydantic after-validator: ``text`` unchanged, or a :class:`PersonalDataFound` saying what was found."""
    problem = personal_data_in(text)
    if problem is not None:
        raise PersonalDataFound(problem)
    return text


#: What :func:`withhold_personal_data` puts in place of a string that looks like personal data.
WITHHELD = "[withheld: personal data]"


def withhold_personal_data(document: Any) -> tuple[Any, list[str]]:
    """A copy of a parsed JSON ``document`` in which every string value that looks like personal data is
    :data:`WITHHELD`, and the JSON Pointers (RFC 6901) of the strings withheld, in document order.

    Every string is looked at, not only the contract's free-text fields: the document was refused, so which
    field is which is not known. Object keys are kept. Walks iteratively, so any depth JSON parsers accept
    is fine.
    """
    withheld: list[str] = []
    root: list[Any] = [document]
    # (container, key, JSON Pointer of container[key]); children are pushed in reverse to visit in order
    stack: list[tuple[Any, Any, str]] = [(root, 0, "")]
    while stack:
        container, key, pointer = stack.pop()
        value = container[key]
        if isinstance(value, str):
            if personal_data_in(value) is not None:
                container[key] = WITHHELD
                withheld.append(pointer)
        elif isinstance(value, dict):
            copy = dict(value)
            container[key] = copy
            stack.extend((copy, k, f"{pointer}/{_escape(k)}") for k in reversed(list(copy)))
        elif isinstance(value, list):
            items = list(value)
            container[key] = items
            stack.extend((items, i, f"{pointer}/{i}") for i in reversed(range(len(items))))
    return root[0], withheld


def _escape(key: str) -> str:
    """An object key as a JSON Pointer reference token (RFC 6901 §3)."""
    return key.replace("~", "~0").replace("/", "~1")


def _phone_number_at(text: str) -> int | None:
    """Index of the first run of ``text`` that looks like a phone number, or None."""
    if _EIGHT_DIGITS.search(text) is None:
        return None
    masked = _DATE_OR_TIME.sub(lambda m: "_" * len(m.group()), text)
    for run in _RUN.finditer(masked):
        if looks_like_phone_number(run.group()):
            return run.start()
    return None


def looks_like_phone_number(run: str) -> bool:
    """Whether a run of digits, spaces, hyphens and parentheses has the shape of a phone number."""
    groups = _GROUP.findall(run)
    digits = sum(len(g) for g in groups)
    if not 8 <= digits <= 15:
        return False
    if run.startswith("+") or (groups[0].startswith("00") and len(groups) > 1):
        return True
    area_code = _AREA_CODE.search(run)
    if area_code and len(groups) > 1 and not _YEAR.search(area_code.group()):  # "ref (2011) 12 09" is a year
        return True
    if len(groups) == 1:
        return _CHINESE_MOBILE.fullmatch(groups[0]) is not None
    if digits < 9:
        return False
    if groups[0].startswith("0"):
        return True
    return (
        len(groups) >= 3
        and all(2 <= len(g) <= 4 for g in groups)
        and any(len(g) == 4 for g in groups)
        and len(groups[-1]) >= 3
        and not all(_YEAR.fullmatch(g) for g in groups)
    )
