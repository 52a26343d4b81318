"""Fault scenarios under load on servers of our own (`make chaos`, docs/reliability.md)."""
