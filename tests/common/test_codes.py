"""Tracking and security codes: readable, self-checking, secret where they must be."""
import string

from services.common.codes import (
    ALPHABET,
    digests_match,
    display_tracking_code,
    new_security_code,
    new_tracking_code,
    normalise_tracking_code,
    security_digest,
)


def test_a_new_tracking_code_is_nine_unambiguous_characters_that_pass_their_own_check():
    for _ in range(500):
        code = new_tracking_code()
        assert len(code) == 9
        assert not set(code) & set("ILOU")
        assert normalise_tracking_code(code) == code


def test_a_tracking_code_is_read_back_with_dashes_lowercase_and_look_alikes():
    code = new_tracking_code()
    typed = display_tracking_code(code).lower().replace("0", "o").replace("1", "l")
    assert normalise_tracking_code(typed) == code


def test_every_single_character_typo_is_caught_by_the_check_character():
    code = new_tracking_code()
    for position in range(len(code)):
        for replacement in ALPHABET:
            if replacement == code[position]:
                continue
            typo = code[:position] + replacement + code[position + 1:]
            assert normalise_tracking_code(typo) is None, typo


def test_text_that_cannot_be_a_tracking_code_is_refused():
    assert normalise_tracking_code("") is None
    assert normalise_tracking_code("ABC") is None
    assert normalise_tracking_code("!!!-???-***") is None


def test_security_codes_carry_fifty_bits_and_do_not_repeat():
    codes = {new_security_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(len(c) == 10 and set(c) <= set(ALPHABET) for c in codes)  # 32**10 = 2**50


def test_the_security_digest_is_keyed_and_forgives_case_and_dashes():
    digest = security_digest("pepper", "ABCDE12345")
    assert digests_match(digest, security_digest("pepper", "abcde-12345"))
    assert not digests_match(digest, security_digest("other pepper", "ABCDE12345"))
    assert not digests_match(digest, security_digest("pepper", "ABCDE12346"))
    assert set(digest) <= set(string.hexdigits)
