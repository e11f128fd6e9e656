"""Tierstream orders service."""
