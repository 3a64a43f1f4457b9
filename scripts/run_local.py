"""`make run`: every service in its own OS process, one origin on :8000, as compose runs them.

supervisord (design §11) starts the seven services (`python -m services.<name>`, each on its own
loopback port) and nginx in front of them; it restarts one that dies and, on Ctrl-C or SIGTERM,
stops them all (each gets `STOP_SECONDS` to finish its work) and exits. Its configuration and
nginx's are written under `var/run/` at every start:

- nginx's is derived from `deploy/nginx.conf`, so the local origin routes paths exactly as
  production does: upstreams point at 127.0.0.1 ports instead of container names, and what
  Debian's nginx 1.22 lacks (`resolve`, Docker's DNS, `http2 on`) or what needs root (`user`)
  is left out. The local origin is plain HTTP: the HTTPS server's routing is served on the
  local port, without its certificate and HSTS, and the server that only redirects to HTTPS
  is dropped.
- The embedded database (FerretDB) and RabbitMQ are started before, by their `ensure-*`
  scripts, and outlive a stop like any database server.

`python scripts/run_local.py --print` writes the files and prints the supervisord
configuration without starting anything.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("intake", "routing", "sla", "notify", "tracking", "reporting", "console")
# the staff APIs the console's pages call
CONSOLE_CALLS = ("intake", "routing", "sla", "reporting", "tracking", "notify")
FIRST_PORT = 8101  # intake 8101, routing 8102, … reporting 8106, console 8107
STOP_SECONDS = 25  # below the 30 s within which the whole tree must be gone


def service_ports(first: int = FIRST_PORT) -> dict[str, int]:
    """The loopback port of each service's HTTP API."""
    return {name: first + i for i, name in enumerate(SERVICES)}


def _without_redirect_server(text: str) -> str:
    """`text` without the `server { … }` block that only redirects to HTTPS."""
    for match in re.finditer(r"(?m)^\s*server\s*\{", text):
        depth, end = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            end += 1
        if "return 301 https://" in text[match.end():end]:
            return text[:match.start()] + "\n" + text[end:]
    return text


def local_nginx_conf(deploy_conf: str, ports: dict[str, int], listen: str, run_dir: Path) -> str:
    """`deploy/nginx.conf` rewritten for one machine without root or Docker."""
    text = deploy_conf
    text = re.sub(r"(?m)^\s*user\s+[^;]+;\n", "", text)
    text = re.sub(r"(?m)^\s*resolver(_timeout)?\s+[^;]+;\n", "", text)
    text = re.sub(r"(?m)^\s*zone\s+upstream_\w+\s+\w+;\n", "", text)
    for name, port in ports.items():
        text = re.sub(rf"server\s+{name}:\d+(\s+resolve)?;", f"server 127.0.0.1:{port};", text)
    text = _without_redirect_server(text)
    # the HTTPS server becomes the local plain-HTTP origin (no certificate on this machine)
    text = re.sub(r"(?m)^(\s*)listen\s+\d+\s+ssl;", rf"\1listen {listen};", text)
    text = re.sub(r"(?m)^\s*(ssl_\w+|http2)\s+[^;]+;\n", "", text)
    text = re.sub(r'(?m)^\s*add_header\s+Strict-Transport-Security\s+"[^"]*"[^;]*;\n', "", text)
    text = re.sub(r"error_log\s+\S+", f"error_log {run_dir / 'nginx-error.log'}", text)
    text = re.sub(r"access_log\s+/\S+", f"access_log {run_dir / 'nginx-access.log'}", text)
    text = re.sub(r"(?m)^pid\s+\S+;", f"pid {run_dir / 'nginx.pid'};", text)
    temp = "".join(f"    {kind}_temp_path {run_dir / ('nginx-' + kind)};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    text = text.replace("http {\n", "http {\n" + temp, 1)
    if "worker_processes" in text:
        text = re.sub(r"worker_processes\s+\w+;", "worker_processes 2;", text)
    return text


def supervisord_conf(python: str, ports: dict[str, int], nginx: str, run_dir: Path,
                     replicas: dict[str, int] | None = None) -> str:
    """supervisord's configuration: the services (with `replicas`, some twice) and nginx."""
    sections = [
        "[supervisord]",
        "nodaemon=true",
        f"logfile={run_dir / 'supervisord.log'}",
        f"pidfile={run_dir / 'supervisord.pid'}",
        "loglevel=warn",
        "",
        "[unix_http_server]",
        f"file={run_dir / 'supervisor.sock'}",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{run_dir / 'supervisor.sock'}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
    ]
    common = [
        f"directory={ROOT}",
        "autorestart=true",
        "startsecs=3",
        "startretries=10",
        f"stopwaitsecs={STOP_SECONDS}",
        "stopasgroup=true",
        "killasgroup=true",
        "redirect_stderr=true",
        "stdout_logfile=/dev/stdout",
        "stdout_logfile_maxbytes=0",
    ]
    for name, port in ports.items():
        count = (replicas or {}).get(name, 1)
        # Children inherit supervisord's environment (MONGO_URI, AMQP_URI, …) plus these.
        # Replicas share the port: eventlet listens with SO_REUSEPORT, the kernel spreads
        # connections between them.
        # nginx is the one hop in front (its X-Forwarded-For names the client), as in compose.
        env = {"HTTP_PORT": str(port), "PYTHONUNBUFFERED": "1",
               "PROXY_HOPS": os.environ.get("PROXY_HOPS", "1")}
        if name == "console":
            # the console calls the services' staff APIs on their own ports, not through nginx
            env.update({f"CONSOLE_{called.upper()}_URL": f"http://127.0.0.1:{ports[called]}"
                        for called in CONSOLE_CALLS if called in ports})
        environment = ",".join(f'{k}="{v}"' for k, v in sorted(env.items()))
        sections += [
            f"[program:{name}]",
            f"command={python} -m services.{name}",
            "priority=100",
            f"numprocs={count}",
            "process_name=%(program_name)s" + ("-%(process_num)d" if count > 1 else ""),
            f"environment={environment}",
            *common,
            "",
        ]
    sections += [
        # supervisord stops one group at a time, highest priority first: nginx first (no new
        # requests), then the seven services together, each finishing its own work.
        "[group:services]",
        f"programs={','.join(ports)}",
        "priority=100",
        "",
        "[program:nginx]",
        f"command={nginx} -c {run_dir / 'nginx.conf'} -g 'daemon off;'",
        "priority=900",
        *common,
        "",
    ]
    return "\n".join(sections)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default=os.environ.get("LISTEN", "127.0.0.1:8000"))
    parser.add_argument("--run-dir", default=str(ROOT / "var" / "run"))
    parser.add_argument("--first-port", type=int, default=FIRST_PORT,
                        help="the services' ports start here (seven in a row)")
    parser.add_argument("--replicas", default=os.environ.get("REPLICAS", ""),
                        help="e.g. intake=2,tracking=2: that many processes of a service")
    parser.add_argument("--print", action="store_true", help="write the files, start nothing")
    args = parser.parse_args(argv)

    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        print("nginx is missing: run scripts/ensure-nginx.sh (Debian's nginx-light)",
              file=sys.stderr)
        return 1
    run_dir = Path(args.run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    ports = service_ports(args.first_port)
    replicas = {name: int(count) for name, _, count in
                (item.partition("=") for item in args.replicas.split(",") if item)}
    deploy_conf = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    (run_dir / "nginx.conf").write_text(
        local_nginx_conf(deploy_conf, ports, args.listen, run_dir), encoding="utf-8")
    conf = supervisord_conf(sys.executable, ports, nginx, run_dir, replicas)
    (run_dir / "supervisord.conf").write_text(conf, encoding="utf-8")
    if args.print:
        print(conf)
        return 0
    supervisord = str(Path(sys.executable).with_name("supervisord"))
    os.execv(supervisord, [supervisord, "-c", str(run_dir / "supervisord.conf")])  # noqa: S606
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
