"""The TLS context guacbridge serves with: modern versions only, and a certificate or key
that cannot be used stops the start with a message naming the file, never its contents."""
import ssl

import pytest

from guacbridge import config, tls
from tls_fixtures import make_test_ca


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return make_test_ca(tmp_path_factory.mktemp("ca"))


def settings(**values):
    return config.load(env={}, **values)


def test_no_certificate_means_plain_http():
    assert tls.server_context(settings()) is None


def test_the_context_refuses_anything_older_than_tls_1_2(ca):
    context = tls.server_context(settings(tls_cert=str(ca.cert), tls_key=str(ca.key)))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE           # browsers bring no certificate


def test_a_missing_key_names_the_file(ca, tmp_path):
    missing = tmp_path / "nowhere.key"
    with pytest.raises(config.ConfigError, match=f"cannot read the TLS key {missing}"):
        tls.server_context(settings(tls_cert=str(ca.cert), tls_key=str(missing)))


def test_a_key_of_another_certificate_is_named_and_not_shown(ca, tmp_path):
    other = make_test_ca(tmp_path / "other")
    with pytest.raises(config.ConfigError) as e:
        tls.server_context(settings(tls_cert=str(ca.cert), tls_key=str(other.key)))
    assert "does not belong to the certificate" in str(e.value)
    assert "PRIVATE KEY" not in str(e.value) and other.key.read_text()[40:80] not in str(e.value)


def test_a_file_that_is_not_pem_says_so(ca, tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(config.ConfigError, match="is not PEM"):
        tls.server_context(settings(tls_cert=str(junk), tls_key=str(ca.key)))


def test_an_encrypted_key_is_refused_without_a_prompt(ca, tmp_path):
    from cryptography.hazmat.primitives import serialization
    key = serialization.load_pem_private_key(ca.key.read_bytes(), None)
    locked = tmp_path / "locked.key"
    locked.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.BestAvailableEncryption(b"pw")))
    with pytest.raises(config.ConfigError, match="is encrypted"):
        tls.server_context(settings(tls_cert=str(ca.cert), tls_key=str(locked)))
