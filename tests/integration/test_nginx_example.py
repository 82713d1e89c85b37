"""docs/nginx.conf in front of the real app: TLS, the HTTP redirect, forwarded headers that
Gust believes (TRUSTED_PROXIES), and a stream whose first token arrives while the answer is
still being generated. Needs an nginx binary (skips without one)."""

from __future__ import annotations

import asyncio
import re
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.env import free_port
from tests.support.fake_upstream import FakeUpstream, Script
from tests.support.wait import until

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
pytestmark = pytest.mark.skipif(NGINX is None, reason="no nginx binary here (apt-get install nginx-light)")


def site_config(directory: Path, app_port: int, http_port: int, https_port: int) -> str:
    """docs/nginx.conf with local ports and a self-signed certificate, nothing else changed."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=chat.example.com", "-keyout", str(directory / "key.pem"),
         "-out", str(directory / "cert.pem")],
        check=True, capture_output=True,
    )
    text = (ROOT / "docs" / "nginx.conf").read_text()
    replacements = [
        ("server 127.0.0.1:8100;", f"server 127.0.0.1:{app_port};"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen [::]:80;", ""),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;"),
        ("listen [::]:443 ssl http2;", ""),
        ("/etc/letsencrypt/live/chat.example.com/fullchain.pem", str(directory / "cert.pem")),
        ("/etc/letsencrypt/live/chat.example.com/privkey.pem", str(directory / "key.pem")),
    ]
    for old, new in replacements:
        assert old in text, f"docs/nginx.conf no longer contains {old!r}: update this test"
        text = text.replace(old, new)
    return text


@pytest.fixture
async def proxied(tmp_path: Path, upstream: FakeUpstream) -> AsyncIterator[tuple[RunningApp, str, str]]:
    app = await start_app(make_settings(tmp_path / "data", models_file=upstream.models_file(tmp_path),
                                        trusted_proxies=("127.0.0.1",)))
    app_port = int(app.url.rsplit(":", 1)[1])
    http_port, https_port = free_port(), free_port()
    (tmp_path / "site.conf").write_text(site_config(tmp_path, app_port, http_port, https_port))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\nhttp {{\n"
        f"  access_log off;\n"
        + "".join(f"  {kind}_temp_path {tmp_path}/{kind};\n"
                  for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        + f"  include {tmp_path}/site.conf;\n}}\n"
    )
    assert NGINX is not None
    proc = subprocess.Popen([NGINX, "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path),
                             "-g", "daemon off; master_process off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:

        async def listening() -> bool:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", https_port)
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                return False
            writer.close()
            return True

        assert await until(listening, timeout=10, interval=0.05), "nginx never listened"
        yield app, f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}"
    finally:
        proc.terminate()
        proc.wait(10)
        await app.stop()


async def test_the_nginx_example_serves_gust_over_tls_and_streams_unbuffered(
    proxied: tuple[RunningApp, str, str], upstream: FakeUpstream
) -> None:
    app, https_url, http_url = proxied
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    connector = aiohttp.TCPConnector(ssl=insecure)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(http_url + "/health", allow_redirects=False) as resp:
            assert resp.status == 301 and resp.headers["Location"].startswith("https://")
        account = {"email": "alice@example.com", "password": "correct horse 1"}
        async with session.post(https_url + "/api/auth/register", json=account,
                                headers={"Origin": https_url}) as resp:
            assert resp.status == 201, await resp.text()
        async with session.post(https_url + "/api/auth/login", json=account,
                                headers={"Origin": https_url}) as resp:
            assert resp.status == 200, await resp.text()
            token = (await resp.json())["access_token"]
            # Gust believed X-Forwarded-Proto from the trusted proxy: HTTPS-only cookies and HSTS.
            cookies = resp.headers.getall("Set-Cookie")
            assert cookies and all(re.search(r";\s*Secure", c, re.I) for c in cookies)
            assert "Strict-Transport-Security" in resp.headers

        # The upstream sends one token, then nothing: the browser must see it anyway.
        upstream.script = Script(tokens=["Streamed ", "never"], hang_after=1)
        headers = {"Authorization": f"Bearer {token}"}
        async with session.post(https_url + "/chat/stream", json={"message": "hi"}, headers=headers) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
            received = b""

            async def first_token() -> None:
                nonlocal received
                while b"Streamed" not in received:
                    chunk = await resp.content.readany()
                    assert chunk, "the stream ended before the first token"
                    received += chunk

            await asyncio.wait_for(first_token(), 10)
