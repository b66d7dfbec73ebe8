"""The service's settings, from the environment and an optional `.env` file (pydantic-settings).

Only what the running service reads lives here: where to listen, how much to log, how long to let
in-flight requests finish on shutdown, and the Hub variables (the same names the CLI reads,
documented in `.env.example`). The Hub variables are read here as the text they hold and parsed by
adapters.hub.settings.HubSettings.from_env, the one parser the CLI uses too, so that both accept
exactly the same values. Secrets are ``SecretStr``: their repr and ``model_dump`` show
``**********``, so logging the settings never leaks them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.hub.settings import HubSettings

if TYPE_CHECKING:
    from bot.clients import Network

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8",
                                      env_ignore_empty=True, extra="ignore",
                                      case_sensitive=False, populate_by_name=True)

    host: str = Field(default="0.0.0.0", validation_alias="HOST")  # all interfaces: a container
    port: int = Field(default=8080, ge=1, le=65535, validation_alias="PORT")
    log_level: LogLevel = Field(default="INFO", validation_alias="LOG_LEVEL")
    shutdown_timeout_s: float = Field(default=10.0, ge=0.0, le=300.0,
                                      validation_alias="FITS_SHUTDOWN_TIMEOUT_S")

    rate_limit_per_minute: float = Field(default=60.0, gt=0, le=100_000,
                                         validation_alias="FITS_RATE_LIMIT_PER_MINUTE")
    rate_limit_burst: int = Field(default=20, ge=1, le=100_000,
                                  validation_alias="FITS_RATE_LIMIT_BURST")
    # A private deployment may switch the limits off; the default keeps them on.
    rate_limits: bool = Field(default=True, validation_alias="FITS_RATE_LIMITS")
    # Proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For names the API caller.
    trusted_proxies: str = Field(default="", validation_alias="FITS_TRUSTED_PROXIES")
    log_probes: bool = Field(default=False, validation_alias="FITS_LOG_PROBES")
    # Worker processes of `fits-bot serve`, each serving the same port through SO_REUSEPORT;
    # serve resolves "auto" (one per usable CPU) and sets the number for them.
    workers: int = Field(default=1, ge=1, le=256, validation_alias="FITS_WORKERS")
    # Which worker this process is (serve sets it): only the first keeps the connections that
    # one bot may hold once (the Discord gateway, Slack's Socket Mode, command registration).
    worker_index: int = Field(default=0, ge=0, le=255, validation_alias="FITS_WORKER_INDEX")
    # Answers kept for repeated questions (bundled models and sizes; per process). 0: none.
    report_cache_size: int = Field(default=4096, ge=0, le=1_000_000,
                                   validation_alias="FITS_REPORT_CACHE_SIZE")
    # Where the service is reachable from outside (https://fits.example.org): the web page's
    # share links and OpenGraph URL use it; unset, they are left out.
    public_url: str | None = Field(default=None, max_length=200, pattern=r"^https?://[^\s]+$",
                                   validation_alias="PUBLIC_URL")
    max_hub_fetches: int = Field(default=8, ge=1, le=1000, validation_alias="FITS_MAX_HUB_FETCHES")
    # Reports that may be slow (llama.cpp answers, very large uploads) run in worker processes,
    # each within a time budget (bot/compute.py).
    estimate_processes: int | None = Field(default=None, ge=1, le=64,
                                           validation_alias="FITS_ESTIMATE_PROCESSES")
    estimate_budget_s: float = Field(default=10.0, ge=0.5, le=120.0,
                                     validation_alias="FITS_ESTIMATE_BUDGET_S")

    # Shared state for several replicas (Hub cache, rate limits, de-duplication); unset:
    # in-process. Every Redis call gives up after the timeout; after a failure Redis is left
    # alone for the cooldown (bot/redis_store.py).
    redis_url: SecretStr | None = Field(default=None, validation_alias="REDIS_URL")
    redis_timeout_s: float = Field(default=0.25, gt=0, le=10, validation_alias="FITS_REDIS_TIMEOUT_S")
    redis_cooldown_s: float = Field(default=5.0, ge=0, le=600,
                                    validation_alias="FITS_REDIS_COOLDOWN_S")

    # The Hub's variables, as the text they hold: hub() parses them (adapters/hub/settings.py has
    # the rules). Code may pass typed values (HF_HUB_OFFLINE=True); they read as their text.
    hf_endpoint: str | None = Field(default=None, validation_alias="HF_ENDPOINT")
    # HF_TOKEN, or HUGGING_FACE_HUB_TOKEN when HF_TOKEN is empty (pydantic's alias choice); the
    # alias is also read on its own so that hub() applies the parser's rule for a blank HF_TOKEN.
    hf_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"))
    hugging_face_hub_token: SecretStr | None = Field(default=None,
                                                     validation_alias="HUGGING_FACE_HUB_TOKEN")
    hf_hub_offline: str | bool | None = Field(default=None, validation_alias="HF_HUB_OFFLINE")
    fits_cache_dir: str | None = Field(default=None, validation_alias="FITS_CACHE_DIR")
    fits_hub_deadline_s: str | float | None = Field(default=None,
                                                    validation_alias="FITS_HUB_DEADLINE_S")

    # Discord (issue 7). A bot token runs the gateway client in the service's event loop; a public
    # key enables the HTTP interactions endpoint POST /discord/interactions. Either needs the
    # application id to register the commands.
    discord_bot_token: SecretStr | None = Field(default=None, validation_alias="DISCORD_BOT_TOKEN")
    discord_application_id: str | None = Field(default=None,
                                               validation_alias="DISCORD_APPLICATION_ID")
    discord_public_key: str | None = Field(default=None, validation_alias="DISCORD_PUBLIC_KEY")
    # The REST base URL (tests, proxies); unset: discord.py's https://discord.com/api/v10.
    discord_api_url: str | None = Field(default=None, validation_alias="DISCORD_API_URL")
    # Sync the commands to this one guild (instant, for development); unset: globally.
    discord_guild_id: int | None = Field(default=None, validation_alias="DISCORD_GUILD_ID")
    # Shards for large bots; unset: one connection (Discord requires shards past 2,500 guilds).
    discord_shard_count: int | None = Field(default=None, ge=1, le=10_000,
                                            validation_alias="DISCORD_SHARD_COUNT")

    # Slack (issue 8). Bot token + signing secret: HTTP mode at POST /slack/events; add an app
    # token (xapp-...) for Socket Mode instead, without a public URL.
    slack_bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None,
                                                   validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    # The Web API base URL (tests, proxies), with its trailing slash; unset: slack_sdk's default.
    slack_api_url: str | None = Field(default=None, validation_alias="SLACK_API_URL")

    # GitHub (issue 9): POST /github/webhook, signed with the webhook secret; replies as a token
    # (GITHUB_TOKEN) or as a GitHub App (GITHUB_APP_ID + GITHUB_PRIVATE_KEY).
    github_webhook_secret: SecretStr | None = Field(default=None,
                                                    validation_alias="GITHUB_WEBHOOK_SECRET")
    github_token: SecretStr | None = Field(default=None, validation_alias="GITHUB_TOKEN")
    github_app_id: str | None = Field(default=None, validation_alias="GITHUB_APP_ID")
    github_private_key: SecretStr | None = Field(default=None,
                                                 validation_alias="GITHUB_PRIVATE_KEY")
    github_api_url: str = Field(default="https://api.github.com",
                                validation_alias="GITHUB_API_URL")
    # Repositories whose every issue also gets plain questions answered ("owner/name" or
    # "owner/*", comma-separated); elsewhere only issues with the label "fits" do.
    github_plain_questions: str = Field(default="", validation_alias="GITHUB_PLAIN_QUESTIONS")

    @field_validator("workers", mode="before")
    @classmethod
    def _auto_workers(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("", "auto"):
            from bot.cpus import usable_cpus

            return min(256, usable_cpus())
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_readable(cls, value: str) -> str:
        from bot.clients import parse_networks

        parse_networks(value)
        return value

    def proxy_networks(self) -> tuple[Network, ...]:
        from bot.clients import parse_networks

        return parse_networks(self.trusted_proxies)

    @field_validator("redis_url")
    @classmethod
    def _redis_url_readable(cls, value: SecretStr | None) -> SecretStr | None:
        # The message never repeats the URL: it may carry a password.
        if value is None:
            return None
        from redis.connection import parse_url

        url = value.get_secret_value().strip()
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("it must start with redis://, rediss:// or unix://, as in "
                             "redis://redis:6379/0")
        try:
            parse_url(url)  # type: ignore[no-untyped-call]
        except (ValueError, TypeError):
            raise ValueError("it is not a Redis URL such as redis://redis:6379/0") from None
        return SecretStr(url)

    def github_plain_repositories(self) -> frozenset[str]:
        return frozenset(part.strip().lower() for part in self.github_plain_questions.split(",")
                         if part.strip())

    def secrets(self) -> list[str]:
        """Every secret value that is set, for the log formatter to redact wherever it appears."""
        values = [self.hf_token, self.hugging_face_hub_token, self.redis_url,
                  self.discord_bot_token, self.slack_bot_token,
                  self.slack_signing_secret, self.slack_app_token, self.github_webhook_secret,
                  self.github_token, self.github_private_key]
        return [v.get_secret_value().strip() for v in values
                if v is not None and v.get_secret_value().strip()]

    def hub(self) -> HubSettings:
        """The Hub settings, parsed by the CLI's parser from what was read here; the token is
        unwrapped only here. Raises UserError (one sentence naming the variable) for a value
        it cannot take."""
        return HubSettings.from_env({
            "HF_ENDPOINT": _text(self.hf_endpoint), "HF_TOKEN": _secret(self.hf_token),
            "HUGGING_FACE_HUB_TOKEN": _secret(self.hugging_face_hub_token),
            "HF_HUB_OFFLINE": _text(self.hf_hub_offline),
            "FITS_CACHE_DIR": _text(self.fits_cache_dir),
            "FITS_HUB_DEADLINE_S": _text(self.fits_hub_deadline_s)})


def _text(value: str | float | None) -> str | None:
    """A variable's text; a typed value (True, 2.5) reads as the text that spells it."""
    return None if value is None else str(value)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
