"""Tierstream feedback service."""
