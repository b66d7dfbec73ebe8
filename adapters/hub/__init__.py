"""The Hugging Face Hub as a platform, like Discord and Slack: the I/O half of the Hub path.

core holds the protocol (core.hub_protocol: what to ask for and how to read it; core.hub_records:
the typed records; core.hub_resolve: what a record means for the answer). This package moves the
bytes and keeps them:

- settings: HubSettings, read from the environment in one place (the CLI and the service);
- client: huggingface_hub calls in daemon threads (threads), retried with backoff within a
  deadline (retry), every failure mapped to one of the errors in errors, whose reason the
  answer can carry;
- fetch: one repo's record, from the calls client makes;
- cache: the single-flight cache of JSON (memory, disk; Redis in bot/redis_store.py);
- storage: how Hub answers are kept there (keys, the records' codec, how long);
- resolve, search: the async entry points, resolve_model / resolve_hub / find_models;
- answer: estimate_command_async, an estimate with the Hub.

huggingface_hub is imported only when the Hub is really asked: the CLI answers bundled models
without loading it.
"""
