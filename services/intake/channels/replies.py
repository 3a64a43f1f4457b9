"""SMS replies that are not applications: a satisfaction score, or a request to stop or restart
non-essential messages.

The survey SMS (seed 004) asks the citizen to answer with a score from 1 to 5; people write "4",
" 4 ", "PUAN 4", "puan: 4", "4/5" or "4 puan". Opting out is the operators' usual keywords:
"IPTAL", "DUR", "STOP" (back in: "BASLAT" / "BAŞLAT", "START"). Phones type Turkish capitals
either way — "İPTAL" or "IPTAL", "BAŞLAT" or "BASLAT" — so keywords are compared after folding
Turkish letters to their plain Latin forms.

Pure: no nameko, no pymongo. Anything else is not a reply (None): the text goes on to the
"TCKN message" parser, so an application is never mistaken for a reply (a reply has no TCKN, and
an application without one is refused anyway).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

SCORE, OPT_OUT, OPT_IN = "score", "opt_out", "opt_in"
OPT_OUT_WORDS = frozenset({"iptal", "dur", "stop"})
OPT_IN_WORDS = frozenset({"baslat", "start"})
# After folding: an optional "puan" (with ":" or "="), the digit, an optional "/5", an optional
# trailing "puan", and a full stop or exclamation mark at most.
_SCORE = re.compile(r"^(?:puan\s*[:=]?\s*)?([1-5])(?:\s*/\s*5)?(?:\s*puan)?\s*[.!]?$")
_KEYWORD = re.compile(r"^([a-z]+)\s*[.!]?$")
# Every Turkish letter to the Latin letter a phone without Turkish characters types instead:
# `İ`/`I`/`ı`/`i` all become `i`, so "İPTAL", "IPTAL" and "iptal" are one word.
_PLAIN = str.maketrans({"İ": "i", "I": "i", "ı": "i", "Ş": "s", "ş": "s", "Ç": "c", "ç": "c",
                        "Ğ": "g", "ğ": "g", "Ü": "u", "ü": "u", "Ö": "o", "ö": "o",
                        "Â": "a", "â": "a", "Î": "i", "î": "i", "Û": "u", "û": "u"})


@dataclass(frozen=True)
class Reply:
    """What a reply asks for: `kind` is SCORE (with `score`), OPT_OUT or OPT_IN."""

    kind: str
    score: int | None = None


def plain(text: str) -> str:
    """`text` in lower-case plain Latin letters, its spaces collapsed (for keywords only)."""
    return " ".join((text or "").translate(_PLAIN).lower().split())


def parse_reply(text: str | None) -> Reply | None:
    """The reply `text` is, or None when it is not one (an application, or anything else)."""
    folded = plain(text or "")
    if not folded or len(folded) > 20:  # a reply is a word or two; spare long texts the regexes
        return None
    score = _SCORE.match(folded)
    if score:
        return Reply(SCORE, int(score.group(1)))
    keyword = _KEYWORD.match(folded)
    if keyword:
        word = keyword.group(1)
        if word in OPT_OUT_WORDS:
            return Reply(OPT_OUT)
        if word in OPT_IN_WORDS:
            return Reply(OPT_IN)
    return None
