"""What the citizen hears over a case's whole life, over the real broker: one message per step
they must know of, in order, and nothing more when every event is delivered three more times.

received → routed → acknowledged → started → waiting → resumed → resolved → approved → closed →
the survey answered by an SMS reply through intake's webhook. Staff act through routing's HTTP
API; intake, routing, tracking and notify run as containers; notify writes to the development
sink, which the test reads as the citizen's phone would.
"""
import json
from contextlib import ExitStack

from services.common.auth import mint_token
from services.routing.directory import load_directory
from tests.support import SAMPLE_APPLICATION, deliver

PHONE = "+905551112233"  # SAMPLE_APPLICATION's citizen, as the sink records it
# (producer, event) notify handles in this life, in the order they happen
NOTIFY_HANDLES = [
    ("intake", "application_received"), ("routing", "application_routed"),
    ("routing", "case_waiting"), ("routing", "case_closed"),
    ("tracking", "satisfaction_recorded"),
]


def sms_to(system, phone: str) -> list[str]:
    sink = system.config["DEV_SINK_DIR"] + "/sms.jsonl"
    try:
        with open(sink, encoding="utf-8") as lines:
            return [json.loads(line)["text"] for line in lines
                    if json.loads(line)["to"] == phone]
    except FileNotFoundError:
        return []


def test_the_citizen_hears_of_every_step_once_in_order_even_with_every_event_redelivered(
        system, config, probe):
    system.start("intake", "routing", "tracking", "notify")
    probes = {event: probe(producer, event) for producer, event in NOTIFY_HANDLES}
    with ExitStack() as stack:
        system.handled(stack, "notify", "application_received")
        system.handled(stack, "notify", "application_routed")
        answer = system.http["intake"].post("/api/v1/applications", json=SAMPLE_APPLICATION)
        assert answer.status_code == 201, answer.get_json()
    app_id = answer.get_json()["application_id"]
    case = system.http["routing"].get(f"/api/v1/cases/{app_id}", headers=system.staff)
    unit = load_directory(system.config["ORGANISATION_PATH"]).units[
        case.get_json()["unit"]]

    def token(code: str, role: str) -> dict:
        return {"Authorization":
                f"Bearer {mint_token(config['STAFF_TOKEN_SECRET'], code, role)}"}

    expert = token(unit.experts["primary"], "expert")
    chief = token(unit.supervisor, "supervisor")
    centre = token("mbb-0005", "coordinator")  # the coordination centre concludes

    def act(action: str, who: dict, body: dict | None = None,
            notify_event: str | None = None) -> None:
        with ExitStack() as stack:
            system.handled(stack, "tracking", f"case_{past(action)}")
            if notify_event:
                system.handled(stack, "notify", notify_event)
            answer = system.http["routing"].post(f"/api/v1/cases/{app_id}/{action}",
                                                 json=body or {}, headers=who)
            assert answer.status_code == 200, (action, answer.get_json())

    act("acknowledge", expert)
    act("start", expert)
    act("wait", expert, {"reason": "Çukurun tam yerini, sokak adıyla yazar mısınız?"},
        "case_waiting")
    act("resume", expert)
    act("resolve", expert, {"result": "Çukur asfaltla kapatıldı."})
    act("approve", chief)
    act("close", centre, notify_event="case_closed")

    with ExitStack() as stack:  # the citizen answers the survey by replying "5"
        system.handled(stack, "notify", "satisfaction_recorded")
        answer = system.http["intake"].post(
            "/api/v1/channels/sms", json={"from": "0555 111 22 33", "text": "5",
                                          "received_at": "2026-12-02T10:00:00+03:00"},
            headers={"X-Webhook-Secret": config["CHANNEL_WEBHOOK_SECRET"]})
        assert answer.status_code < 300, answer.get_json()

    told = sms_to(system, PHONE)
    expected = ["alındı", "Fen İşleri", "sokak adıyla", "asfaltla", "Teşekkür"]
    assert len(told) == len(expected), told
    for text, words in zip(told, expected, strict=True):
        assert words.lower() in text.lower(), (words, text)

    # every event notify handled, delivered three more times: nothing more goes out
    for _, event in NOTIFY_HANDLES:
        [payload] = probes[event].take(1)
        for _ in range(3):
            deliver(config, system.containers["notify"], payload)
    assert sms_to(system, PHONE) == told


def past(action: str) -> str:
    return {"acknowledge": "acknowledged", "start": "started", "wait": "waiting",
            "resume": "resumed", "resolve": "resolved", "approve": "approved",
            "close": "closed"}[action]
