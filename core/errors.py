"""The one error family users see. Its message is the sentence shown on every surface."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or an answer we cannot give: one clear sentence plus, where possible, a hint.

    Adapters render ``message`` and ``hint`` as they are; nothing else of an exception reaches a user.
    """

    def __init__(self, message: str, hint: str | None = None, *,
                 config_helps: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        # The model's own config.json would let fits answer. How to give one differs by surface
        # (a CLI flag, a Discord attachment, a JSON field; Slack and GitHub take none), so the
        # surface adds that sentence itself: ``hint_with``.
        self.config_helps = config_helps

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message

    def hint_with(self, config_way: str | None) -> str | None:
        """The hint, plus ``config_way`` (this surface's way to give a config.json) when a
        config would help."""
        if not (self.config_helps and config_way):
            return self.hint
        return f"{self.hint} {config_way}" if self.hint else config_way


class ModelNotFound(UserError):
    """The model text matched nothing we can resolve; ``suggestions`` holds near misses."""

    def __init__(self, message: str, hint: str | None = None, suggestions: list[str] | None = None,
                 *, config_helps: bool = False):
        super().__init__(message, hint, config_helps=config_helps)
        self.suggestions = suggestions or []


class RateLimited(UserError):
    """One caller (a user, a workspace, a guild, an API client) asked too often."""

    def __init__(self, retry_after: float, who: str = "you") -> None:
        wait = max(1, round(retry_after))
        super().__init__(f"You are asking faster than fits answers {who}.",
                         f"Try again in {wait} s.")
        self.retry_after = retry_after
