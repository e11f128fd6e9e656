"""Tierstream segmentation service."""
