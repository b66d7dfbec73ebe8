"""A webhook payload -> the Job to do, or the reason it is ignored. Pure: no I/O.

Handled: ``issues`` opened / edited / labeled (with the opt-in label) and ``issue_comment``
created / edited. Ignored: everything else, comments on pull requests (an App with the Issues
permission may not write there), senders that are bots (our own replies among them), bodies that
carry our marker, and bodies that ask nothing. An edit is worth a job when the new body asks
something or the old one did: then our earlier reply is updated (or says nothing is asked now).

The payload is checked for the fields we read; a missing or mistyped one raises
MalformedPayload, which the webhook answers with 400.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from adapters.github.commands import may_ask
from adapters.github.reply import MARKER_OPEN

OPT_IN_LABEL = "fits"  # on an issue: also answer plain-text questions there


class MalformedPayload(ValueError):
    """The payload lacks a field the event always has, or has it with the wrong type."""


@dataclass(frozen=True)
class Ignored:
    reason: str


@dataclass(frozen=True)
class Job:
    """One body to answer, and where the answer goes."""

    action: str  # opened, created: nothing of ours can be there yet; edited, labeled: maybe
    owner: str
    repo: str
    repo_id: int
    number: int  # the issue
    source: Literal["issue", "issue-comment"]  # what asked: the issue's body or a comment
    source_id: int  # the issue number, or the comment id
    created_at: str  # of the source: our reply is newer, so comments are listed from here
    updated_at: str  # of the source: a reply to an older version never overwrites a newer one
    title: str  # the issue's title for an issue, "" for a comment
    body: str
    free_text: bool  # the issue carries the opt-in label
    sender_login: str
    sender_id: int
    installation_id: int | None  # set when the delivery comes from a GitHub App

    @property
    def reply_key(self) -> str:
        """What our reply's marker names: one reply per issue body or per comment."""
        return f"{self.source}:{self.source_id}"

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"


# --- reading the payload --------------------------------------------------------------------------


def _get(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise MalformedPayload(f"The payload's {where}.{key} is missing or not valid.")
    return value


def _obj(obj: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value: dict[str, Any] = _get(obj, key, dict, where)
    return value


def _body(obj: dict[str, Any], where: str) -> str:
    body = obj.get("body")
    if body is not None and not isinstance(body, str):
        raise MalformedPayload(f"The payload's {where}.body is not text.")
    return body or ""


def _labels(issue: dict[str, Any]) -> set[str]:
    labels = issue.get("labels") or []
    if not isinstance(labels, list):
        raise MalformedPayload("The payload's issue.labels is not a list.")
    return {label["name"].lower() for label in labels
            if isinstance(label, dict) and isinstance(label.get("name"), str)}


def _previous_body(data: dict[str, Any]) -> str | None:
    """The body before an edit, when the edit changed it (``changes.body.from``)."""
    changes = data.get("changes")
    if not isinstance(changes, dict) or not isinstance(changes.get("body"), dict):
        return None
    before = changes["body"].get("from")
    return before if isinstance(before, str) else None


def plain_questions_wanted(owner: str, repo: str, repositories: frozenset[str]) -> bool:
    """Whether a repository opted in to plain questions on every issue: its ``owner/name`` or
    ``owner/*`` is among ``repositories`` (GITHUB_PLAIN_QUESTIONS, lower case)."""
    owner, repo = owner.lower(), repo.lower()
    return f"{owner}/{repo}" in repositories or f"{owner}/*" in repositories


@dataclass(frozen=True)
class Delivery:
    """What every handled event carries, read and checked once."""

    event: str
    action: str
    data: dict[str, Any]
    issue: dict[str, Any]
    repository: dict[str, Any]
    owner: dict[str, Any]
    sender: dict[str, Any]
    installation_id: int | None
    free_text: bool  # plain questions are read here (the opt-in label, or the repository)


@dataclass(frozen=True)
class Source:
    """The text that asks: an issue's title and body, or a comment."""

    kind: Literal["issue", "issue-comment"]
    obj: dict[str, Any]
    id: int
    title: str


Handler = Callable[[Delivery], "Source | Ignored"]


class Router:
    """Handlers registered by event and action (bedevere's pattern): supporting another event
    is one more registered function, never another branch in ``interpret``."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str], Handler] = {}

    def register(self, event: str, *actions: str) -> Callable[[Handler], Handler]:
        def add(handler: Handler) -> Handler:
            for action in actions:
                self._handlers[(event, action)] = handler
            return handler

        return add

    def events(self) -> frozenset[str]:
        return frozenset(event for event, _ in self._handlers)

    def handler(self, event: str, action: str) -> Handler | None:
        return self._handlers.get((event, action))


router = Router()


@router.register("issues", "opened", "edited")
def issue_body(delivery: Delivery) -> Source | Ignored:
    issue = delivery.issue
    return Source("issue", issue, _get(issue, "number", int, "issue"),
                  _get(issue, "title", str, "issue"))


@router.register("issues", "labeled")
def issue_labeled(delivery: Delivery) -> Source | Ignored:
    """Adding the opt-in label asks fits to read the issue's plain text now."""
    label = delivery.data.get("label")
    if not isinstance(label, dict) or str(label.get("name", "")).lower() != OPT_IN_LABEL:
        return Ignored("another label was added")
    return issue_body(delivery)


@router.register("issue_comment", "created", "edited")
def comment(delivery: Delivery) -> Source | Ignored:
    obj = _obj(delivery.data, "comment", "payload")
    return Source("issue-comment", obj, _get(obj, "id", int, "comment"), "")


def interpret(event: str, data: Any,
              plain_repositories: frozenset[str] = frozenset()) -> Job | Ignored:
    """What to do with one delivery (see the module docstring). Plain questions are read on
    issues with the opt-in label, and on every issue of ``plain_repositories``."""
    if event not in router.events():
        return Ignored(f"the {event} event is not handled")
    if not isinstance(data, dict):
        raise MalformedPayload("The payload is not a JSON object.")
    action = _get(data, "action", str, "payload")
    handler = router.handler(event, action)
    if handler is None:
        return Ignored(f"{event}.{action} is not handled")
    delivery = _delivery(event, action, data, plain_repositories)
    if isinstance(delivery, Ignored):
        return delivery
    source = handler(delivery)
    if isinstance(source, Ignored):
        return source
    return _job(delivery, source)


def _delivery(event: str, action: str, data: dict[str, Any],
              plain_repositories: frozenset[str]) -> Delivery | Ignored:
    issue = _obj(data, "issue", "payload")
    repository = _obj(data, "repository", "payload")
    owner = _obj(repository, "owner", "repository")
    sender = _obj(data, "sender", "payload")
    installation = data.get("installation")
    installation_id = installation.get("id") if isinstance(installation, dict) else None
    if installation_id is not None and not isinstance(installation_id, int):
        raise MalformedPayload("The payload's installation.id is not a number.")
    if issue.get("pull_request"):
        return Ignored("comments on pull requests are not answered")
    if sender.get("type") == "Bot":
        return Ignored("the sender is a bot")
    free_text = OPT_IN_LABEL in _labels(issue) or plain_questions_wanted(
        str(owner.get("login", "")), str(repository.get("name", "")), plain_repositories)
    return Delivery(event, action, data, issue, repository, owner, sender, installation_id,
                    free_text)


def _job(delivery: Delivery, source: Source) -> Job | Ignored:
    """The job for a source, unless it asks nothing (now, and before an edit)."""
    body = _body(source.obj, "issue" if source.kind == "issue" else "comment")
    if MARKER_OPEN in body:
        return Ignored("the body is one of our replies")
    free_text = delivery.free_text
    asks = may_ask(f"{source.title}\n{body}", free_text=free_text)
    if delivery.action == "edited":
        changes = delivery.data.get("changes")
        read = {"body", "title"} if free_text else {"body"}  # the title is read as free text
        if isinstance(changes, dict) and not read & set(changes):
            return Ignored("the edit changed nothing we read")
        before = _previous_body(delivery.data)
        asks = asks or (before is not None and may_ask(before, free_text=free_text))
    if not asks:
        return Ignored("nothing is asked")
    repository, owner, sender = delivery.repository, delivery.owner, delivery.sender
    return Job(
        action=delivery.action,
        owner=_get(owner, "login", str, "repository.owner"),
        repo=_get(repository, "name", str, "repository"),
        repo_id=_get(repository, "id", int, "repository"),
        number=_get(delivery.issue, "number", int, "issue"),
        source=source.kind, source_id=source.id,
        created_at=_get(source.obj, "created_at", str, source.kind),
        updated_at=_get(source.obj, "updated_at", str, source.kind),
        title=source.title, body=body, free_text=free_text,
        sender_login=_get(sender, "login", str, "sender"),
        sender_id=_get(sender, "id", int, "sender"),
        installation_id=delivery.installation_id,
    )
