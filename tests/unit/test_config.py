import pytest

from guacbridge import apikeys, config
from guacbridge.limits import Rate


def test_defaults_are_the_documented_contract():
    s = config.load(env={})
    assert s.listen == ("127.0.0.1", 8080) and s.guacd == (("127.0.0.1", 4822),)
    assert s.base_url == "http://127.0.0.1:8080" and s.api_keys == {}
    assert s.mysql_url is None and s.amqp_url is None


def test_environment_wins_over_the_file(tmp_path):
    f = tmp_path / "g.toml"
    f.write_text('[guacbridge]\nlisten = "0.0.0.0:9000"\nguacd = "a:1"\n'
                 '[consoles]\nduration = 60\n')
    s = config.load(env={"GUACBRIDGE_CONFIG": str(f), "GUACBRIDGE_GUACD": "g1:4822,[::1]:4823",
                         "GUACBRIDGE_API_KEYS": "portal:s3cret,ops:x"})
    assert s.listen == ("0.0.0.0", 9000) and s.duration == 60
    assert s.guacd == (("g1", 4822), ("::1", 4823))
    assert set(s.api_keys) == {"portal", "ops"}
    assert s.api_keys["portal"] == apikeys.from_secret("portal", "s3cret")
    assert s.api_keys["ops"].scopes == apikeys.ALL       # the contract: every scope
    assert s.base_url == "http://127.0.0.1:9000"


@pytest.mark.parametrize("env, words", [
    ({"GUACBRIDGE_LISTEN": "nowhere"}, "listen"),
    ({"GUACBRIDGE_GUACD": "h:99999"}, "out of range"),
    ({"GUACBRIDGE_GUACD": "g1:4822,g2:4822, g1:4822"}, "guacd.*g1:4822 is listed twice"),
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


def test_hashed_keys_with_scopes_come_from_the_file_and_mix_with_the_environment(tmp_path):
    f = tmp_path / "g.toml"
    f.write_text(f'[api_keys.reader]\nhash = "sha256:{apikeys.digest("r-secret")}"\n'
                 'scopes = ["read"]\n')
    s = config.load(env={"GUACBRIDGE_CONFIG": str(f), "GUACBRIDGE_API_KEYS": "portal:p"})
    assert apikeys.authenticate(s.api_keys, "r-secret").scopes == {"read"}
    assert apikeys.authenticate(s.api_keys, "p").name == "portal"
    assert apikeys.authenticate(s.api_keys, "nope") is None
    assert "r-secret" not in repr(s)


@pytest.mark.parametrize("table, words", [
    ('hash = "md5:abc"\nscopes = ["read"]', "sha256:<64 hex digits>"),
    (f'hash = "sha256:{"0" * 64}"', "scopes is required"),
    (f'hash = "sha256:{"0" * 64}"\nscopes = ["read", "delete"]', "unknown scope"),
])
def test_a_malformed_key_table_says_what_is_wrong(tmp_path, table, words):
    f = tmp_path / "g.toml"
    f.write_text(f"[api_keys.portal]\n{table}\n")
    with pytest.raises(config.ConfigError, match=words):
        config.load(env={}, path=f)


def test_limits_and_origins_are_read_from_their_sections(tmp_path):
    f = tmp_path / "g.toml"
    f.write_text('[guacbridge]\nallowed_origins = ["https://Portal.example:443"]\n'
                 '[limits]\ncreate_per_key = "5/10s"\nconnect_per_address = "off"\n'
                 'consoles_per_target = 2\n[consoles]\nidle_timeout = 30\nidle_warning = 5\n')
    s = config.load(env={"GUACBRIDGE_PUBLIC_URL": "https://gw.example:8443/c"}, path=f)
    assert s.limits_create_per_key == Rate(5, 10.0) and s.limits_connect_per_address is None
    assert s.limits_consoles_per_target == 2 and (s.idle_timeout, s.idle_warning) == (30, 5)
    assert s.origins == {"https://portal.example", "https://gw.example:8443"}
    with pytest.raises(config.ConfigError, match="idle_warning"):
        config.load(env={}, idle_timeout=10, idle_warning=10)
    with pytest.raises(config.ConfigError, match="COUNT/PERIOD"):
        config.load(env={}, limits_create_per_key="lots")


def test_secret_keys_come_from_the_file_or_the_environment_and_never_show(tmp_path):
    from guacbridge.keyring import new_key
    first, second = new_key("k2"), new_key("k1")
    f = tmp_path / "g.toml"
    f.write_text(f'[guacbridge]\nsecret_keys = ["{first}", "{second}"]\ninstance = "web-1"\n'
                 f'[audit]\nretention = 86400\n')
    s = config.load(env={"GUACBRIDGE_CONFIG": str(f)})
    assert [k.id for k in s.secret_keys] == ["k2", "k1"] and s.instance_name == "web-1"
    assert s.audit_retention == 86400
    assert first.split(":")[1] not in repr(s)               # a key's bytes are not in reprs
    s = config.load(env={"GUACBRIDGE_CONFIG": str(f), "GUACBRIDGE_SECRET_KEYS": second})
    assert [k.id for k in s.secret_keys] == ["k1"]


@pytest.mark.parametrize("env, words", [
    ({"GUACBRIDGE_SECRET_KEYS": "k1"}, "secret_keys"),
    ({"GUACBRIDGE_SECRET_KEYS": "k 1:QUJD"}, "<id>:<base64 of 32 bytes>"),
    ({"GUACBRIDGE_INSTANCE": "x" * 65}, "at most 64 characters"),
])
def test_malformed_audit_and_secret_settings_name_the_setting(env, words):
    with pytest.raises(config.ConfigError) as e:
        config.load(env=env)
    assert words in str(e.value)


@pytest.mark.parametrize("toml, words", [
    ('[limits]\ncreate_per_hour = "1/h"\n', "unknown setting(s): limits_create_per_hour"),
    ('[broker]\nretry_delays = ["soon"]\n', "setting 'broker_retry_delays': could not convert"),
    ('[guacamole]\ndb_url = "mysql://db/guacamole"\n', "the guacamole sink needs guacamole.url"),
])
def test_a_malformed_file_is_refused_naming_the_setting(tmp_path, toml, words):
    f = tmp_path / "g.toml"
    f.write_text(toml)
    with pytest.raises(config.ConfigError) as e:
        config.load(env={}, path=f)
    assert words in str(e.value)
