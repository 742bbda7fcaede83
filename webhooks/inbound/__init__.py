"""Evolution webhooks in: parsing, what is ignored and why, and storing what is to answer."""
