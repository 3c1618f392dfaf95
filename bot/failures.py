"""Failures nobody planned for, told to the person by a short reference and logged under it.

The reference (8 hex digits) is in the person's "something went wrong" message and in the log line, so an operator
can find the one from the other. The log line carries the traceback's frames and exception types but never an
exception's message: messages quote data (an SQL statement's parameters, a driver's DETAIL line with the
duplicate value, a name or a phone number a handler was working on), and personal data never reaches a log."""

from __future__ import annotations

import logging
import secrets
import traceback

REFERENCE_BYTES = 4  # 8 hex digits: short enough to read out over the phone, enough to find one line


def failure_reference() -> str:
    return secrets.token_hex(REFERENCE_BYTES)


def traceback_without_messages(error: BaseException) -> str:
    """The chain of exceptions (causes first) as Python prints it, with each exception's type but not its message."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    parts: list[str] = []
    for index, exc in enumerate(reversed(chain)):
        if index:
            parts.append("\nwhich led to:\n")
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_list(traceback.extract_tb(exc.__traceback__)))
        parts.append(f"{type(exc).__module__}.{type(exc).__qualname__} (message not logged)\n")
    return "".join(parts).rstrip("\n")


def log_failure(logger: logging.Logger, reference: str, error: BaseException, doing: str) -> None:
    """One ERROR line: "failure REFERENCE while DOING", then the traceback without messages. ``doing`` names
    kinds of things (an event's type, a channel), never their content."""
    logger.error("failure %s while %s\n%s", reference, doing, traceback_without_messages(error))
