import pytest

from guacbridge import config


def test_defaults_are_the_documented_contract():
    s = config.load(env={})
    assert s.listen == ("127.0.0.1", 8080) and s.guacd == (("127.0.0.1", 4822),)
    assert s.base_url == "http://127.0.0.1:8080" and s.api_keys == {}
    assert s.mysql_url is None and s.amqp_url is None


def test_environment_wins_over_the_file(tmp_path):
    f = tmp_path / "g.toml"
    f.write_text('[guacbridge]\nlisten = "0.0.0.0:9000"\nguacd = "a:1"\n[consoles]\nduration = 60\n')
    s = config.load(env={"GUACBRIDGE_CONFIG": str(f), "GUACBRIDGE_GUACD": "g1:4822,[::1]:4823",
                         "GUACBRIDGE_API_KEYS": "portal:s3cret,ops:x"})
    assert s.listen == ("0.0.0.0", 9000) and s.duration == 60
    assert s.guacd == (("g1", 4822), ("::1", 4823))
    assert s.api_keys == {"portal": "s3cret", "ops": "x"}
    assert s.base_url == "http://127.0.0.1:9000"


@pytest.mark.parametrize("env, words", [
    ({"GUACBRIDGE_LISTEN": "nowhere"}, "listen"),
    ({"GUACBRIDGE_GUACD": "h:99999"}, "out of range"),
    ({"GUACBRIDGE_API_KEYS": "justasecret"}, "name:secret"),
    ({"GUACBRIDGE_PUBLIC_URL": "ftp://x"}, "http"),
])
def test_malformed_settings_name_the_setting(env, words):
    with pytest.raises(config.ConfigError, match=words):
        config.load(env=env)


def test_unknown_file_settings_are_refused(tmp_path):
    f = tmp_path / "g.toml"
    f.write_text('[guacbridge]\nlisten_port = 1\n')
    with pytest.raises(config.ConfigError, match="unknown setting"):
        config.load(env={}, path=f)


def test_a_certificate_moves_the_default_port_to_8443_and_the_scheme_to_https():
    s = config.load(env={"GUACBRIDGE_TLS_CERT": "/etc/guacbridge/tls.pem"})
    assert s.listen == ("127.0.0.1", 8443) and s.base_url == "https://127.0.0.1:8443"
    given = config.load(env={"GUACBRIDGE_TLS_CERT": "/c.pem", "GUACBRIDGE_TLS_KEY": "/k.pem",
                             "GUACBRIDGE_LISTEN": "0.0.0.0:443"})
    assert given.listen == ("0.0.0.0", 443) and given.base_url == "https://127.0.0.1:443"
    assert str(given.tls_key) == "/k.pem"


@pytest.mark.parametrize("env, words", [
    ({"GUACBRIDGE_TLS_KEY": "/k.pem"}, "tls_cert is not"),
    ({"GUACBRIDGE_REUSE_PORT": "maybe"}, "true or false"),
    ({"GUACBRIDGE_TRUSTED_PROXIES": "127.0.0.1,proxy.example"}, "trusted_proxies"),
    ({"GUACBRIDGE_DRAIN_SECONDS": "-1"}, "drain_seconds"),
])
def test_malformed_tls_and_restart_settings_name_the_setting(env, words):
    with pytest.raises(config.ConfigError, match=words):
        config.load(env=env)


def test_restart_settings_from_the_environment():
    s = config.load(env={"GUACBRIDGE_REUSE_PORT": "yes", "GUACBRIDGE_DRAIN_SECONDS": "2.5",
                         "GUACBRIDGE_TRUSTED_PROXIES": "127.0.0.1, ::1"})
    assert s.reuse_port is True and s.drain_seconds == 2.5
    assert s.trusted_proxies == ("127.0.0.1", "::1")
    assert config.load(env={}).reuse_port is False
