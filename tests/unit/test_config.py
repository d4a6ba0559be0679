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
