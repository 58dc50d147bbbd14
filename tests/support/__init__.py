"""Helpers for the test suite (never imported by the product)."""
