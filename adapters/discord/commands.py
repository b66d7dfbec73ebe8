"""The gateway bot: discord.py's client with the app_commands tree of /fits, /fits-help and
/fits-gpus. The command callbacks only collect the options and hand them to the shared
CommandHandler with a Responder over discord.py's interaction.

The tree is also the one definition of the commands: ``command_definitions`` gives their JSON
for the HTTP endpoint's registration. Registration runs at start-up and only when the
definitions differ from what Discord holds (Discord allows 200 command creates a day a guild).
"""

from __future__ import annotations

import io
import logging
from typing import Any, cast

import discord
from discord import app_commands

from adapters.discord.embed import Reply
from adapters.discord.flow import CommandHandler
from adapters.discord.options import (
    ENGINE_CHOICES,
    FITS,
    GPUS,
    HELP,
    HELP_TOPICS,
    MODE_CHOICES,
    QUANT_CHOICES,
    TRAIN_CHOICES,
    ConfigFile,
    caller_for,
)
from adapters.discord.registration import commands_match
from core.errors import UserError
from core.parser import MAX_MODEL_CHARS

log = logging.getLogger("fits.discord")


def _choices(pairs: tuple[tuple[str, str], ...]) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=name, value=value) for name, value in pairs]


def build_tree(client: discord.Client, handler: CommandHandler) -> app_commands.CommandTree:
    tree: app_commands.CommandTree = app_commands.CommandTree(client)

    @tree.command(name=FITS, description="Can my GPU run this LLM? Memory, verdict, speed.")
    @app_commands.describe(
        model="Hub id (meta-llama/Llama-2-7b-hf), a name (llama-2-7b) or a size (7b)",
        quant="Quantization; q4/q8 are read per engine", ctx="Context length: 4096, 8k, 128k",
        gpu="GPU: 4090, 24GB, 2x3090, a100-80g, m2-max-64gb", engine="Inference engine",
        mode="Inference (default) or training", train="Fine-tuning method (sets training)",
        batch="Batch size (sequences at once)",
        more="More options as key=value: kv=q8 util=0.85 tp=2 r=64 gc=on",
        config="A custom model's config.json (model then only names it)")
    @app_commands.choices(quant=_choices(QUANT_CHOICES), engine=_choices(ENGINE_CHOICES),
                          mode=_choices(MODE_CHOICES), train=_choices(TRAIN_CHOICES))
    async def fits(interaction: discord.Interaction,
                   model: app_commands.Range[str, 1, MAX_MODEL_CHARS],
                   quant: str | None = None, ctx: app_commands.Range[str, 1, 20] | None = None,
                   gpu: app_commands.Range[str, 1, 64] | None = None, engine: str | None = None,
                   mode: str | None = None, train: str | None = None,
                   batch: app_commands.Range[int, 1, 65536] | None = None,
                   more: app_commands.Range[str, 1, 300] | None = None,
                   config: discord.Attachment | None = None) -> None:
        options: dict[str, object] = {
            "model": model, "quant": quant, "ctx": ctx, "gpu": gpu, "engine": engine,
            "mode": mode, "train": train, "batch": batch, "more": more}
        await _respond(handler, interaction, FITS, options, config)

    @tree.command(name=HELP, description="How to ask fits: the options, quantizations, engines.")
    @app_commands.describe(topic="One topic in detail")
    @app_commands.choices(topic=_choices(HELP_TOPICS))
    async def fits_help(interaction: discord.Interaction, topic: str | None = None) -> None:
        await _respond(handler, interaction, HELP, {"topic": topic}, None)

    @tree.command(name=GPUS, description="Look up GPUs in the catalogue: memory, bandwidth.")
    @app_commands.describe(query="A name or a memory size: 4090, a100, mi300, 24GB")
    async def fits_gpus(interaction: discord.Interaction,
                        query: app_commands.Range[str, 1, 64] | None = None) -> None:
        await _respond(handler, interaction, GPUS, {"query": query}, None)

    async def complete(interaction: discord.Interaction, current: str,
                       ) -> list[app_commands.Choice[str]]:
        data: Any = interaction.data or {}
        command = str(data.get("name", ""))
        focused = next((o.get("name", "") for o in _options(interaction) if o.get("focused")), "")
        return [app_commands.Choice(name=c["name"], value=c["value"])
                for c in await handler.suggest(command, focused, current)]

    fits.autocomplete("model")(complete)
    fits.autocomplete("gpu")(complete)
    fits.autocomplete("ctx")(complete)
    fits_gpus.autocomplete("query")(complete)
    return tree


def _options(interaction: discord.Interaction) -> list[dict[str, Any]]:
    data: Any = interaction.data or {}
    return [o for o in data.get("options", []) if isinstance(o, dict)]


async def _respond(handler: CommandHandler, interaction: discord.Interaction, command: str,
                   options: dict[str, object], attachment: discord.Attachment | None) -> None:
    caller = caller_for(interaction.user.id, interaction.guild_id)
    config = _config_file(attachment) if attachment is not None else None
    await handler.respond(command, options, caller, GatewayResponder(interaction), config)


def _config_file(attachment: discord.Attachment) -> ConfigFile:
    async def read() -> bytes:
        try:
            return await attachment.read()
        except discord.HTTPException:
            raise UserError("The attachment could not be downloaded from Discord.",
                            "Attach the config.json again in a moment.") from None

    return ConfigFile(attachment.filename, attachment.size, read)


class GatewayResponder:
    """The shared flow's responses through discord.py's interaction."""

    def __init__(self, interaction: discord.Interaction) -> None:
        self.interaction = interaction

    async def reply(self, reply: Reply) -> None:
        content, embeds = _parts(reply)
        await self.interaction.response.send_message(content=content, embeds=embeds,
                                                      ephemeral=reply.ephemeral,
                                                      files=_files(reply))

    async def defer(self) -> None:
        await self.interaction.response.defer(thinking=True)

    async def edit(self, reply: Reply) -> None:
        content, embeds = _parts(reply)
        await self.interaction.edit_original_response(content=content, embeds=embeds,
                                                      attachments=_files(reply))

    async def replace_with_ephemeral(self, reply: Reply) -> None:
        await self.interaction.delete_original_response()
        content, embeds = _parts(reply)
        await self.interaction.followup.send(content=content or discord.utils.MISSING,
                                             embeds=embeds, ephemeral=True, files=_files(reply))


def _files(reply: Reply) -> list[discord.File]:
    return [discord.File(io.BytesIO(data), filename=name) for name, data in reply.files]


def _parts(reply: Reply) -> tuple[str | None, list[discord.Embed]]:
    """The content and embeds of a reply, trimmed to Discord's limits as the HTTP path sends."""
    message = reply.message()
    return message["content"] or None, [discord.Embed.from_dict(e) for e in message["embeds"]]


# --- the client -------------------------------------------------------------------------------------


class _FitsBot:
    """What the plain and the sharded client share: no intents (interactions need none), no
    mentions, the command tree, and registration at start-up."""

    tree: app_commands.CommandTree

    def __init__(self, handler: CommandHandler, *, guild_id: int | None = None,
                 **options: Any) -> None:
        super().__init__(intents=discord.Intents.none(),  # type: ignore[call-arg]
                         allowed_mentions=discord.AllowedMentions.none(), **options)
        self.guild_id = guild_id
        self.tree = build_tree(self, handler)  # type: ignore[arg-type]

    async def setup_hook(self) -> None:
        await sync_commands(self.tree, self.guild_id)


class FitsBot(_FitsBot, discord.Client):
    pass


class ShardedFitsBot(_FitsBot, discord.AutoShardedClient):
    pass


def build_client(handler: CommandHandler, *, guild_id: int | None = None,
                 shard_count: int | None = None, application_id: int | None = None,
                 **options: Any) -> discord.Client:
    """The gateway client: sharded (AutoShardedClient) when ``shard_count`` is given."""
    if application_id is not None:
        options["application_id"] = application_id
    if shard_count:
        return ShardedFitsBot(handler, guild_id=guild_id, shard_count=shard_count, **options)
    return FitsBot(handler, guild_id=guild_id, **options)


async def sync_commands(tree: app_commands.CommandTree, guild_id: int | None) -> None:
    """Register the commands with Discord (to one guild, or globally) unless Discord already
    holds the same definitions. A failure is logged: the bot still answers what is registered."""
    client = tree.client
    app_id = client.application_id
    guild = discord.Object(id=guild_id) if guild_id else None
    if guild is not None:
        tree.copy_global_to(guild=guild)
    where = f"guild {guild_id}" if guild_id else "global"
    ours = [command.to_dict(tree) for command in tree.get_commands(guild=guild)]
    try:
        assert app_id is not None  # login() sets it from the application
        registered = await (client.http.get_guild_commands(app_id, guild_id) if guild_id
                            else client.http.get_global_commands(app_id))
        if commands_match(ours, cast(list[dict[str, Any]], registered)):
            log.info("discord commands unchanged", extra={"fields": {"scope": where}})
            return
        await tree.sync(guild=guild)
        log.info("discord commands registered", extra={"fields": {
            "scope": where, "commands": [c["name"] for c in ours]}})
    except discord.HTTPException as exc:
        log.warning("could not register the Discord commands (HTTP %s, code %s); the bot "
                    "answers the ones already registered", exc.status, exc.code,
                    extra={"fields": {"scope": where}})


def command_definitions(handler: CommandHandler) -> list[dict[str, Any]]:
    """The commands' JSON, as the gateway bot registers them (for the HTTP endpoint's mode)."""
    client = discord.Client(intents=discord.Intents.none())
    tree = build_tree(client, handler)
    return [command.to_dict(tree) for command in tree.get_commands()]
