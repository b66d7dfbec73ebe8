"""The Slack surface: the `/fits` slash command and `@fits` mentions on slack_bolt's AsyncApp.

- ``command``: what a user typed, made into command text (Slack's escaping and markup undone, the
  bot's mention and the ``public`` word taken out);
- ``blocks``: an Answer (or a UserError) rendered as a Block Kit message within Slack's limits;
- ``listeners``: the bolt listeners that answer through the AnswerService.

Wiring (tokens, routes, Socket Mode, metrics) lives in bot/slack_surface.py.
"""
