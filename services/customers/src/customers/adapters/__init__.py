"""Adapters of the customers service: encryption of personal data, its keys, the directory read model."""
