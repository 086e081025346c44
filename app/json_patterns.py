"""Regular expressions for the OpenAPI document, written in the subset that ECMA-262, Python
and Rust agree on (ASCII classes, no look-around), so every validator reads them alike."""

from __future__ import annotations

from datetime import date

_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_MONTH = "(?:0[1-9]|1[0-2])"
_DAY = "(?:0[1-9]|[12][0-9]|3[01])"
# FIRST_DAY to LAST_DAY of app.fields: 1900-01-01 to 2999-12-31.
ANY_DAY = f"^(?:19|2[0-9])[0-9]{{2}}-{_MONTH}-{_DAY}$"
# The API's one timestamp format: UTC, second precision, Z.
UTC_SECOND = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
# Unicode White_Space: what pydantic's strip_whitespace strips.
_BLANK = (
    "\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
)


def stripped_text(max_length: int) -> str:
    """Strings that, once stripped of surrounding White_Space, hold 1 to `max_length`
    characters: the length is in the pattern, since the keywords would count the blanks."""
    inner = f"(?:[\\s\\S]{{0,{max_length - 2}}}[^{_BLANK}])?" if max_length > 1 else ""
    return f"^[{_BLANK}]*[^{_BLANK}]{inner}[{_BLANK}]*$"


def id_pattern(prefix: str) -> str:
    """A resource id: its type prefix, an underscore and a lower-case UUID."""
    return f"^{prefix}_{_UUID}$"


def digits_between(low: str, high: str) -> str:
    """A regex for the digit strings of one width from `low` to `high`, both included."""
    if low == high:
        return low
    if len(low) == 1:
        return f"[{low}-{high}]"
    rest = len(low) - 1
    if low[0] == high[0]:
        return low[0] + _group(digits_between(low[1:], high[1:]))
    parts = [low[0] + _group(digits_between(low[1:], "9" * rest))]
    if int(high[0]) - int(low[0]) > 1:
        between = _digit_class(int(low[0]) + 1, int(high[0]) - 1)
        parts.append(between + ("[0-9]" if rest == 1 else f"[0-9]{{{rest}}}"))
    parts.append(high[0] + _group(digits_between("0" * rest, high[1:])))
    return "|".join(parts)


def _group(pattern: str) -> str:
    return f"(?:{pattern})" if "|" in pattern else pattern


def _digit_class(low: int, high: int) -> str:
    return str(low) if low == high else f"[{low}-{high}]"


def date_pattern(first: date, last: date) -> str:
    """YYYY-MM-DD from `first` to `last` (whole years between, then `last`'s own year up to
    its day; `first` must be a 1 January). Impossible days such as 02-30 are left to
    `format: date`."""
    year, month, day = f"{last.year:04d}", f"{last.month:02d}", f"{last.day:02d}"
    choices = []
    if last.year > first.year:
        years = digits_between(f"{first.year:04d}", f"{last.year - 1:04d}")
        choices.append(f"(?:{years})-{_MONTH}-{_DAY}")
    if last.month > 1:
        choices.append(f"{year}-(?:{digits_between('01', f'{last.month - 1:02d}')})-{_DAY}")
    choices.append(f"{year}-{month}-(?:{digits_between('01', day)})")
    return "^(?:" + "|".join(choices) + ")$"
