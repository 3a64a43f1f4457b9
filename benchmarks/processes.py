"""What every benchmark needs around the process it measures: a free local port, a private
RabbitMQ vhost (removed afterwards), databases of its own on the real server (dropped
afterwards), the process's CPU time, and stopping it."""
from __future__ import annotations

import os
import socket
import subprocess
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def rabbitmqctl(*args: str) -> bool:
    """Run `rabbitmqctl -q …`; True when it succeeded."""
    try:
        return subprocess.run(["rabbitmqctl", "-q", *args],  # noqa: S603, S607 - local tool
                              capture_output=True, timeout=60, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def private_vhost() -> str | None:
    """A new vhost the guest user may use (delete it with `rabbitmqctl("delete_vhost", …)`),
    or None when rabbitmqctl cannot make one."""
    vhost = f"acikkapi-bench-{uuid.uuid4().hex[:8]}"
    if rabbitmqctl("add_vhost", vhost) and rabbitmqctl(
            "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"):
        return vhost
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields_[11]) + int(fields_[12])) / ticks


def peak_memory_mb(pid: int) -> float:
    """The most resident memory a process has held, in MB (Linux /proc, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """Terminate, and kill if it has not ended within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()


SERVICES = ("intake", "routing", "sla", "notify", "tracking", "reporting", "console")


def bench_databases() -> dict[str, str]:
    """`MONGO_URI` (the environment's, else the local FerretDB of `make db`) and a fresh
    database name per service for one benchmark run."""
    uri = os.environ.get("MONGO_URI") or "mongodb://127.0.0.1:27018/"
    run = uuid.uuid4().hex[:8]
    return {"MONGO_URI": uri,
            **{f"MONGO_DB_{name.upper()}": f"bench_{run}_{name}" for name in SERVICES}}


def drop_databases(settings: dict[str, str]) -> None:
    """Drop the databases `bench_databases` named."""
    import pymongo

    with pymongo.MongoClient(settings["MONGO_URI"]) as client:
        for key, name in settings.items():
            if key.startswith("MONGO_DB_"):
                client.drop_database(name)


def store_name(uri: str) -> str:
    """What the server at `uri` is, for a benchmark's heading (FerretDB or MongoDB, version)."""
    import pymongo

    with pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
        info = client.admin.command("buildInfo")
    if "ferretdbVersion" in info:
        return f"FerretDB {info['ferretdbVersion'].lstrip('v')} at {uri}"
    return f"MongoDB {info['version']} at {uri}"
