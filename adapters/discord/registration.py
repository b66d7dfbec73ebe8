"""Whether Discord already holds our command definitions, and registering them over REST for the
HTTP endpoint's mode (the gateway bot registers through discord.py's tree).

Discord's copy comes back with ids, versions and defaults filled in, so the two are compared on
what a user sees: names, descriptions, option types, choices, ranges, autocomplete.
"""

from __future__ import annotations

from typing import Any

from adapters.discord.rest import DiscordRest

_COMMAND_KEYS = ("name", "description", "type", "options", "default_member_permissions", "nsfw")
_OPTION_KEYS = ("type", "name", "description", "required", "choices", "autocomplete",
                "min_value", "max_value", "min_length", "max_length", "channel_types", "options")
_DEFAULTS: dict[str, Any] = {"type": 1, "required": False, "autocomplete": False, "nsfw": False,
                             "options": [], "choices": [], "default_member_permissions": None}


def commands_match(ours: list[dict[str, Any]], registered: list[dict[str, Any]]) -> bool:
    """True when ``registered`` (Discord's GET) defines the same commands as ``ours``."""
    return ([_shape(c, _COMMAND_KEYS) for c in sorted(ours, key=_name)]
            == [_shape(c, _COMMAND_KEYS) for c in sorted(registered, key=_name)])


def _name(command: dict[str, Any]) -> str:
    return str(command.get("name"))


def _shape(item: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in keys:
        value = item.get(key, _DEFAULTS.get(key))
        if key == "options":
            value = [_shape(o, _OPTION_KEYS) for o in value or []]
        elif key == "choices":
            value = [(c.get("name"), c.get("value")) for c in value or []]
        if value != _DEFAULTS.get(key):
            out[key] = value
    return out


async def register_commands(rest: DiscordRest, application_id: str, guild_id: int | None,
                            definitions: list[dict[str, Any]]) -> bool:
    """Put ``definitions`` in place (one guild, or global) unless Discord has them already;
    True when they were written. Raises DiscordApiError."""
    path = (f"/applications/{application_id}/guilds/{guild_id}/commands" if guild_id
            else f"/applications/{application_id}/commands")
    registered = await rest.request("GET", path, bot_auth=True)
    if isinstance(registered, list) and commands_match(definitions, registered):
        return False
    await rest.request("PUT", path, json=definitions, bot_auth=True)
    return True
