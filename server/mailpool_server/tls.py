"""TLS for the listeners (gRPC, the HTTP shim, STARTTLS on inbound SMTP) and for the
shim's channel to gRPC. Certificates are PEM files; every file is read and checked once
at start-up, so a wrong path or a key that does not match its certificate is one line
for the operator (BadTls), not a handshake failure on the first call."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from mailpool_server.startup import StartupError


class BadTls(StartupError):
    """A certificate, key or CA file that cannot be used."""


def _read(path: Path, what: str, flag: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        raise BadTls(f"cannot read the {what} {path} ({reason}); check {flag}") from None
    if b"-----BEGIN " not in data:
        raise BadTls(f"the {what} {path} is not a PEM file; check {flag}")
    return data


def _check_pair(cert: Path, key: Path, cert_flag: str, key_flag: str) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as error:
        if "KEY_VALUES_MISMATCH" in str(error) or error.reason == "KEY_VALUES_MISMATCH":
            raise BadTls(
                f"the key {key} does not match the certificate {cert}; check {key_flag}"
            ) from None
        raise BadTls(
            f"cannot use the certificate {cert} with the key {key} "
            f"({error.reason or error}); check {cert_flag} and {key_flag}"
        ) from None


def _check_ca(ca: Path, flag: str) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=ca)
    except ssl.SSLError as error:
        raise BadTls(f"the CA file {ca} holds no usable certificate; check {flag}") from error


@dataclass(frozen=True)
class ServerTls:
    """A listener's certificate (chain) and key, and the CA that client certificates
    must be signed by (mTLS) when given."""

    cert: Path
    key: Path
    client_ca: Path | None = None
    cert_pem: bytes = b""
    key_pem: bytes = b""
    client_ca_pem: bytes | None = None

    @classmethod
    def load(
        cls,
        cert: Path,
        key: Path,
        client_ca: Path | None = None,
        *,
        flags: tuple[str, str, str] = ("--tls-cert", "--tls-key", "--tls-client-ca"),
    ) -> ServerTls:
        """Read and check the files: BadTls naming the file and the flag otherwise."""
        cert_flag, key_flag, ca_flag = flags
        cert_pem = _read(cert, "certificate", cert_flag)
        key_pem = _read(key, "key", key_flag)
        _check_pair(cert, key, cert_flag, key_flag)
        ca_pem = None
        if client_ca is not None:
            ca_pem = _read(client_ca, "client CA", ca_flag)
            _check_ca(client_ca, ca_flag)
        return cls(cert, key, client_ca, cert_pem, key_pem, ca_pem)

    @property
    def mutual(self) -> bool:
        return self.client_ca_pem is not None

    def grpc_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key_pem, self.cert_pem)],
            root_certificates=self.client_ca_pem,
            require_client_auth=self.mutual,
        )

    def uvicorn_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"ssl_certfile": str(self.cert), "ssl_keyfile": str(self.key)}
        if self.client_ca is not None:
            options["ssl_ca_certs"] = str(self.client_ca)
            options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
        return options

    def smtp_context(self) -> ssl.SSLContext:
        """For STARTTLS on inbound SMTP: the server's certificate; no client
        certificates (MTAs do not present any)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


@dataclass(frozen=True)
class ClientTls:
    """The shim's channel to gRPC over TLS: the CA to trust (None: the system's), the
    client certificate for mTLS, and the name the server certificate must carry when it
    is not the host dialed."""

    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    server_name: str | None = None

    @classmethod
    def load(
        cls,
        ca: Path | None,
        cert: Path | None = None,
        key: Path | None = None,
        server_name: str | None = None,
        *,
        flags: tuple[str, str, str] = ("--tls-ca", "--tls-client-cert", "--tls-client-key"),
    ) -> ClientTls:
        ca_flag, cert_flag, key_flag = flags
        if (cert is None) != (key is None):
            raise BadTls(f"{cert_flag} and {key_flag} go together: give both or neither")
        ca_pem = None
        if ca is not None:
            ca_pem = _read(ca, "CA file", ca_flag)
            _check_ca(ca, ca_flag)
        cert_pem = key_pem = None
        if cert is not None and key is not None:
            cert_pem = _read(cert, "client certificate", cert_flag)
            key_pem = _read(key, "client key", key_flag)
            _check_pair(cert, key, cert_flag, key_flag)
        return cls(ca_pem, cert_pem, key_pem, server_name)

    def channel(self, target: str) -> grpc.aio.Channel:
        credentials = grpc.ssl_channel_credentials(self.ca_pem, self.key_pem, self.cert_pem)
        options = []
        if self.server_name:
            options.append(("grpc.ssl_target_name_override", self.server_name))
        return grpc.aio.secure_channel(target, credentials, options=options)


def shim_client_tls(server: ServerTls, ca: Path | None, server_name: str | None) -> ClientTls:
    """How `mailpool serve`'s own shim dials its gRPC port: trusting `ca` (the CA that
    signed the server certificate), else the client CA, else the certificate file itself
    (a self-signed certificate, or a chain file that includes its CA); with mTLS it
    presents the server's own certificate, which the client CA must therefore have
    signed (and which must allow client authentication)."""
    ca_pem = server.client_ca_pem or server.cert_pem
    if ca is not None:
        ca_pem = _read(ca, "CA file", "--tls-ca")
        _check_ca(ca, "--tls-ca")
    cert_pem, key_pem = (server.cert_pem, server.key_pem) if server.mutual else (None, None)
    return ClientTls(ca_pem, cert_pem, key_pem, server_name)
