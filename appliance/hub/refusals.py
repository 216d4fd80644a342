"""Refusals as sentences about the CHCP's form (issue 14), and metadata names in their
language.

DHIS2's own text ("Value must match value type of data element `x`:
`value_not_zero_or_positive_integer` (E7619)") stays in the API's WebMessages, which clients
parse; the pages show ``refusal_words`` and keep DHIS2's text and code in a details line for
the IT focal point. The entry page's script has the same sentences (hub.js, through t()).
"""

from __future__ import annotations

import re
from typing import Any

from ..dhis2.fields import translated
from ..i18n import N_, Tr
from ..store.metadata import MetadataIndex

# DHIS2's value-type check keys (dhis2/valuetypes.py) -> what goes in the cell
VALUE_WORDS = {
    "value_not_zero_or_positive_integer": N_("Only whole numbers of zero or more go here."),
    "value_not_positive_integer": N_("Only whole numbers of one or more go here."),
    "value_not_negative_integer": N_("Only whole numbers below zero go here."),
    "value_not_integer": N_("Only whole numbers go here."),
    "value_not_numeric": N_("Only a number goes here."),
    "value_not_percentage": N_("Only a percentage from 0 to 100 goes here."),
    "value_not_unit_interval": N_("Only a number from 0 to 1 goes here."),
    "value_not_bool": N_("Choose yes or no."),
    "value_not_true_only": N_("Only a tick goes here."),
    "value_not_valid_date": N_("Enter a date."),
    "value_not_valid_datetime": N_("Enter a date and time."),
    "value_not_valid_time": N_("Enter a time."),
    "value_not_valid_option": N_("Choose one of the listed answers."),
    "value_length_greater_than_max_length": N_("This text is too long."),
    "value_not_phone_number": N_("Enter a phone number."),
    "value_not_valid_email": N_("Enter an email address."),
    "value_not_valid_age": N_("Enter an age."),
}
# DHIS2's import error codes -> why the form was refused
CODE_WORDS = {
    "E7610": N_("This item is not on the form any more."),
    "E7617": N_("You cannot enter data for this clinic."),
    "E7618": N_("This item cannot be entered for this clinic."),
    "E7620": N_("The comment is too long."),
    "E7621": N_("Choose one of the listed answers."),
    "E7633": N_("This item is not part of this form."),
    "E7638": N_("This form is closed for this month."),
    "E7639": N_("This form is closed for this month."),
    "E7640": N_("This month is closed: it is past the last day for entering it."),
    "E7641": N_("This month cannot be entered yet."),
    "E7642": N_("This form is approved and cannot be changed."),
    "E7643": N_("This form is not open for this month."),
    "E1303": N_("A required item is missing."),
}
_KEY = re.compile(r"\b(value_[a-z_]+)\b")


def refusal_words(code: str | None, message: str | None, tr: Tr) -> str:
    """The refusal as a sentence the CHCP understands; DHIS2's text when nothing fits."""
    m = _KEY.search(message or "")
    if m and m.group(1) in VALUE_WORDS:
        return tr(VALUE_WORDS[m.group(1)])
    if code and code in CODE_WORDS:
        return tr(CODE_WORDS[code])
    return tr("National did not accept this value.")


class Names:
    """Metadata names in the reader's language (DHIS2 translations when the metadata has
    them, else the stored name)."""

    def __init__(self, index: MetadataIndex, locale: str) -> None:
        self.index, self.locale = index, locale

    def name(self, uid: str | None, prop: str = "displayName") -> str:
        doc: dict[str, Any] = self.index.get(uid or "") or {}
        return (translated(doc, prop, self.locale) or doc.get(prop) or doc.get("name")
                or uid or "")
