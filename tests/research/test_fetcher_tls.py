"""TLS on a pinned address: the fetch connects to the checked IP, and the certificate is
still verified against the URL's host name (not the IP it connected to)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gust.adapters.web.fetcher import SafeFetcher
from gust.adapters.web.guard import AddressPolicy
from gust.ports.web import FetchError
from tests.research.conftest import StaticResolver
from tests.support.site_server import SiteServer


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(directory: Path, host: str) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for `host` signed by it: (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Gust test CA"))
        .issuer_name(_name("Gust test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_path, cert_path, key_path


@pytest.fixture
async def tls_site(tmp_path: Path) -> AsyncIterator[tuple[SiteServer, Path]]:
    ca, cert, key = make_certificates(tmp_path, "news.example.com")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server = await SiteServer(hosts=("127.0.0.2",), ssl_context=server_context).start()
    yield server, ca
    await server.stop()


def tls_fetcher(site: SiteServer, ca: Path, *, trust_ca: bool = True) -> SafeFetcher:
    resolver = StaticResolver({"news.example.com": ["127.0.0.2"], "other.example.com": ["127.0.0.2"]})
    policy = AddressPolicy(
        allowed_ports=frozenset({site.port}), allowed_addresses=frozenset({ipaddress.ip_address("127.0.0.2")})
    )
    context = ssl.create_default_context(cafile=str(ca)) if trust_ca else None
    return SafeFetcher(policy=policy, resolver=resolver, ssl_context=context)


async def test_https_to_the_pinned_address_verifies_the_url_host(
    tls_site: tuple[SiteServer, Path],
) -> None:
    site, ca = tls_site
    fetcher = tls_fetcher(site, ca)
    try:
        page = await fetcher.fetch(site.url("/article/bees", host="news.example.com"))
    finally:
        await fetcher.close()
    assert page.url.startswith("https://news.example.com:")
    assert "waggle dance" in page.text
    assert [(h.path, h.local_address) for h in site.hits] == [("/article/bees", "127.0.0.2")]


async def test_a_certificate_for_another_name_is_refused(tls_site: tuple[SiteServer, Path]) -> None:
    """Same address, same trusted CA, but the URL names a host the certificate is not for."""
    site, ca = tls_site
    fetcher = tls_fetcher(site, ca)
    try:
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(site.url("/article/bees", host="other.example.com"))
    finally:
        await fetcher.close()
    assert (info.value.kind, info.value.reason) == ("network", "TLS error")
    assert site.hits == []


async def test_an_untrusted_certificate_is_refused(tls_site: tuple[SiteServer, Path]) -> None:
    site, ca = tls_site
    fetcher = tls_fetcher(site, ca, trust_ca=False)  # the system CAs do not know the test CA
    try:
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(site.url("/article/bees", host="news.example.com"))
    finally:
        await fetcher.close()
    assert (info.value.kind, info.value.reason) == ("network", "TLS error")
    assert site.hits == []
