"""The one reminder (S3) and provider-requested resends (S4)."""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum

#: S3: a reminder goes 5 days or more after the first send.
REMINDER_AFTER = timedelta(days=5)


class ReminderDecision(StrEnum):
    """What the daily reminder run does with one sent bundle (S3)."""

    SEND = "send"
    WAIT = "wait"
    ANSWERED = "vastattu"
    WINDOW_CLOSED = "vastausaika_loppunut_ennen_muistutusta"
    ALREADY_REMINDED = "already_reminded"


def reminder_decision(
    *,
    first_sent: date,
    today: date,
    vastattu: bool,
    last_answer_day: date,
    reminder_sent: bool,
) -> ReminderDecision:
    """S3: one reminder, 5 days or more after the first send, if Arvo says not answered
    and today ≤ the last answer day; never a second one.

    An answer is reported whenever Arvo has one; "window closed" only while no reminder
    went out, since it is the status `vastausaika_loppunut_ennen_muistutusta`.
    """
    if vastattu:
        return ReminderDecision.ANSWERED
    if reminder_sent:
        return ReminderDecision.ALREADY_REMINDED
    if today > last_answer_day:
        return ReminderDecision.WINDOW_CLOSED
    if today - first_sent < REMINDER_AFTER:
        return ReminderDecision.WAIT
    return ReminderDecision.SEND


def resend_allowed(today: date, last_answer_day: date) -> bool:
    """S4: a provider may have a link resent (validity unchanged) until the window closes."""
    return today <= last_answer_day
