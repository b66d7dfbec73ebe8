"""The Discord surface: the /fits, /fits-help and /fits-gpus slash commands.

Two ways in, one way through. The gateway bot (commands.py, discord.py) and the HTTP
interactions endpoint (interactions.py, raw payloads) both turn a command's options into the
command language (options.py), answer through the shared flow (flow.py: answer now or defer,
then edit), render one embed (embed.py) and complete options the same way (autocomplete.py).
Only commands.py imports discord.py, and only when the gateway or the command definitions are
needed.
"""
