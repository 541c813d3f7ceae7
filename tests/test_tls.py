"""TLS: verified by default, --ca-bundle, --insecure with a warning; real certificates from trustme."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.reference import ReferenceConfig, ReferenceServer

trustme = pytest.importorskip("trustme")
PASSWORD = "tls-pw-456"


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ReferenceServer, Path]]:
    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file, ca_file = directory / "cert.pem", directory / "key.pem", directory / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    server = ReferenceServer(ReferenceConfig(password=PASSWORD), ssl_certfile=str(cert_file),
                             ssl_keyfile=str(key_file)).start()
    try:
        yield server, ca_file
    finally:
        server.stop()


def run_cli(server: ReferenceServer, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance", "run", "--base-url", server.base_url, "--username",
         server.config.username, "--profile", "schema", "--max-examples", "10",
         "--report-dir", str(tmp_path / "r"), *args],
        capture_output=True, text=True, env={**os.environ, "SDDC_PASSWORD": PASSWORD}, timeout=120,
    )


def test_https_target_is_verified_by_default(tls_server: tuple[ReferenceServer, Path], tmp_path: Path) -> None:
    server, _ = tls_server
    assert server.base_url.startswith("https://")

    result = run_cli(server, tmp_path)

    assert result.returncode == 3
    assert "TLS" in result.stderr or "certificate" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_ca_bundle_verifies_the_certificate(tls_server: tuple[ReferenceServer, Path], tmp_path: Path) -> None:
    server, ca_file = tls_server

    result = run_cli(server, tmp_path, "--ca-bundle", str(ca_file))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in result.stderr


@pytest.mark.slow
def test_insecure_works_with_a_warning(tls_server: tuple[ReferenceServer, Path], tmp_path: Path) -> None:
    server, _ = tls_server

    result = run_cli(server, tmp_path, "--insecure")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "--insecure" in result.stderr and "not verified" in result.stderr
