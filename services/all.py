"""All seven services in one process, all HTTP on one port: `python -m services.all`."""
import eventlet

eventlet.monkey_patch()

from services.common.runner import SERVICES, run  # noqa: E402

if __name__ == "__main__":
    run(list(SERVICES))
