"""What every request and response body shares: ids, days, the as_of bounds, the base
of request bodies (an unknown field is a 422) and of reasons."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from features.schemas import CONTROL_CHARACTERS, EARLIEST_DATE
from models.legal import legal_tables

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
EARLIEST_AS_OF = EARLIEST_DATE.date()
#: The first day a legal table is in force (models/config/legal_nl.json): routes that
#: apply legal amounts (protected minimum, WIK costs) cannot answer for an earlier day.
EARLIEST_LEGAL_AS_OF = max(EARLIEST_AS_OF, legal_tables()[0].effective_from)

# Control characters (C0 and DEL). PostgreSQL text cannot hold NUL at all, and none of
# them belongs in an id; a free text may hold line breaks and tabs, never the rest.
CONTROL = re.compile(CONTROL_CHARACTERS)  # what ingest refuses in an id, too
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: The JSON-schema form of "no control characters" (documents the rule for clients and
#: lets the schema fuzz test generate both sides of it).
NO_CONTROL_PATTERN = r"^[^\x00-\x1f\x7f]*$"
NO_CONTROL_IN_TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


def no_control_characters(value: str) -> str:
    """``value`` unless it holds a control character (U+0000-U+001F, U+007F)."""
    if CONTROL.search(value) is not None:
        raise ValueError("must not contain control characters (U+0000-U+001F, U+007F)")
    return value


def no_control_characters_in_text(value: str) -> str:
    """``value`` unless it holds a control character other than tab, LF or CR."""
    if _CONTROL_IN_TEXT.search(value) is not None:
        raise ValueError(
            "must not contain control characters other than tab, line feed and carriage "
            "return (no U+0000)"
        )
    return value


#: An id (customer, reviewer): 1-64 characters, no control characters.
CustomerId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(no_control_characters),
    Field(json_schema_extra={"pattern": NO_CONTROL_PATTERN}),
]


def _written_day(value: Any) -> Any:
    # pydantic alone reads a number as seconds since 1970 (so 0 was 1 Jan 1970, a
    # plausible birth date); a day in a request is only ever written out.
    if not isinstance(value, str | date):
        raise ValueError("a day is written as YYYY-MM-DD")
    return value


#: A calendar day in a request body: ``YYYY-MM-DD``, never a number.
Day = Annotated[date, BeforeValidator(_written_day)]


def today() -> date:
    """The calendar day in the Netherlands (the service's notion of "now")."""
    return datetime.now(AMSTERDAM).date()


def check_as_of(value: date | None, earliest: date = EARLIEST_AS_OF, why: str = "") -> date | None:
    """``value`` if it lies from ``earliest`` to tomorrow (Europe/Amsterdam); otherwise a
    ``ValueError`` that names both bounds (``why`` says where ``earliest`` comes from)."""
    if value is None:
        return value
    latest = date.fromordinal(today().toordinal() + 1)
    if not earliest <= value <= latest:
        since = f"{earliest} ({why})" if why else str(earliest)
        raise ValueError(f"as_of must be between {since} and {latest} (tomorrow); got {value}")
    return value


class RequestModel(BaseModel):
    """Base of every request body: an unknown field is a 422 naming it, not ignored (a
    misspelt optional field would otherwise silently fall back to its default)."""

    model_config = ConfigDict(extra="forbid")


class ReasonBase(BaseModel):
    """A reason as code and texts (English and Dutch). The base of the reason families
    whose items carry nothing else; each family keeps its own schema name, so a client
    generated from the OpenAPI document gets one type per name."""

    code: str
    text_en: str
    text_nl: str
