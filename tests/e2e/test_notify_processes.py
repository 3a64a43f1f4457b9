"""The quiet hours and an opt-out hold across a kill -9 and restart of the notify process.

Notify runs as `python -m services.notify`, as `make run` starts it, on the test's database and
RabbitMQ vhost; intake's contact lookup is a stand-in service on the same broker. The quiet
hours are set to end half a minute from now, so the held messages fall due while the test
watches: one citizen's step notice is held, the process is killed, the other citizen opts out
meanwhile (notify's RPC, the way intake's "IPTAL" SMS records it), and the restarted process
sends the first once and skips the second.
"""
import json
import os
import signal
import subprocess
import sys
from datetime import timedelta

from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy

from benchmarks.processes import ROOT
from services.common.events import make_event, utcnow
from services.notify.domain import ISTANBUL
from tests.support import database, free_port, poll, publish

CONTACTS = {
    "app-held": {"phone": "+905551110001", "preferred_channel": "sms", "language": "tr",
                 "citizen_ref": "ref-held"},
    "app-optout": {"phone": "+905551110002", "preferred_channel": "sms", "language": "tr",
                   "citizen_ref": "ref-optout"},
}
QUIET_LEFT = timedelta(seconds=30)


class ContactsOnly:
    """Intake's `get_contact`, for two known applications."""

    name = "intake"

    @rpc
    def get_contact(self, application_id: str) -> dict | None:
        return CONTACTS.get(application_id)


def start_notify(config: dict, quiet: str, log_path) -> subprocess.Popen:
    env = {**os.environ, **{k: str(v) for k, v in config.items()},
           "HTTP_PORT": str(free_port()), "LOG_LEVEL": "WARNING", "NOTIFY_QUIET_HOURS": quiet}
    return subprocess.Popen([sys.executable, "-m", "services.notify"], cwd=ROOT, env=env,
                            stdout=log_path.open("a"), stderr=subprocess.STDOUT)


def waiting(application_id: str) -> dict:
    return make_event("case_waiting", application_id, {
        "state": "waiting_citizen", "tracking_code": "K7M4QX2D9",
        "reason": "Sokak adını yazar mısınız?"})


def sms_to(config: dict, phone: str) -> list[str]:
    path = os.path.join(config["DEV_SINK_DIR"], "sms.jsonl")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in lines if json.loads(line)["to"] == phone]


def test_held_messages_and_an_opt_out_survive_a_kill_and_restart_of_notify(
        config, container_factory, tmp_path):
    container_factory(ContactsOnly, config).start()
    now = utcnow().astimezone(ISTANBUL)
    quiet = f"{now - timedelta(hours=1):%H:%M:%S}-{now + QUIET_LEFT:%H:%M:%S}"
    log_path = tmp_path / "notify.log"
    messages = database(config, "notify")["messages"]
    notify = start_notify(config, quiet, log_path)
    try:
        events = {app: waiting(app) for app in CONTACTS}
        for event in events.values():
            publish(config, event)
        held = poll(lambda: [m["status"] for m in messages.find({"template": "case_waiting"})],
                    lambda found: found == ["deferred", "deferred"], 30, every=0.2)
        assert held == ["deferred", "deferred"], log_path.read_text()[-2000:]
        assert sms_to(config, CONTACTS["app-held"]["phone"]) == []

        notify.send_signal(signal.SIGKILL)
        notify.wait(timeout=10)
        with ClusterRpcProxy({"AMQP_URI": config["AMQP_URI"]}) as cluster:
            # the second citizen opts out while notify is down: the RPC waits on its queue
            reply = cluster.notify.set_opt_out.call_async("ref-optout", True, "sms")
            notify = start_notify(config, quiet, log_path)
            reply.result()

        def statuses() -> dict:
            return {m["application_id"]: m["status"]
                    for m in messages.find({"template": "case_waiting"})}

        final = poll(statuses, lambda found: set(found.values()) <= {"sent", "skipped"},
                     QUIET_LEFT.total_seconds() + 60, every=0.5)
        assert final == {"app-held": "sent", "app-optout": "skipped"}, log_path.read_text()[-2000:]
        [text] = sms_to(config, CONTACTS["app-held"]["phone"])
        assert "Sokak adını yazar mısınız?" in text
        assert sms_to(config, CONTACTS["app-optout"]["phone"]) == []
        sent = messages.find_one({"application_id": "app-held"})
        assert sent["sent_at"] >= sent["due_at"]  # not before the quiet hours ended
        assert database(config, "notify")["deferred"].count_documents({}) == 0
    finally:
        notify.kill()
        notify.wait(timeout=10)
