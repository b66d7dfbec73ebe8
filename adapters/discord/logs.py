"""Keep interaction tokens out of discord.py's log lines, and its warnings about what this bot
leaves out on purpose out of them altogether.

An interaction token lets anyone answer as the bot for 15 minutes. discord.py writes request URLs
(which hold it: /interactions/{id}/{token}/callback, /webhooks/{app}/{token}) and, at DEBUG,
every gateway event (whose payload holds it) to its loggers. The service's formatter already
redacts the bot token; this filter masks interaction tokens on the loggers that write them.
"""

from __future__ import annotations

import logging
import re

LOGGERS = ("discord.http", "discord.gateway", "discord.webhook.async_", "discord.client",
           "discord.state", "discord.shard", "discord.app_commands.tree")
_IN_URL = re.compile(r"(/(?:interactions|webhooks)/\d+/)[A-Za-z0-9._~:-]+")
_IN_PAYLOAD = re.compile(r"""(['"]token['"]\s*:\s*['"])[^'"]+""")
MASK = "[redacted]"


def redact(text: str) -> str:
    return _IN_PAYLOAD.sub(rf"\g<1>{MASK}", _IN_URL.sub(rf"\g<1>{MASK}", text))


# Slash commands need no intents and no voice: these start-up warnings would only alarm.
EXPECTED_WARNINGS = ("Guilds intent seems to be disabled",
                     "is not installed, voice will NOT be supported")


class InteractionTokenFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.levelno == logging.WARNING and any(w in message for w in EXPECTED_WARNINGS):
            return False
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def install() -> None:
    """Add the filter to discord.py's loggers, once."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, InteractionTokenFilter) for f in logger.filters):
            logger.addFilter(InteractionTokenFilter())
