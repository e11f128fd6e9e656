"""Tierstream customers service."""
