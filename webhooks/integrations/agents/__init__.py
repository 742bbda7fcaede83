"""Client of the Agents API."""
