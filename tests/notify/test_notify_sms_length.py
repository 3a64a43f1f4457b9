"""SMS length: which encoding a text goes in, its units, and the segments it is sent in."""
import pytest

from services.notify import domain
from services.notify.domain import SmsLength, sms_length


def test_the_default_alphabet_table_has_all_128_codes_in_order():
    table = domain._GSM7_DEFAULT_TABLE
    assert len(table) == 128
    assert (table.index("\x1b"), table.index("¡"), table.index("¿"), table.index("Ç")) == (
        0x1B, 0x40, 0x60, 0x09)


def test_a_pure_gsm_text_is_gsm7_one_septet_a_character():
    assert sms_length("Basvurunuz alindi. Takip kodu: K7M-4QX-2D9") == SmsLength("gsm7", 42, 1)


def test_extension_characters_cost_two_septets_in_gsm7():
    assert sms_length("€5 [x]") == SmsLength("gsm7", 9, 1)


def test_a_turkish_text_goes_with_the_turkish_single_shift_table():
    """Only ş is outside the default alphabet here; the shift table has it, at two septets:
    34 characters, 35 septets, one segment (UCS-2 would be 34 units of 70, also one, but at
    twice the bits per character)."""
    assert sms_length("Başvurunuz ilgili birime iletildi.") == SmsLength("gsm7-tr", 35, 1)


@pytest.mark.parametrize("letter", list("çğıİşŞĞ"))
def test_each_turkish_letter_outside_the_default_alphabet_costs_two_septets(letter):
    assert sms_length(f"a{letter}") == SmsLength("gsm7-tr", 3, 1)


@pytest.mark.parametrize("letter", list("ÇÖÜöü"))
def test_turkish_letters_of_the_default_alphabet_need_no_shift_table(letter):
    assert sms_length(f"a{letter}") == SmsLength("gsm7", 2, 1)


@pytest.mark.parametrize("text", ["Tamam ✓", "Teşekkürler 🙂", "hâlâ"])
def test_a_character_outside_both_tables_makes_it_ucs2(text):
    assert sms_length(text).encoding == "ucs2"


def test_an_emoji_is_two_utf16_units():
    assert sms_length("🙂") == SmsLength("ucs2", 2, 1)
    assert sms_length("🙂" * 35) == SmsLength("ucs2", 70, 1)
    assert sms_length("🙂" * 36) == SmsLength("ucs2", 72, 2)


@pytest.mark.parametrize(("septets", "segments"), [
    (155, 1), (156, 2),  # single: 160 less the 5 septets of a 4-octet header
    (298, 2), (299, 3),  # 149 per part: 160 less the 11 septets of a 9-octet header
    (447, 3), (448, 4),
])
def test_turkish_shift_boundaries(septets, segments):
    text = "ş" + "a" * (septets - 2)
    assert sms_length(text) == SmsLength("gsm7-tr", septets, segments)


@pytest.mark.parametrize(("septets", "segments"), [
    (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)])
def test_gsm7_boundaries(septets, segments):
    assert sms_length("a" * septets) == SmsLength("gsm7", septets, segments)


@pytest.mark.parametrize(("units", "segments"), [
    (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)])
def test_ucs2_boundaries(units, segments):
    assert sms_length("✓" * units) == SmsLength("ucs2", units, segments)


def test_a_two_septet_character_is_not_split_across_parts():
    """298 septets fit two parts of 149 by arithmetic, but the ş at septets 149-150 would
    straddle them: it opens the second part, and the last septet needs a third."""
    text = "a" * 148 + "ş" + "a" * 148
    assert sms_length(text) == SmsLength("gsm7-tr", 298, 3)


def test_a_surrogate_pair_is_not_split_across_parts():
    text = "✓" * 66 + "🙂" + "✓" * 66  # 134 units, but the emoji would straddle 67|68
    assert sms_length(text) == SmsLength("ucs2", 134, 3)


def test_an_empty_text_is_one_segment():
    assert sms_length("") == SmsLength("gsm7", 0, 1)


def test_sms_segments_is_the_segments_of_sms_length():
    for text in ("a" * 161, "ş" * 149, "✓" * 71):
        assert domain.sms_segments(text) == sms_length(text).segments
