"""Delivery of queued announcements. See ``dispatcher`` for the rules."""

from bot.outbox.dispatcher import DispatchReport, Outbox, new_owner
from bot.outbox.policy import DeliveryPolicy

__all__ = ["DeliveryPolicy", "DispatchReport", "Outbox", "new_owner"]
