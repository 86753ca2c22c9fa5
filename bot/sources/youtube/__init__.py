"""YouTube beyond the feed: the addresses the bot builds from ``[youtube]
base_url``, the Shorts check, the watch page's playability, and the Data
API's live-streaming details. Fetching only: what the answers mean for an
announcement is decided by ``bot.holds``."""
