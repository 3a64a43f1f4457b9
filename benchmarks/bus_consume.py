"""What taking an event off the bus costs reporting, before any folding, on the real broker:

    python -m benchmarks.bus_consume [--applications 10000]

Publishes the synthetic history of `benchmarks.reporting` (7 events per application) to a
private vhost, then starts reporting's batched entrypoints (`batched_event_handler` over every
queue reporting consumes, as `services.reporting.service` declares them) in this process with a
method that only counts, and times them until every event has been handed over: py-amqp's
frames, kombu's decoding, the envelope's validation, the batcher, the acks. Prints events per
second and CPU per event, and, on the same envelopes, what `load_event` (the marshmallow
validation) alone costs. Monkey-patched first, as `python -m services.reporting` is.
"""
import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

from eventlet.event import Event  # noqa: E402
from kombu import Connection, Producer  # noqa: E402
from nameko.runners import ServiceRunner  # noqa: E402

from benchmarks.processes import HOST, private_vhost, rabbitmqctl  # noqa: E402
from benchmarks.reporting import history  # noqa: E402
from services.common import topology  # noqa: E402
from services.common.batched import batched_event_handler  # noqa: E402
from services.common.events import load_event  # noqa: E402
from services.common.topology import event_exchange, service_subscriptions  # noqa: E402


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applications", type=int, default=10_000)
    args = parser.parse_args(argv)
    events = [envelope for _, envelope in history(args.applications, random.Random(12))]
    counted, all_in = [0], Event()

    class ReportingService:  # reporting's queues, its batched entrypoint, no fold
        name = "reporting"

        @batched_event_handler(*service_subscriptions("reporting"))
        def record_events(self, batch: list[dict]) -> None:
            counted[0] += len(batch)
            if counted[0] >= len(events) and not all_in.ready():
                all_in.send()

    vhost = private_vhost()
    amqp = f"amqp://guest:guest@{HOST}:5672/{vhost or 'acikkapi-test'}"
    try:
        topology.declare(amqp)
        with Connection(amqp) as conn:
            producer = Producer(conn.channel())
            for envelope in events:
                exchange = event_exchange(envelope["producer"])
                producer.publish(envelope, exchange=exchange, routing_key=envelope["type"],
                                 serializer="json", delivery_mode=2, declare=[exchange])
        cpu, began = _cpu(), time.perf_counter()
        runner = ServiceRunner({"AMQP_URI": amqp})
        runner.add_service(ReportingService)
        runner.start()
        all_in.wait()
        seconds, cpu = time.perf_counter() - began, _cpu() - cpu
        runner.stop()
        print(f"{len(events)} events taken off the bus in {seconds:.1f} s "
              f"({len(events) / seconds:,.0f}/s), CPU {cpu:.1f} s: "
              f"{cpu / len(events) * 1e6:.0f} µs per event")
        received = [json.loads(json.dumps(envelope, default=str)) for envelope in events]
        began = time.perf_counter()
        for envelope in received:
            load_event(envelope)
        validating = time.perf_counter() - began
        print(f"of which the envelope's validation (load_event): "
              f"{validating / len(events) * 1e6:.0f} µs per event")
    finally:
        if vhost:
            rabbitmqctl("delete_vhost", vhost)


if __name__ == "__main__":
    main()
