"""Conversations: which worker holds a chat, and the steps of answering its messages."""
