"""Tierstream shared library: the public event contract and the messaging / event-sourcing machinery."""
