"""The fast request-header reader builds exactly what the standard library builds."""
import io

import pytest

from services.common.httpheaders import parse_headers, standard_parse_headers

BLOCKS = [
    b"Host: 127.0.0.1:8000\r\nContent-Type: application/json\r\nContent-Length: 345\r\n\r\n",
    b"Host: x\r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2\r\nIdempotency-Key: a:b:c\r\n\r\n",
    b"Host: x\r\nAccept:text/html\r\nX-Empty:\r\nX-Spaces: \t padded  \r\n\r\n",
    b"Host: x\nUser-Agent: unix line ends\n\n",
    b"Cookie: a=1\r\nCookie: b=2\r\nAuthorization: Bearer abc.def\r\n\r\n",
    b"X-Turkish: \xc5\x9fehir\r\n\r\n",  # bytes beyond ASCII are read as ISO-8859-1
    b"\r\n",  # no headers at all
    # unusual: these go to the standard parser
    b"Host: x\r\nX-Folded: first\r\n  second part\r\n\r\n",
    b"Host: x\r\nBad Name: value\r\n\r\n",
    b"Host: x\r\nno colon here\r\nX-After: 1\r\n\r\n",
    b"Host: x\r\n: empty name\r\n\r\n",
    b"Host: x\r\nX-Cut: no blank line",
]


def view(message) -> tuple:
    return (message.items(), message.get_content_type(), message.get("content-length"),
            message.get_all("cookie"), [type(d).__name__ for d in message.defects])


@pytest.mark.parametrize("block", BLOCKS)
def test_the_same_message_as_the_standard_library(block):
    fast_stream, standard_stream = io.BytesIO(block + b"BODY"), io.BytesIO(block + b"BODY")
    assert view(parse_headers(fast_stream)) == view(standard_parse_headers(standard_stream))
    # the body is left unread, exactly where the standard parser leaves it
    assert fast_stream.read() == standard_stream.read()


def test_the_standard_limits_apply():
    import http.client

    with pytest.raises(http.client.LineTooLong):
        parse_headers(io.BytesIO(b"X-Long: " + b"a" * 70000 + b"\r\n\r\n"))
    with pytest.raises(http.client.HTTPException):
        parse_headers(io.BytesIO(b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n"))


def test_plain_headers_are_read_without_the_e_mail_parser(monkeypatch):
    """Only unusual blocks reach the standard parser: what makes this reader worth having."""
    from services.common import httpheaders

    handed_over: list[int] = []

    def standard(lines, _class):
        handed_over.append(len(lines))
        return standard_parse_headers(io.BytesIO(b"".join(lines)), _class)

    monkeypatch.setattr(httpheaders, "_standard_parse", standard)
    parse_headers(io.BytesIO(BLOCKS[0]))
    parse_headers(io.BytesIO(BLOCKS[1]))
    assert handed_over == []
    folded = parse_headers(io.BytesIO(b"Host: x\r\nX-Folded: a\r\n  b\r\n\r\n"))
    assert handed_over == [4] and folded.get("X-Folded").replace("\r\n", "") == "a  b"
