"""Shared pytest fixtures: isolated Postgres databases, RabbitMQ vhost, Redis prefix, MongoDB."""

pytest_plugins = ["devstack.pytest_plugin"]
