"""Clients of the services Omnihub calls: the agents and the Evolution API."""
