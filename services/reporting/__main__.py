"""`python -m services.reporting`: the reporting service and its HTTP API in one process."""
import eventlet

eventlet.monkey_patch()

from services.common.runner import run  # noqa: E402

if __name__ == "__main__":
    run(["reporting"])
