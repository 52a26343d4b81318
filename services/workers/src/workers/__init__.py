"""Queue consumers: notifications and media."""
