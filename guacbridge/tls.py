"""The server side of TLS: the context that HTTPS and WSS are served with.

Modern TLS only (1.2 and up, the standard library's default server ciphers), HTTP/1.1 by
ALPN since that is what Tornado speaks. A certificate or key that cannot be used is a
:class:`ConfigError` at start, naming the file and the problem, never its contents.
"""
from __future__ import annotations

import pathlib
import ssl

from .config import ConfigError, Settings


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """The SSLContext for ``settings.tls_cert``/``tls_key``; None when TLS is off."""
    if settings.tls_cert is None:
        return None
    cert = settings.tls_cert
    key = settings.tls_key or cert
    for what, path in (("certificate", cert), ("key", key)):
        _readable(what, path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])

    def no_passphrase() -> bytes:
        raise ConfigError(f"TLS key {key} is encrypted; give guacbridge an unencrypted key"
                          f" file readable only by its user")
    try:
        context.load_cert_chain(str(cert), str(key), password=no_passphrase)
    except ssl.SSLError as e:
        raise ConfigError(_why(cert, key, e)) from None
    return context


def _readable(what: str, path: pathlib.Path) -> None:
    try:
        with path.open("rb") as f:
            f.read(1)
    except OSError as e:
        raise ConfigError(f"cannot read the TLS {what} {path}: {e.strerror}") from None


def _why(cert: pathlib.Path, key: pathlib.Path, error: ssl.SSLError) -> str:
    text = f"{error.reason} {error}".upper()      # OpenSSL's words; they hold no key material
    if "KEY_VALUES_MISMATCH" in text:
        return f"TLS key {key} does not belong to the certificate {cert}"
    if "NO_START_LINE" in text or "PEM LIB" in text:
        return (f"TLS certificate {cert} or key {key} is not PEM (expected -----BEGIN"
                f" CERTIFICATE----- and a -----BEGIN … PRIVATE KEY----- block)")
    return f"TLS certificate {cert} with key {key} cannot be used ({error.reason or 'SSL error'})"
