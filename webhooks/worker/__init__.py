"""The worker process: one asyncio loop answering many conversations at once."""
