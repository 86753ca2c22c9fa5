"""The operators' HTTP server: probes, metrics and the moderators' status page (server.py)."""
