"""SMS replies that are not applications (pure): a 1–5 survey score in the forms people type,
and the opt-out / opt-in keywords with Turkish capitals either way."""
import pytest

from services.intake.channels.replies import OPT_IN, OPT_OUT, SCORE, Reply, parse_reply
from tests.intake.intake_samples import TCKN


@pytest.mark.parametrize(("text", "score"), [
    ("4", 4), (" 5 ", 5), ("\t1\n", 1), ("PUAN 4", 4), ("puan: 4", 4), ("Puan:3", 3),
    ("puan=2", 2), ("PUAN  5.", 5), ("4/5", 4), ("4 puan", 4), ("5!", 5),
])
def test_a_score_from_one_to_five_is_a_survey_reply(text, score):
    assert parse_reply(text) == Reply(SCORE, score)


@pytest.mark.parametrize("text", [
    "0", "6", "10", "45", "4 5", "puan", "puan 0", "puanım 4", "4 numaralı sokakta çukur var",
    "", "   ", None,
])
def test_anything_else_with_a_digit_is_not_a_score(text):
    assert parse_reply(text) is None


@pytest.mark.parametrize("text", ["IPTAL", "İPTAL", "iptal", "Iptal", "ıptal", " İptal. ",
                                  "DUR", "dur", "STOP", "Stop!"])
def test_iptal_dur_and_stop_opt_out_whatever_the_turkish_capitals(text):
    assert parse_reply(text) == Reply(OPT_OUT)


@pytest.mark.parametrize("text", ["BASLAT", "BAŞLAT", "başlat", "Başlat", "baslat", "START",
                                  "start."])
def test_baslat_and_start_opt_back_in(text):
    assert parse_reply(text) == Reply(OPT_IN)


@pytest.mark.parametrize("text", [
    f"{TCKN} iptal edilen otobüs seferi", "iptal etmek istiyorum", "DURAK", "başlatın",
    "STOP lambası yanmıyor", "stopp",
])
def test_an_application_that_mentions_a_keyword_is_not_a_reply(text):
    assert parse_reply(text) is None
