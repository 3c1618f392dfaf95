"""Notices, the application side: turning a published notice into one outbox message per recipient in their
language (fan-out), the daily digest, the scheduled "notice.send" and "notice.digest" jobs, and the author's
progress message. The rules (who receives what, muting, cancelling) live in community.notices."""
