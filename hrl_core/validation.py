"""Checks that turn a bad option into an error naming the option and what it accepts."""

from __future__ import annotations

from typing import Any, Iterable


def check_choice(option: str, value: Any, allowed: Iterable[Any]) -> Any:
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"{option}={value!r} is not valid; allowed values: {', '.join(map(str, allowed))}")
    return value


def check_positive(option: str, value: Any, integer: bool = True) -> Any:
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        what = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{option}={value!r} is not valid; it must be {what}")
    return value


def check_keys(what: str, given: Iterable[str], allowed: Iterable[str]) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {what} option(s) {', '.join(unknown)}; allowed options: {', '.join(sorted(allowed))}")


def check_non_negative(option: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{option}={value!r} is not valid; it must be a non-negative integer")
    return value


def check_text(option: str, value: Any) -> Any:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{option}={value!r} is not valid; it must be a non-empty string")
    return value
