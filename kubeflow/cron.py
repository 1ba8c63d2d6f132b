"""Cron expressions as each scheduler reads them, checked before anything is sent.

The open-source KFP API server parses a recurring run's cron with robfig/cron v1.2.0 `cron.Parse`
(backend/src/apiserver/server/api_converter.go): SIX fields, seconds first, day-of-week optional.
So the familiar five-field `0 2 * * *` is accepted without complaint and means "second 0 of
minute 2 of every hour", not 02:00. `kfp_cron` therefore demands exactly six fields (or a
descriptor such as @daily) and explains the trap; Vertex AI schedules take standard five-field
cron, optionally prefixed with TZ=Area/City, which `vertex_cron` checks.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Dict, FrozenSet, Optional, Tuple

from models.errors import UserError

MAX_CONCURRENCY = 10  # the KFP API server refuses recurring runs outside 1..10


class CronError(ValueError):
    """The expression does not parse; the message is robfig/cron's own wording."""


@dataclasses.dataclass(frozen=True)
class Bounds:
    low: int
    high: int
    names: Optional[Dict[str, int]] = None


SECONDS, MINUTES, HOURS = Bounds(0, 59), Bounds(0, 59), Bounds(0, 23)
DOM = Bounds(1, 31)
MONTHS = Bounds(1, 12, {name: i + 1 for i, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))})
DOW = Bounds(0, 6, {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))})
FIELDS = (("second", SECONDS), ("minute", MINUTES), ("hour", HOURS), ("day of month", DOM),
          ("month", MONTHS), ("day of week", DOW))
DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")


@dataclasses.dataclass(frozen=True)
class Schedule:
    """The set of values each field matches (a descriptor keeps its text instead)."""

    fields: Tuple[FrozenSet[int], ...] = ()
    descriptor: Optional[str] = None

    def describe(self) -> str:
        if self.descriptor:
            return self.descriptor
        parts = []
        for (name, bounds), values in zip(FIELDS, self.fields):
            every = len(values) == bounds.high - bounds.low + 1
            parts.append(f"every {name}" if every else f"{name} {','.join(str(v) for v in sorted(values))}")
        if parts[3:] == ["every day of month", "every month", "every day of week"]:
            parts[3:] = ["every day"]
        return ", ".join(parts)


def _value(text: str, bounds: Bounds, expr: str) -> int:
    if bounds.names and text.lower() in bounds.names:
        return bounds.names[text.lower()]
    try:
        number = int(text)
    except ValueError:
        raise CronError(f"Failed to parse int from {text}: {expr}") from None
    if number < 0:
        raise CronError(f"Negative number ({number}) not allowed: {expr}")
    return number


def _field(text: str, bounds: Bounds) -> FrozenSet[int]:
    """robfig getField: comma-separated `*`, `?`, `a`, `a-b`, each with an optional `/step`."""
    values = set()
    for expr in filter(None, text.split(",")):
        range_and_step = expr.split("/")
        if len(range_and_step) > 2:
            raise CronError(f"Too many slashes: {expr}")
        low_high = range_and_step[0].split("-")
        if low_high[0] in ("*", "?"):
            start, end = bounds.low, bounds.high
        else:
            if len(low_high) > 2:
                raise CronError(f"Too many hyphens: {expr}")
            start = _value(low_high[0], bounds, expr)
            end = _value(low_high[1], bounds, expr) if len(low_high) == 2 else start
        step = 1
        if len(range_and_step) == 2:
            step = _value(range_and_step[1], Bounds(0, 0), expr)
            if len(low_high) == 1:  # "N/step" means "N-max/step"
                end = bounds.high
        if start < bounds.low:
            raise CronError(f"Beginning of range ({start}) below minimum ({bounds.low}): {expr}")
        if end > bounds.high:
            raise CronError(f"End of range ({end}) above maximum ({bounds.high}): {expr}")
        if start > end:
            raise CronError(f"Beginning of range ({start}) beyond end of range ({end}): {expr}")
        if step == 0:
            raise CronError(f"Step of range should be a positive number: {expr}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def parse(expr: str, with_seconds: bool = True) -> Schedule:
    """robfig/cron v1.2.0: `Parse` (with_seconds: 5 or 6 fields, seconds first, day of week
    optional) or `ParseStandard` (exactly 5 fields); both accept descriptors."""
    if not expr:
        raise CronError("Empty spec string")
    if expr.startswith("@"):
        if expr in DESCRIPTORS or (expr.startswith("@every ") and _GO_DURATION.match(expr[len("@every "):])):
            return Schedule(descriptor=expr)
        raise CronError(f"Unrecognized descriptor: {expr}" if not expr.startswith("@every ")
                        else f"Failed to parse duration {expr}")
    fields = expr.split()
    low, high = (5, 6) if with_seconds else (5, 5)
    if not low <= len(fields) <= high:
        raise CronError(f"Expected exactly {low} fields, found {len(fields)}: {expr}" if low == high
                        else f"Expected {low} to {high} fields, found {len(fields)}: {expr}")
    if with_seconds and len(fields) == 5:
        fields = fields + ["*"]      # the optional day of week
    if not with_seconds:
        fields = ["0"] + fields      # ParseStandard fixes seconds at 0
    return Schedule(fields=tuple(_field(text, bounds) for text, (_, bounds) in zip(fields, FIELDS)))


def kfp_cron(expr: str) -> str:
    """The expression for a KFP recurring run, refused unless it has six fields (or is a descriptor)."""
    expr = " ".join(expr.split())
    if not expr.startswith("@") and len(expr.split()) != 6:
        reading = ""
        try:
            reading = f", which KFP would read as \"{parse(expr).describe()}\""
        except CronError:
            pass
        hint = (f"; to mean what five-field cron means, write '0 {expr}'" if len(expr.split()) == 5
                else "; for 02:00 every day write '0 0 2 * * *'")
        raise UserError(f"KFP cron takes six fields, seconds first (second minute hour day-of-month month "
                        f"day-of-week), but '{expr}' has {len(expr.split())}{reading}{hint}.")
    try:
        parse(expr)
    except CronError as err:
        raise UserError(f"The cron expression '{expr}' is not valid for KFP: {err}.") from err
    return expr


def vertex_cron(expr: str) -> str:
    """The expression for a Vertex AI schedule: five-field cron, optionally `TZ=Area/City ` first."""
    expr = " ".join(expr.split())
    body = expr
    if expr.startswith(("TZ=", "CRON_TZ=")):
        body = expr.split(" ", 1)[1] if " " in expr else ""
    if not body.startswith("@") and len(body.split()) != 5:
        raise UserError(f"Vertex AI cron takes five fields (minute hour day-of-month month day-of-week), "
                        f"optionally after TZ=Area/City, but '{expr}' has {len(body.split())}; for 02:00 UTC "
                        "every day write 'TZ=Etc/UTC 0 2 * * *'.")
    try:
        parse(body, with_seconds=False)
    except CronError as err:
        raise UserError(f"The cron expression '{expr}' is not valid for Vertex AI: {err}.") from err
    return expr


def kfp_max_concurrency(value: int) -> int:
    if not 1 <= value <= MAX_CONCURRENCY:
        raise UserError(f"max concurrency must be between 1 and {MAX_CONCURRENCY} (the KFP API server refuses "
                        f"other values), not {value}.")
    return value
