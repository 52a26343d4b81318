"""Accounts, JWT sessions and profiles."""
