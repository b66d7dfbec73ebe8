"""GitHub issues: /fits lines (and, where a repository opts in, plain questions) in issues and
issue comments are answered with one Markdown comment that later edits update.

    commands.py   the questions in a body: /fits lines, and a free-text question (model + GPU)
    events.py     a webhook payload -> the Job to do, or why it is ignored
    webhook.py    the signed delivery -> event name, delivery id and payload (gidgethub)
    reply.py      the comment: one section per question, a hidden marker, trimmed to the limit
    client.py     GitHub's REST API (gidgethub): token or App auth, find/create/update the reply
"""
