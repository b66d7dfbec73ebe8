"""Mount the chat surfaces that the settings enable on the service's aiohttp app.

Each surface module exposes ``mount(app, settings) -> str``: it adds its routes and background
tasks when its credentials are set and returns the line the start-up log shows ("on (...)" or
"off (set X to enable)"). A surface imports its platform library only when it is enabled.
"""

from __future__ import annotations

from aiohttp import web

from bot.settings import Settings


def mount_surfaces(app: web.Application, settings: Settings) -> list[tuple[str, str]]:
    states = [("JSON API", "on (/api/v1/fits, /healthz, /readyz, /metrics)")]
    # Surface modules register here, one line each (Discord, Slack, GitHub).
    from bot import discord_surface

    states.append(("Discord", discord_surface.mount(app, settings)))
    from bot import slack_surface

    states.append(("Slack", slack_surface.mount(app, settings)))
    from bot import github_surface

    states.append(("GitHub", github_surface.mount(app, settings)))
    return states
