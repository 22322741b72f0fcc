"""Request data that reaches response headers (S3 passthrough parameters, file
names, MIME types, Seaweed-* pairs) and request data that reaches a request to
another server (chunk manifest file ids), compared with the Go 4.48 volume
server: nothing a client sends can end a header line or a request line early.
The same requests go to Go and to kelp, each holding a volume with the same id."""
import json
import re
import socket

import pytest

from test_http_parity import Twins, twins  # noqa: F401 (twins is the fixture)

PASSTHROUGH = ("response-content-type", "response-cache-control", "response-content-language", "response-expires",
               "response-content-disposition", "response-content-encoding")
SPLIT = "%20%09text/html%0d%0aSet-Cookie:x=y%0d%0a%0d%0a<script>%0d%20"


@pytest.fixture(scope="module")
def t(twins):  # noqa: F811
    """One Twins for the module, so that no two tests write the same file id."""
    return Twins(*twins)


def raw_bytes(port, payload, timeout=5.0):
    """The bytes a server answers to `payload`, read to the close (or `timeout`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return out


def upload(t, fid, content=b"hello", name="a.txt"):
    body, headers = part(f'form-data; name="file"; filename="{name}"'.encode(), content=content)
    g, k = t.same("POST", f"/{fid}?ts=1764000000", headers, body)
    assert g[0] == k[0] == 201, (g, k)


def part(disposition, extra=b"", content=b"hello", ctype=b"text/plain"):
    """A one-part multipart body, bytes exactly as given."""
    b = b"kelpboundary"
    body = (b"--" + b + b"\r\nContent-Disposition: " + disposition + b"\r\nContent-Type: " + ctype + b"\r\n" + extra +
            b"\r\n" + content + b"\r\n--" + b + b"--\r\n")
    return body, {"Content-Type": "multipart/form-data; boundary=kelpboundary"}


def test_passthrough_parameters_turn_cr_and_lf_into_spaces(t):
    fid = t.fid()
    upload(t, fid)
    for param in PASSTHROUGH:
        for method in ("GET", "HEAD"):
            g, k = t.same(method, f"/{fid}?{param}={SPLIT}", what=f"{method} {param}")
            headers = dict(k[1])
            assert "set-cookie" not in headers, (param, k[1])
            header = param[len("response-"):]
            assert headers[header] == "text/html  Set-Cookie:x=y    <script>", (param, headers)
            assert k[2] == (b"hello" if method == "GET" else b"")
        # On the wire: one header line, and the body right after the one blank line.
        answer = raw_bytes(t.kelp.port, f"GET /{fid}?{param}={SPLIT} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        head, _, body = answer.partition(b"\r\n\r\n")
        assert body == b"hello" and b"\nSet-Cookie" not in head and b"<script>\r\n" in head, answer


def test_nul_in_a_passthrough_value_becomes_a_space_in_kelp(t):
    """Deliberate (docs/compatibility.md): Go 4.48 sends the NUL as it is."""
    fid = t.fid()
    upload(t, fid)
    for param in PASSTHROUGH:
        g, k = t.both("GET", f"/{fid}?{param}=a%00b")
        header = param[len("response-"):]
        assert dict(g[1])[header] == "a\x00b" and dict(k[1])[header] == "a b", (param, g[1], k[1])


def test_multipart_part_headers_with_control_bytes_are_refused_as_go_refuses_them(t):
    dispositions = [b'form-data; name="file"; filename="a\rb.txt"', b'form-data; name="file"; filename="a\x00b.txt"',
                    b'form-data; name="file"; filename="a\x01b.txt"', b'form-data; name="file"; filename="a\x7fb.txt"',
                    b'form-data; name="file"; filename="a\nb.txt"', b'form-data; name="file"; filename="a\r\rb.txt"']
    refused = [part(d) for d in dispositions]
    refused += [part(b'form-data; name="file"; filename="t.txt"', ctype=b"text/plain\rX: y"),
                part(b'form-data; name="file"; filename="t.txt"', extra=b"X-Bad\x01Name: 1\r\n"),
                part(b'form-data; name="file"; filename="t.txt"', extra=b": no name\r\n")]
    for body, headers in refused:
        fid = t.fid()
        g, k = t.same("POST", f"/{fid}", headers, body, what=repr(body[:90]))
        assert g[0] == k[0] == 400 and b"malformed MIME header" in k[2], (body[:90], k)
        assert t.same("GET", f"/{fid}")[1][0] == 404
    # What Go accepts: a tab, a name folded onto a continuation line, a space before the colon.
    accepted = [part(b'form-data; name="file"; filename="a\tb.txt"'),
                part(b'form-data; name="file";\r\n filename="folded.txt"'),
                part(b'form-data; name="file"; filename="t.txt"', extra=b"X-Spaced : 1\r\n")]
    for body, headers in accepted:
        fid = t.fid()
        g, k = t.same("POST", f"/{fid}?ts=1764000000", headers, body, what=repr(body[:90]))
        assert g[0] == k[0] == 201, (body[:90], k)
        t.same("GET", f"/{fid}")


def test_file_names_with_control_bytes_are_percent_encoded_in_content_disposition(t):
    # An RFC 2231 file name decodes to CR, LF and NUL: stored as sent, then encoded on the way out.
    fid = t.fid()
    body, headers = part(b"form-data; name=\"file\"; filename*=utf-8''a%0D%0ASet-Cookie%3A%20x%00.txt")
    g, k = t.same("POST", f"/{fid}?ts=1764000000", headers, body)
    assert g[0] == 201 and json.loads(k[2])["name"] == "a\r\nSet-Cookie: x\x00.txt"
    for query in ("", "?dl=true"):
        g, k = t.same("GET", f"/{fid}{query}")
        assert "set-cookie" not in dict(k[1])
        assert dict(k[1])["content-disposition"].endswith("filename*=utf-8''a%0D%0ASet-Cookie%3A%20x%00.txt"), k[1]
    # A file name in the URL.
    vid, key = fid.split(",")
    for name in ("a%0d%0aSet-Cookie:x.txt", "a%0db", "%00", "a%01b", "a%7fb", "a%09b", "a%22b", "%c3%a9.txt", "%20"):
        g, k = t.same("GET", f"/{vid}/{key}/{name}", what=name)
        assert "set-cookie" not in dict(k[1])


def upload_raw(t, fid, extra_headers):
    """An upload sent as raw bytes (http.client refuses folded header values)."""
    body, headers = part(b'form-data; name="file"; filename="p.txt"')
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (f"POST /{fid}?ts=1764000000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{head}{extra_headers}"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    for server in (t.go, t.kelp):
        answer = raw_bytes(server.port, request)
        assert answer.startswith(b"HTTP/1.1 201"), (server.url, answer)


def test_pairs_reach_headers_as_go_sends_them(t):
    fid = t.fid()
    upload_raw(t, fid, "Seaweed-Fold: one\r\n two\r\nSeaweed-Tab: a\tb\r\nseaweed-lower-case: v\r\n"
                       "Seaweed-Etag: forged\r\nSeaweed-Last-Modified: then\r\nSeaweed-Content-Type: text/html\r\n"
                       "Seaweed-Accept-Ranges: none\r\nSeaweed-Content-Disposition: attachment\r\nSeaweed-Server: stored\r\n"
                       "Seaweed-Content-Length: 1\r\n")
    for method in ("GET", "HEAD"):
        g, k = t.same(method, f"/{fid}")
        for name, value in (("fold", "one two"), ("tab", "a\tb"), ("lower-case", "v"), ("etag", "forged"),
                            ("content-type", "text/plain"), ("content-length", "5"), ("server", "stored")):
            assert [v for h, v in k[1] if h == name] == [value], (name, k[1])
            assert [v for h, v in g[1] if h == name] == [value], (name, g[1])


def test_pairs_never_frame_the_answer(t):
    """Deliberate (docs/compatibility.md): Go hands such pairs to net/http, which
    then frames by them; kelp frames every answer itself."""
    fid = t.fid()
    upload_raw(t, fid, "Seaweed-Transfer-Encoding: chunked\r\nSeaweed-Content-Length: 0\r\nSeaweed-Connection: close\r\n"
                       "Seaweed-Keep-Alive: timeout=1\r\nSeaweed-Trailer: X\r\nSeaweed-Upgrade: h2c\r\n")
    # Two requests on one connection: the first answer ends exactly where its Content-Length says.
    one = f"GET /{fid} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    answer = raw_bytes(t.kelp.port, one + one[:-2] + b"Connection: close\r\n\r\n")
    first, rest = answer.split(b"\r\n\r\n", 1)
    lines = [l.lower() for l in first.split(b"\r\n")[1:]]
    assert [l for l in lines if l.startswith(b"content-length:")] == [b"content-length: 5"], first
    for name in (b"transfer-encoding", b"connection", b"keep-alive", b"trailer", b"upgrade"):
        assert not any(l.startswith(name + b":") for l in lines), (name, first)
    assert rest.startswith(b"hello" + b"HTTP/1.1 200 OK\r\n") and rest.endswith(b"\r\n\r\nhello"), rest


def test_chunk_file_ids_cannot_split_the_request_to_the_chunk_server(t):
    chunk = t.fid()
    upload(t, chunk)
    for bad in (chunk + " HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET /status", chunk + "\r\nX: y", chunk + "\x7f", chunk + " x"):
        manifest = json.dumps({"name": "m.txt", "mime": "text/plain", "size": 5,
                               "chunks": [{"fid": bad, "offset": 0, "size": 5}]}).encode()
        fid = t.fid()
        body, headers = part(b'form-data; name="file"; filename="m.json"', content=manifest, ctype=b"application/json")
        g, k = t.both("POST", f"/{fid}?cm=true&ts=1764000000", headers, body)
        assert g[0] == k[0] == 201
        g, k = t.both("GET", f"/{fid}")
        # The chunk's server is whichever holder of the volume the master named.
        gb, kb = (re.sub(rb"127\.0\.0\.1:\d+", b"HOST", x[2]) for x in (g, k))
        assert (g[0], gb) == (k[0], kb), (bad, g, k)
        assert k[0] == 500 and (b"invalid control character in URL" in kb or b"[400]" in kb), kb


# ---- request framing ----

VOLATILE_LINES = (b"date:", b"server:", b"x-amz-request-id:")


def exchange(port, payload, timeout=10.0):
    """Sends `payload` (even if the server stops reading and resets part way)
    and reads to the close: (answer bytes, True when the server closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except socket.timeout:
            return out, False
        except ConnectionResetError:
            pass
        return out, True


def answers(data):
    """The answers in `data`, each as (status line, headers without the per-server ones, body)."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        headers = sorted(l for l in lines[1:] if not l.lower().startswith(VOLATILE_LINES))
        length = next((int(l.split(b":")[1]) for l in lines[1:] if l.lower().startswith(b"content-length:")), None)
        if lines[0].startswith(b"HTTP/1.1 1"):
            length = 0
        elif length is None:  # net/http's own refusals: no length, the body runs to the close
            length = len(rest)
        out.append((lines[0], headers, rest[:length]))
        data = rest[length:]
    return out


def framing_same(t, payload, what):
    (g, g_closed), (k, k_closed) = exchange(t.go.port, payload), exchange(t.kelp.port, payload)
    ga, ka = answers(g), answers(k)
    # Header order and the Connection header's place differ; compare status, header set and body.
    assert [(s, b) for s, _, b in ga] == [(s, b) for s, _, b in ka], f"{what}\n go:   {g[:600]!r}\n kelp: {k[:600]!r}"
    assert g_closed == k_closed, what
    return ga, ka


def put_chunked(fid, chunks, te=b"chunked", extra=b""):
    return (b"PUT /" + fid.encode() + b"?ts=1764000000 HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            b"Transfer-Encoding: " + te + b"\r\n" + extra + b"\r\n" + chunks +
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")


def test_transfer_encodings_go_does_not_know_are_501_and_close(t):
    for te, extra in ((b"xchunked", b"Content-Length: 5\r\n"), (b"identity", b"Content-Length: 5\r\n"), (b"identity", b""),
                      (b"gzip, chunked", b""), (b"chunked, chunked", b""), (b"chunked\r\nTransfer-Encoding: chunked", b""),
                      (b"", b"Content-Length: 5\r\n")):
        ga, ka = framing_same(t, put_chunked(t.fid(), b"5\r\nhello\r\n0\r\n\r\n", te, extra), te)
        assert len(ka) == 1 and ka[0][0] == b"HTTP/1.1 501 Not Implemented" and ka[0][2] == b"Unsupported transfer encoding", ka
    # Go's one coding, in any case: the body is read and the next request answered.
    ga, ka = framing_same(t, put_chunked(t.fid(), b"5\r\nhello\r\n0\r\n\r\n", b"Chunked"), "Chunked")
    assert [a[0] for a in ka] == [b"HTTP/1.1 201 Created", b"HTTP/1.1 200 OK"], ka


def test_chunk_lines_are_limited_as_go_limits_them(t):
    cases = [
        (b"5;" + b"a" * 4092 + b"\r\nhello\r\n0\r\n\r\n", None),  # a 4094-byte line: Go's longest
        (b"5;" + b"a" * 4093 + b"\r\nhello\r\n0\r\n\r\n", b"header line too long"),
        (b"5;" + b"a" * 100_000 + b"\r\nhello\r\n0\r\n\r\n", b"header line too long"),
        (b"5;a=\"" + b"b" * 4088 + b"\"\r\nhello\r\n0\r\n\r\n", None),
        (b"5;a=\"" + b"b" * 4089 + b"\"\r\nhello\r\n0\r\n\r\n", b"header line too long"),
        (b"5\r\nhello\r\n0;" + b"a" * 4093 + b"\r\n\r\n", b"header line too long"),
        (b"0" * 4094 + b"5\r\nhello\r\n0\r\n\r\n", b"header line too long"),
        (b"0" * 16 + b"5\r\nhello\r\n0\r\n\r\n", b"http chunk length too large"),
        (b"0" * 15 + b"5;x\r\nhello\r\n0\r\n\r\n", None),
        ((b"1;" + b"a" * 3000 + b"\r\nx\r\n") * 5 + b"0\r\n\r\n", None),
        ((b"1;" + b"a" * 3000 + b"\r\nx\r\n") * 6 + b"0\r\n\r\n", b"chunked encoding contains too much non-data"),
    ]
    for chunks, error in cases:
        ga, ka = framing_same(t, put_chunked(t.fid(), chunks), chunks[:40])
        if error is None:
            assert [a[0] for a in ka] == [b"HTTP/1.1 201 Created", b"HTTP/1.1 200 OK"], (chunks[:40], ka)
        else:
            assert len(ka) == 1 and ka[0][0] == b"HTTP/1.1 400 Bad Request", (chunks[:40], ka)
            assert json.loads(ka[0][2]) == {"error": error.decode()}, ka


def test_header_counts_hosts_and_expectations_answer_as_go(t):
    def get(extra, version=b"HTTP/1.1", host=b"Host: x\r\n"):
        return b"GET /healthz " + version + b"\r\n" + host + b"Connection: close\r\n" + extra + b"\r\n"
    for n in (498, 499, 10_000):
        # With Host and Connection: 500 fields are read, 501 are too many.
        ga, ka = framing_same(t, get(b"".join(b"X-H%d: v\r\n" % i for i in range(n))), f"{n} headers")
        assert (ka[0][0] == b"HTTP/1.1 431 Request Header Fields Too Large") == (n > 498), (n, ka)
    ga, ka = framing_same(t, get(b"", host=b"Host: x\r\nHost: y\r\n"), "two Host headers")
    assert ka == [(b"HTTP/1.1 400 Bad Request", ka[0][1], b"400 Bad Request")]
    for expect in (b"foo", b"100-continuex", b"foo, bar"):
        ga, ka = framing_same(t, get(b"Expect: " + expect + b"\r\n"), expect)
        assert ka[0][0] == b"HTTP/1.1 417 Expectation Failed" and ka[0][2] == b"", ka
        assert ga[0][1] == ka[0][1], (ga, ka)  # Connection: close, Content-Length: 0
        fid = t.fid()
        ga, ka = framing_same(t, b"PUT /" + fid.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nExpect: " +
                              expect + b"\r\nContent-Length: 5\r\n\r\nhello", expect)
        assert ka[0][0] == b"HTTP/1.1 417 Expectation Failed", ka
    # A list holding 100-continue is a continue.
    fid = t.fid()
    ga, ka = framing_same(t, b"PUT /" + fid.encode() + b"?ts=1764000000 HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                          b"Expect: foo, 100-Continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello", "continue")
    assert [a[0] for a in ka] == [b"HTTP/1.1 100 Continue", b"HTTP/1.1 201 Created"], ka
