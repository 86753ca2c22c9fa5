"""Chaos suite (issue #10): ``showbot run`` as a real process against fake chat
platforms in another real process, with SIGKILLs, outages, 429 storms and a
full disk. The promise under test: every announcement reaches every channel
exactly once and in publication order.

- ``platforms``: the fake Discord + Slack server process (``python -m tests.chaos.platforms``)
- ``harness``: the driver (config, bot processes, kills, restarts, logs)
- ``verdict``: exactly-once / order analysis of what the fakes recorded
"""
