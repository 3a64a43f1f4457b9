"""deploy/nginx.conf run by a real nginx, when one is installed: redirect, TLS, HSTS, routing.

Also the plain-HTTP origin `make run` derives from it (scripts/run_local.py).

The file is adapted only where a machine outside compose must differ: listening ports and the
upstream servers become free local ports (seven small HTTP servers, each answering its service's
name), the certificate is a self-signed pair made here, and what the local nginx may lack is
dropped — `resolve` on upstream servers (open-source nginx >= 1.27.3, compose pins that) and
`http2 on` (>= 1.25.1). Everything else — the TLS server, the redirect, the headers, the
locations — is the file as deployed.
"""
import json
import re
import shutil
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.support import free_port, poll

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SERVICES = ("intake", "routing", "sla", "notify", "tracking", "reporting", "console")

BACKENDS = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

class Answer(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"service": self.server.name, "path": self.path,
                           "proto": self.headers.get("X-Forwarded-Proto")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

servers = []
for pair in sys.argv[1:]:
    name, port = pair.split("=")
    server = ThreadingHTTPServer(("127.0.0.1", int(port)), Answer)
    server.name = name
    Thread(target=server.serve_forever, daemon=True).start()
    servers.append(server)
print("ready", flush=True)
sys.stdin.read()
"""


# HTTPS from a child process: the tests run eventlet-patched (conftest.py), and its patched
# ssl module recurses inside urllib3's context set-up.
CLIENT = r"""
import json, ssl, sys, urllib.error, urllib.request

context = ssl.create_default_context(cafile=sys.argv[2])
try:
    answer = urllib.request.urlopen(sys.argv[1], context=context, timeout=5)
except urllib.error.HTTPError as error:
    answer = error
print(json.dumps({"status": answer.status, "headers": dict(answer.headers),
                  "body": answer.read().decode()}))
"""


class Answer:
    """What an HTTPS request got: status, headers, body."""

    def __init__(self, url: str, cafile: str):
        done = subprocess.run([sys.executable, "-c", CLIENT, url, cafile],
                              capture_output=True, text=True, timeout=30, check=True)
        got = json.loads(done.stdout)
        self.status_code, self.headers, self.text = got["status"], got["headers"], got["body"]

    def json(self):
        return json.loads(self.text)


@contextmanager
def running(nginx: str, conf: Path, ports: dict, listening: list[int], *args: str):
    """The stand-in backends on `ports` and nginx with `conf`, until the block ends."""
    backends = subprocess.Popen(
        [sys.executable, "-c", BACKENDS, *(f"{name}={port}" for name, port in ports.items())],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    server = None
    try:
        assert backends.stdout.readline().strip() == "ready"
        server = subprocess.Popen([nginx, "-c", str(conf), *args, "-g", "daemon off;"],
                                  stderr=subprocess.PIPE)
        for port in listening:
            wait_for_port(port, server)
        yield
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        backends.stdin.close()
        backends.terminate()
        backends.wait(timeout=10)


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 10) -> None:
    def listening() -> bool:
        assert process.poll() is None, "the process ended"
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    assert poll(listening, bool, seconds, every=0.02), f"nothing listens on {port}"


def adapted(conf: str, ports: dict, http: int, https: int, tmp: Path) -> str:
    for name in SERVICES:
        conf = re.sub(rf"server\s+{name}:8000\s+resolve\s*;",
                      f"server 127.0.0.1:{ports[name]};", conf)
    conf = re.sub(r"(?m)^\s*http2\s+on\s*;", "", conf)
    conf = re.sub(r"(?m)^user\s+\S+;", "", conf)
    conf = re.sub(r"(?m)^pid\s+\S+;", f"pid {tmp}/nginx.pid;", conf)
    conf = re.sub(r"(?m)^error_log\s+[^;]+;", "error_log stderr warn;", conf)
    conf = re.sub(r"access_log\s+/var/log/nginx/access\.log\s+main;", "access_log off;", conf)
    conf = conf.replace("/run/secrets/tls_certificate", str(tmp / "cert.pem"))
    conf = conf.replace("/run/secrets/tls_key", str(tmp / "key.pem"))
    conf = re.sub(r"listen\s+8080\s*;", f"listen 127.0.0.1:{http};", conf)
    conf = re.sub(r"listen\s+8443\s+ssl\s*;", f"listen 127.0.0.1:{https} ssl;", conf)
    assert "resolve;" not in conf and ":8000;" not in conf, "the adaptation missed a line"
    return conf


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None or shutil.which("openssl") is None:
        pytest.skip("nginx and openssl are not installed")
    tmp = tmp_path_factory.mktemp("nginx")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-sha256", "-days", "1", "-nodes",
         "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem"), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60)
    ports = {name: free_port() for name in SERVICES}
    http, https = free_port(), free_port()
    (tmp / "nginx.conf").write_text(
        adapted((DEPLOY / "nginx.conf").read_text(encoding="utf-8"), ports, http, https, tmp),
        encoding="utf-8")
    checked = subprocess.run([nginx, "-t", "-c", str(tmp / "nginx.conf"), "-e", "stderr"],
                             capture_output=True, text=True, timeout=30, check=False)
    if checked.returncode and "permission denied" in checked.stderr.lower():
        pytest.skip(f"this nginx cannot run here: {checked.stderr.strip()[:200]}")
    assert checked.returncode == 0, checked.stderr
    with running(nginx, tmp / "nginx.conf", ports, [http, https], "-e", "stderr"):
        yield str(tmp / "cert.pem"), f"http://127.0.0.1:{http}", f"https://127.0.0.1:{https}"


@pytest.mark.parametrize("path", ["/", "/api/v1/applications", "/takip/ABC?x=1", "/console"])
def test_plain_http_is_redirected_to_the_same_address_over_https(proxy, path):
    _, http, _ = proxy
    answer = requests.get(f"{http}{path}", allow_redirects=False, timeout=5)
    assert answer.status_code == 301
    assert answer.headers["Location"] == f"https://127.0.0.1{path}"
    assert "Strict-Transport-Security" not in answer.headers  # meaningless over HTTP


def test_plain_http_still_answers_the_proxys_own_healthz(proxy):
    _, http, _ = proxy
    answer = requests.get(f"{http}/healthz", allow_redirects=False, timeout=5)
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


@pytest.mark.parametrize(("path", "service"), [
    ("/api/v1/applications", "intake"), ("/basvuru", "intake"),
    ("/api/v1/cases/1", "routing"), ("/api/v1/categories", "routing"),
    ("/api/v1/sla/x", "sla"), ("/api/v1/notifications", "notify"),
    ("/api/v1/track", "tracking"), ("/open311/v2/services.json", "tracking"),
    ("/", "tracking"), ("/api/v1/reports", "reporting"), ("/raporlar", "reporting"),
    ("/console/login", "console"),
])
def test_https_routes_each_prefix_to_its_service_with_hsts(proxy, path, service):
    cafile, _, https = proxy
    answer = Answer(f"{https}{path}", cafile)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"service": service, "path": path, "proto": "https"}
    assert answer.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert answer.headers.get("X-Request-Id")


def test_https_keeps_metrics_private_and_serves_openapi_per_service(proxy):
    cafile, _, https = proxy
    hidden = Answer(f"{https}/metrics", cafile)
    assert hidden.status_code == 404
    assert "Strict-Transport-Security" in hidden.headers  # `always`: error answers too
    spec = Answer(f"{https}/_/sla/openapi.json", cafile).json()
    assert spec == {"service": "sla", "path": "/openapi.json", "proto": "https"}


@pytest.fixture(scope="module")
def local_origin(tmp_path_factory):
    """nginx with the configuration `make run` derives (scripts/run_local.py), on a free port."""
    sys.path.insert(0, str(DEPLOY.parent / "scripts"))
    try:
        from run_local import local_nginx_conf
    finally:
        sys.path.pop(0)
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        pytest.skip("nginx is not installed")
    tmp = tmp_path_factory.mktemp("local-nginx")
    ports = {name: free_port() for name in SERVICES}
    listen = free_port()
    conf = local_nginx_conf((DEPLOY / "nginx.conf").read_text(encoding="utf-8"), ports,
                            f"127.0.0.1:{listen}", tmp)
    (tmp / "nginx.conf").write_text(conf, encoding="utf-8")
    with running(nginx, tmp / "nginx.conf", ports, [listen]):
        yield f"http://127.0.0.1:{listen}"


@pytest.mark.parametrize(("path", "service"), [
    ("/api/v1/applications", "intake"), ("/api/v1/cases", "routing"), ("/", "tracking"),
    ("/console", "console"), ("/healthz", None),
])
def test_the_local_origin_routes_over_plain_http_without_redirect(local_origin, path, service):
    answer = requests.get(f"{local_origin}{path}", allow_redirects=False, timeout=5)
    assert answer.status_code == 200
    assert "Strict-Transport-Security" not in answer.headers
    if service is None:
        assert answer.json() == {"status": "ok"}
    else:
        assert answer.json() == {"service": service, "path": path, "proto": "http"}
