"""A local certificate authority for `cqrs services up --secure`, made with `cryptography`.

The CA and every certificate it issues live in one directory of the state directory (mode 0700):
`ca.pem` (the certificate clients trust, also 0644 so that any user may verify against it) and
`ca.key`; then `<name>.pem` (certificate, then the CA's) and `<name>.key` (PKCS#8, unencrypted,
0600) per service. Made once: a second `up` reuses them, and reissues a certificate only when it
is missing, was signed by another CA, or expires within 30 days.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cqrs.services.credentials import write_secret_file

CA_NAME = "kafka-cqrs local CA"
CA_DAYS = 3650
CERT_DAYS = 825
RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True)
class Issued:
    """One certificate: `cert` (PEM, its chain up to the CA) and its private `key` (PEM)."""

    cert: Path
    key: Path


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class LocalCA:
    """The CA under `directory`, created on first use."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def cert(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def key(self) -> Path:
        return self.directory / "ca.key"

    def ensure(self) -> None:
        """Create the CA unless a valid one is there."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o755)  # the certificates are public; the keys are 0600 each
        if self.cert.exists() and self.key.exists() and not _expiring(self.cert):
            return
        key = _new_key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        write_secret_file(self.key, _key_pem(key))
        write_secret_file(self.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)

    def issue(self, name: str, hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
              client: bool = False) -> Issued:
        """`<name>.pem`/`<name>.key`: a certificate for `hosts` (server and, with `client`,
        client authentication too; its common name is `name`), issued unless a valid one is
        there."""
        self.ensure()
        issued = Issued(self.directory / f"{name}.pem", self.directory / f"{name}.key")
        if issued.key.exists() and issued.cert.exists() and self._current(issued.cert):
            return issued
        ca_cert = x509.load_pem_x509_certificate(self.cert.read_bytes())
        ca_key = serialization.load_pem_private_key(self.key.read_bytes(), password=None)
        assert isinstance(ca_key, rsa.RSAPrivateKey)
        key = _new_key()
        now = _now()
        usages = [ExtendedKeyUsageOID.SERVER_AUTH, *([ExtendedKeyUsageOID.CLIENT_AUTH]
                                                     if client else [])]
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        write_secret_file(issued.key, _key_pem(key))
        chain = cert.public_bytes(serialization.Encoding.PEM) + self.cert.read_bytes()
        write_secret_file(issued.cert, chain, 0o644)
        return issued

    def _current(self, cert_path: Path) -> bool:
        """Signed by this CA and not expiring soon."""
        if _expiring(cert_path):
            return False
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        ca_cert = x509.load_pem_x509_certificate(self.cert.read_bytes())
        try:
            cert.verify_directly_issued_by(ca_cert)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True


def _expiring(cert_path: Path) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return True
    return cert.not_valid_after_utc - _now() < RENEW_BEFORE
