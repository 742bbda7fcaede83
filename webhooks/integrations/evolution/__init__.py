"""Client of the Evolution API (the WhatsApp gateway)."""
