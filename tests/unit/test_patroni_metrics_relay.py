"""The Patroni metrics relay turns Patroni 3.0.2's /metrics into something Prometheus accepts.

The fixtures are real answers of a leader and a replica in the lab, see fixtures/patroni/README.md.
"""

from __future__ import annotations

import http.client
import http.server
import importlib.util
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from programs import terminate
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "monitoring/exporters/patroni_metrics_relay.py"
spec = importlib.util.spec_from_file_location("patroni_metrics_relay", MODULE)
relay_module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = relay_module  # dataclasses look their module up by name
spec.loader.exec_module(relay_module)

FIXTURES = Path(__file__).resolve().parent / "fixtures/patroni"
LEADER = (FIXTURES / "patroni-leader.txt").read_text()
REPLICA = (FIXTURES / "patroni-replica.txt").read_text()
RELAY_METRICS = {"patroni_relay_up", "patroni_relay_dropped_samples", "patroni_relay_scrape_duration_seconds"}
# Patroni's own counters without _total: promtool's lint complains, Prometheus does not care.
PATRONI_LINT = {
    f'{name} counter metrics should have "_total" suffix'
    for name in (
        "patroni_postgres_timeline",
        "patroni_xlog_location",
        "patroni_xlog_received_location",
        "patroni_xlog_replayed_location",
    )
}
TIMELINE_LINT = 'patroni_postgres_timeline counter metrics should have "_total" suffix'


def samples_of(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def families_of(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


def promtool_problems(text: str) -> set[str]:
    """promtool's complaints about the text; parse errors fail the test at once."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not on PATH (it comes with Debian's prometheus package: make setup installs it)")
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    output = (result.stdout + result.stderr).strip()
    # 0: clean, 3: lint problems only; 1: the text does not parse.
    assert result.returncode in (0, 3), output
    assert "error while linting" not in output, output
    return set(filter(None, output.splitlines()))


# --- repair() ------------------------------------------------------------------------------------------


def test_replica_none_is_dropped_with_its_help_and_type():
    repaired = relay_module.repair(REPLICA)
    assert repaired.dropped == 1
    assert "None" not in repaired.text
    assert "patroni_postgres_timeline" not in repaired.text
    assert 'patroni_postgres_server_version{scope="govops-pg"} 150020\n' in repaired.text
    original = REPLICA.replace("patroni_postgres_server_version {", "patroni_postgres_server_version{")
    expected = [line for line in original.splitlines() if "patroni_postgres_timeline" not in line]
    assert repaired.text.splitlines() == expected


def test_leader_only_loses_the_stray_space():
    repaired = relay_module.repair(LEADER)
    assert repaired.dropped == 0
    assert repaired.text == LEADER.replace("patroni_postgres_server_version {", "patroni_postgres_server_version{")
    assert samples_of(repaired.text) == samples_of(LEADER)


def test_help_and_type_stay_while_a_sample_of_the_metric_is_left():
    text = (
        "# HELP m Two members.\n# TYPE m gauge\n"
        'm{member="a"} None\n'
        'm {member="b"}\t2\n'
        "# HELP h A histogram.\n# TYPE h histogram\n"
        'h_bucket{le="1"} 1\nh_bucket{le="+Inf"} nope\nh_sum 0.5\nh_count 1\n'
        "# HELP empty Declared without samples.\n# TYPE empty gauge\n"
        "# a plain comment\n"
    )
    repaired = relay_module.repair(text)
    assert repaired.dropped == 2
    assert repaired.text == (
        '# HELP m Two members.\n# TYPE m gauge\nm{member="b"} 2\n'
        '# HELP h A histogram.\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 0.5\nh_count 1\n'
        "# HELP empty Declared without samples.\n# TYPE empty gauge\n# a plain comment\n"
    )


@pytest.mark.parametrize(
    "line",
    [
        "m 1",
        "m 1.5e-3",
        "m -.5",
        "m NaN",
        "m +Inf",
        "m -Inf",
        "m 030002",
        "m 7 1795971583000",
        'm{a="x}y",b="q\\"uote"} 1',
        'm{a="1",} 2',
        "m{} 3",
    ],
)
def test_valid_samples_are_kept(line):
    repaired = relay_module.repair(f"# TYPE m gauge\n{line}\n")
    assert repaired.dropped == 0
    assert repaired.text == f"# TYPE m gauge\n{line}\n"
    assert len(samples_of(repaired.text)) == 1


@pytest.mark.parametrize(
    "line",
    [
        "m None",
        "m null",
        "m 1_000",
        "m 0x10",
        "m",
        'm{a="1" 2',
        "m{a=1} 2",
        'm{a="1"} 2 notatime',
    ],
)
def test_unreadable_samples_are_dropped_and_counted(line):
    repaired = relay_module.repair(f"# HELP m M.\n# TYPE m gauge\n{line}\nother 1\n")
    assert repaired.dropped == 1
    assert repaired.text == "other 1\n"


def test_a_line_of_no_metric_is_dropped_and_counted():
    repaired = relay_module.repair("# TYPE m gauge\nm 1\n<html>Not Found</html>\n")
    assert repaired.dropped == 1
    assert repaired.text == "# TYPE m gauge\nm 1\n"


# --- the program, in front of a fake Patroni ------------------------------------------------------------


class FakePatroni(http.server.BaseHTTPRequestHandler):
    body: ClassVar[str] = REPLICA
    status: ClassVar[int] = 200
    requests: ClassVar[int] = 0

    def do_GET(self):
        type(self).requests += 1
        body = self.body.encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve(server: http.server.HTTPServer) -> http.server.HTTPServer:
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def patroni() -> Iterator[str]:
    FakePatroni.body, FakePatroni.status, FakePatroni.requests = REPLICA, 200, 0
    server = serve(http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakePatroni))
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RelayProcess:
    def __init__(self, *args: str, context: ssl.SSLContext | None = None) -> None:
        self.port = free_port()
        self.context = context
        self.scheme = "https" if context else "http"
        argv = [sys.executable, str(MODULE), "--listen", f"127.0.0.1:{self.port}", *args]
        self.process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        self.stderr = ""
        deadline = time.monotonic() + 10
        while True:
            try:
                self.get("/")
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise AssertionError(f"the relay did not start: {self.stderr}") from None
                time.sleep(0.05)

    def get(self, path: str = "/metrics") -> tuple[int, str, str]:
        url = f"{self.scheme}://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=10, context=self.context) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()

    def metrics(self) -> str:
        status, content_type, text = self.get()
        assert status == 200
        assert content_type.startswith("text/plain; version=0.0.4")
        return text

    def stop(self) -> None:
        if self.process.returncode is None:
            self.stderr = terminate(self.process)


@pytest.fixture
def start() -> Iterator:
    started: list[RelayProcess] = []

    def _start(*args: str, context: ssl.SSLContext | None = None) -> RelayProcess:
        started.append(RelayProcess(*args, context=context))
        return started[-1]

    yield _start
    for process in started:
        process.stop()


def test_replica_passes_parser_and_promtool(start, patroni):
    relay = start("--patroni-url", patroni)
    text = relay.metrics()
    samples = samples_of(text)
    assert samples[("patroni_relay_up", ())] == 1
    assert samples[("patroni_relay_dropped_samples", ())] == 1
    assert samples[("patroni_replica", (("scope", "govops-pg"),))] == 1
    assert samples[("patroni_postgres_server_version", (("scope", "govops-pg"),))] == 150020
    assert "patroni_postgres_timeline" not in families_of(text)
    # Every other metric of Patroni's answer is there.
    assert families_of(text) == families_of(LEADER) - {"patroni_postgres_timeline"} | RELAY_METRICS
    # promtool refuses Patroni's own answer and accepts the relay's; only Patroni's naming remains to lint.
    assert promtool_problems(text) <= PATRONI_LINT - {TIMELINE_LINT}


def test_replica_as_patroni_serves_it_fails_promtool():
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not on PATH (it comes with Debian's prometheus package: make setup installs it)")
    result = subprocess.run(["promtool", "check", "metrics"], input=REPLICA, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert 'expected float as value, got "None"' in result.stdout + result.stderr


def test_leader_is_relayed_whole(start, patroni):
    FakePatroni.body = LEADER
    relay = start("--patroni-url", patroni)
    text = relay.metrics()
    samples = samples_of(text)
    assert samples[("patroni_relay_dropped_samples", ())] == 0
    assert {key: number for key, number in samples.items() if key[0] not in RELAY_METRICS} == samples_of(LEADER)
    assert "patroni_postgres_server_version {" not in text
    assert promtool_problems(text) <= PATRONI_LINT
    # Each scrape of the relay is one request to Patroni.
    before = FakePatroni.requests
    relay.metrics()
    relay.metrics()
    assert FakePatroni.requests == before + 2
    with pytest.raises(urllib.error.HTTPError) as error:
        relay.get("/other")
    assert error.value.code == 404


def test_patroni_down_leaves_only_the_relay_metrics(start, patroni):
    closed = f"http://127.0.0.1:{free_port()}/metrics"
    relay = start("--patroni-url", closed)
    text = relay.metrics()
    assert families_of(text) == RELAY_METRICS
    assert samples_of(text)[("patroni_relay_up", ())] == 0
    promtool_problems(text)
    relay.stop()
    assert "cannot read Patroni's metrics" in relay.stderr
    assert "Connection refused" in relay.stderr


def test_patroni_error_status_is_down_and_recovery_is_seen(start, patroni):
    FakePatroni.status, FakePatroni.body = 503, "503 Service Unavailable"
    relay = start("--patroni-url", patroni)
    text = relay.metrics()
    assert families_of(text) == RELAY_METRICS
    assert samples_of(text)[("patroni_relay_up", ())] == 0
    # A failure that lasts is logged once.
    relay.metrics()
    FakePatroni.status, FakePatroni.body = 200, LEADER
    assert samples_of(relay.metrics())[("patroni_relay_up", ())] == 1
    relay.stop()
    assert relay.stderr.count("Patroni answered HTTP 503") == 1
    assert "answers again" in relay.stderr


def test_a_silent_patroni_times_out():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/metrics"
        relay = relay_module.Relay(relay_module.PatroniFetcher(url, None, timeout=0.3))
        began = time.monotonic()
        text = relay.scrape().decode()
    assert time.monotonic() - began < 3
    assert samples_of(text)[("patroni_relay_up", ())] == 0


# --- TLS ----------------------------------------------------------------------------------------------


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A CA, a certificate for 127.0.0.1 (Patroni's and the relay's) and a client certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl program is needed to make test certificates")
    directory = tmp_path_factory.mktemp("pki")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=test CA", "-days", "2", cwd=directory
    )
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        (directory / f"{name}.ext").write_text(extension + "\n")
        openssl(
            "req", "-new", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=directory
        )
        openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=directory,
        )  # fmt: skip
    return directory


@pytest.fixture
def tls_patroni(pki) -> Iterator[str]:
    """The fake Patroni on HTTPS, asking for a client certificate as Patroni's `verify_client: required`."""
    FakePatroni.body, FakePatroni.status, FakePatroni.requests = REPLICA, 200, 0
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.crt", pki / "server.key")
    context.load_verify_locations(pki / "ca.crt")
    context.verify_mode = ssl.CERT_REQUIRED
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakePatroni)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    serve(server)
    yield f"https://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()


def test_tls_both_ways(start, pki, tls_patroni):
    client = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    relay = start(
        "--patroni-url", tls_patroni, "--cafile", str(pki / "ca.crt"),
        "--certfile", str(pki / "client.crt"), "--keyfile", str(pki / "client.key"),
        "--tls-certfile", str(pki / "server.crt"), "--tls-keyfile", str(pki / "server.key"),
        context=client,
    )  # fmt: skip
    samples = samples_of(relay.metrics())
    assert samples[("patroni_relay_up", ())] == 1
    assert samples[("patroni_relay_dropped_samples", ())] == 1
    # Plain HTTP to the HTTPS port gets nothing.
    with pytest.raises((OSError, http.client.HTTPException)):
        urllib.request.urlopen(f"http://127.0.0.1:{relay.port}/metrics", timeout=5)


def build(*argv: str) -> tuple:
    parser = relay_module.build_parser()
    return relay_module.build(parser.parse_args(list(argv)))


def test_tls_client_options_are_used(pki, tls_patroni):
    ca = str(pki / "ca.crt")
    _, with_client_cert, _ = build(
        "--patroni-url", tls_patroni, "--cafile", ca,
        "--certfile", str(pki / "client.crt"), "--keyfile", str(pki / "client.key"),
    )  # fmt: skip
    assert samples_of(with_client_cert.scrape().decode())[("patroni_relay_up", ())] == 1
    # Without the client certificate Patroni refuses the handshake.
    _, without_client_cert, _ = build("--patroni-url", tls_patroni, "--cafile", ca)
    assert samples_of(without_client_cert.scrape().decode())[("patroni_relay_up", ())] == 0
    # Without --cafile Patroni's certificate is checked against the system's CAs, and fails.
    _, system_cas, _ = build(
        "--patroni-url", tls_patroni, "--certfile", str(pki / "client.crt"), "--keyfile", str(pki / "client.key")
    )
    assert samples_of(system_cas.scrape().decode())[("patroni_relay_up", ())] == 0
    # A certificate for 127.0.0.1 is not one for localhost.
    _, wrong_name, _ = build(
        "--patroni-url", tls_patroni.replace("127.0.0.1", "localhost"), "--cafile", ca,
        "--certfile", str(pki / "client.crt"), "--keyfile", str(pki / "client.key"),
    )  # fmt: skip
    assert samples_of(wrong_name.scrape().decode())[("patroni_relay_up", ())] == 0


# --- command line ---------------------------------------------------------------------------------------


def test_command_line_defaults():
    args = relay_module.build_parser().parse_args(["--patroni-url", "https://db1:8008/metrics"])
    assert (args.listen, args.timeout, args.cafile, args.certfile, args.tls_certfile) == (
        "0.0.0.0:9547", 5.0, None, None, None,
    )  # fmt: skip
    address, _, tls = relay_module.build(args)
    assert address == ("0.0.0.0", 9547)
    assert tls is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--keyfile", "{pki}/client.key"], "--keyfile needs --certfile"),
        (["--cafile", "{pki}/nothing.crt"], "--cafile {pki}/nothing.crt does not exist"),
        (["--cafile", "{pki}/client.ext"], "holds no usable CA certificate"),
        (["--certfile", "{pki}/ca.crt", "--keyfile", "{pki}/client.key"], "cannot load the client certificate"),
        (["--tls-keyfile", "{pki}/server.key"], "--tls-keyfile needs --tls-certfile"),
        (["--tls-certfile", "{pki}/client.ext"], "cannot load the certificate"),
        (["--listen", "9547"], "is not HOST:PORT"),
        (["--timeout", "0"], "not a positive number"),
    ],
)
def test_bad_tls_options_are_refused(capsys, pki, argv, message):
    argv = [arg.format(pki=pki) for arg in argv]
    with pytest.raises(SystemExit) as exit_info:
        relay_module.main(["--patroni-url", "https://db1:8008/metrics", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message.format(pki=pki) in err


def test_client_tls_options_need_https(capsys):
    with pytest.raises(SystemExit):
        relay_module.main(["--patroni-url", "http://db1:8008/metrics", "--cafile", "/etc/ssl/certs/ca.crt"])
    assert "need an https:// --patroni-url" in capsys.readouterr().err


def test_patroni_url_is_required(capsys):
    with pytest.raises(SystemExit):
        relay_module.main([])
    assert "--patroni-url" in capsys.readouterr().err
