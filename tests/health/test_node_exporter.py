"""The node exporter on every host: it serves the host's metrics, its systemd and textfile
collectors work, and the expiry of the kit's certificates on the host is exported."""

from __future__ import annotations

from tests.host_checks import host_http

testinfra_hosts = ["ansible://all"]


def metrics(host, port: int) -> str:
    status, text = host_http(host, "GET", f"http://127.0.0.1:{port}/metrics")
    assert status == 200, text[:300]
    return text


def test_exporter_runs_with_the_systemd_and_textfile_collectors(host, role_vars):
    node = role_vars("node_exporter")
    service = host.service("prometheus-node-exporter")
    assert service.is_running and service.is_enabled
    text = metrics(host, node["node_exporter_port"])
    assert 'node_systemd_unit_state{name="prometheus-node-exporter.service",state="active"' in text
    assert "node_textfile_scrape_error 0" in text
    assert "node_filesystem_avail_bytes" in text


def test_certificate_expiry_is_exported_for_every_certificate_file(host, role_vars):
    node = role_vars("node_exporter")
    for unit in ("govops-certificate-expiry.timer", "govops-certificate-expiry.path"):
        watch = host.service(unit)
        assert watch.is_enabled and watch.is_running, unit
    # the role's own patterns, unquoted so the shell expands them
    globs = " ".join(node["node_exporter_certificate_globs"])
    files = host.check_output(f"ls -1 {globs} 2>/dev/null || true").split()
    text = metrics(host, node["node_exporter_port"])
    assert "govops_certificate_read_errors 0" in text
    exported = {
        line.split('path="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if line.startswith("govops_certificate_not_after_timestamp_seconds{")
    }
    assert exported == set(files), f"certificate files {sorted(files)}, exported {sorted(exported)}"
