"""``python -m workers``: the consumers and their HTTP side."""

from servicekit.service_main import ServiceDefinition, run_service
from workers.app import create_app
from workers.config import SERVICE, load_settings

if __name__ == "__main__":
    raise SystemExit(run_service(ServiceDefinition(SERVICE, load_settings, create_app)))
