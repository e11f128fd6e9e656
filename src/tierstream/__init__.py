"""Tierstream command line and local stack orchestration."""
