"""Why a Hub call gave no answer, as the fetch code sees it: adapters/hub/client.py maps every
failure of huggingface_hub onto these, so nothing else needs to know the library's errors. Each
``reason`` completes the clause "the Hub ...", for the notes and sentences the answer carries."""

from __future__ import annotations


class HubCallError(Exception):
    """A Hub call that gave no usable answer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HubDown(HubCallError):
    """The Hub could not give an answer (unreachable, 429/5xx after retries, unreadable)."""


class BadToken(HubCallError):
    """401 "Invalid credentials": the Hub does not know the token."""

    def __init__(self) -> None:
        super().__init__("refused the HF_TOKEN given (invalid credentials)")


class RepoNotFound(HubCallError):
    """No such repo (404), or one the token may not see."""

    def __init__(self) -> None:
        super().__init__("has no such repo (or it is private)")


class Gated(HubCallError):
    """A gated repo, and no token with access to it."""

    def __init__(self) -> None:
        super().__init__("refused access: the repo is gated")


class FileNotFound(HubCallError):
    """The repo has no such file (EntryNotFound)."""

    def __init__(self) -> None:
        super().__init__("does not have the file")


class NoAccess(HubCallError):
    """A bare 401: a repo that does not exist or is private (the Hub does not say which)."""

    def __init__(self) -> None:
        super().__init__("refused access to it (401)")


class TooLarge(HubCallError):
    """A JSON file past the size limit; reading stopped there."""

    def __init__(self, filename: str, limit: int) -> None:
        super().__init__(f"sent a {filename} larger than {limit / 1e6:g} MB")
        self.filename = filename
        self.limit = limit


class BadJson(HubCallError):
    """A JSON file that is not JSON (``why``: truncated, nested too deeply, not an object)."""

    def __init__(self, filename: str, why: str) -> None:
        super().__init__(f"sent a {filename} that is {why}")
        self.why = why
