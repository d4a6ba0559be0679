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
