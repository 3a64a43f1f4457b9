"""`python -m services.console`: the staff console's pages and its purge timer in one process."""
import eventlet

eventlet.monkey_patch()

from services.common.runner import run  # noqa: E402

if __name__ == "__main__":
    run(["console"])
