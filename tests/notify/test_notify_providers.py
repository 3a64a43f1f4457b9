"""SMS providers: the development sink, and refusing an unknown provider at start."""
import json

import pytest

from services.notify.providers import DevSinkSmsProvider, ProviderConfigError, build_sms_provider
from services.notify.service import NotifyService


def test_the_dev_sink_appends_one_json_line_per_message_and_creates_its_directory(tmp_path):
    sink = tmp_path / "not" / "there"
    provider = DevSinkSmsProvider(sink)
    first = provider.send("+905551112233", "Açık Kapı: bir")
    second = provider.send("+905551112244", "Açık Kapı: iki")
    lines = [json.loads(line) for line in (sink / "sms.jsonl").read_text("utf-8").splitlines()]
    assert [(line["to"], line["text"], line["message_id"]) for line in lines] == [
        ("+905551112233", "Açık Kapı: bir", first), ("+905551112244", "Açık Kapı: iki", second)]
    assert first != second
    assert all(set(line) == {"at", "to", "text", "message_id"} for line in lines)


def test_a_message_handed_over_again_with_its_reference_is_sent_once(tmp_path):
    """As a gateway that keeps client references: a taken-over claim's second hand-over of the
    same message (same key) is answered with the first one's id, and nobody gets it twice."""
    first_process, second_process = DevSinkSmsProvider(tmp_path), DevSinkSmsProvider(tmp_path)
    sent = first_process.send("+905551112233", "Açık Kapı: bir", reference="evt-1:received")
    again = second_process.send("+905551112233", "Açık Kapı: bir", reference="evt-1:received")
    other = second_process.send("+905551112233", "Açık Kapı: iki", reference="evt-2:received")
    lines = (tmp_path / "sms.jsonl").read_text("utf-8").splitlines()
    assert again == sent and other != sent
    assert [json.loads(line)["text"] for line in lines] == ["Açık Kapı: bir", "Açık Kapı: iki"]


def test_the_configured_dev_provider_writes_to_dev_sink_dir(config):
    provider = build_sms_provider(config)
    assert isinstance(provider, DevSinkSmsProvider)
    assert provider.name == "dev"
    assert str(provider.path).startswith(config["DEV_SINK_DIR"])


def test_an_unknown_provider_is_refused_by_name(config):
    with pytest.raises(ProviderConfigError, match="SMS_PROVIDER='carrier-pigeon'"):
        build_sms_provider(dict(config, SMS_PROVIDER="carrier-pigeon"))


def test_the_notify_service_does_not_start_with_an_unknown_provider(config, container_factory):
    container = container_factory(NotifyService, dict(config, SMS_PROVIDER="carrier-pigeon"))
    with pytest.raises(ProviderConfigError):
        container.start()
