"""``python -m gateway``: the realtime Socket.IO gateway."""

from gateway.app import create_app
from gateway.config import SERVICE, load_settings
from servicekit.service_main import ServiceDefinition, run_service

if __name__ == "__main__":
    raise SystemExit(run_service(ServiceDefinition(SERVICE, load_settings, create_app)))
