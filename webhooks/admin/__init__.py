"""The operator's admin: the message log and the conversations, read-only, plus retrying.
Importing the modules registers their ModelAdmins."""

from webhooks.admin import conversations, message_log

__all__ = ["conversations", "message_log"]
