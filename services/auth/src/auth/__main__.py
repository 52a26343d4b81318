"""``python -m auth [serve|migrate]``."""

from auth.app import create_app, migration_sets
from auth.config import SERVICE, load_settings
from servicekit.service_main import ServiceDefinition, run_service

if __name__ == "__main__":
    definition = ServiceDefinition(SERVICE, load_settings, create_app, migration_sets)
    raise SystemExit(run_service(definition))
