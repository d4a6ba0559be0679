"""The connection parameters guacd 1.5/1.6 added, allowed with their types; the tunnel's
instruction tests read guacd 1.6's ``sync`` (which carries a frame count) like 1.3's."""
import pytest

from guacbridge import parameters
from guacbridge.parameters import InvalidParameters
from guacbridge.web.tunnel_input import has_opcode

HOST = {"hostname": "10.0.0.5"}


@pytest.mark.parametrize("protocol, given, expected", [
    ("vnc", {"quality-level": 9, "compress-level": "0", "disable-display-resize": True,
             "disable-server-input": "true"},
     {"quality-level": "9", "compress-level": "0", "disable-display-resize": "true",
      "disable-server-input": "true"}),
    ("rdp", {"cert-tofu": False, "disable-gfx": True, "timeout": 30,
             "cert-fingerprints": "sha256:ab:cd:ef,sha256:01:02"},
     {"cert-tofu": "", "disable-gfx": "true", "timeout": "30",
      "cert-fingerprints": "sha256:ab:cd:ef,sha256:01:02"}),
    ("ssh", {"timeout": "10", "public-key": "ssh-ed25519 AAAAC3Nza user@host"},
     {"timeout": "10", "public-key": "ssh-ed25519 AAAAC3Nza user@host"}),
    ("telnet", {"timeout": 5}, {"timeout": "5"}),
])
def test_the_newer_parameters_are_allowed_with_their_types(protocol, given, expected):
    params = parameters.validate(protocol, {**HOST, **given})
    assert {k: params[k] for k in expected} == expected


@pytest.mark.parametrize("protocol, given, words", [
    ("vnc", {"quality-level": 10}, "quality-level must be between 0 and 9"),
    ("vnc", {"compress-level": "high"}, "compress-level must be a whole number, not 'high'"),
    ("vnc", {"disable-server-input": "yes"},
     "disable-server-input must be true or false, not 'yes'"),
    ("rdp", {"timeout": 0}, "timeout must be between 1 and 3600"),
    ("rdp", {"cert-fingerprints": "sha256:ab\nsecurity:any"},
     "cert-fingerprints must be certificate fingerprints such as sha256:ab:cd:…, several"
     " separated by commas"),
    ("vnc", {"cert-tofu": True}, "unknown parameter(s) for vnc: cert-tofu"),
])
def test_the_newer_parameters_refuse_wrong_values(protocol, given, words):
    with pytest.raises(InvalidParameters) as e:
        parameters.validate(protocol, {**HOST, **given})
    assert str(e.value).startswith(words)


def test_guacbridges_own_prompt_mark_cannot_be_asked_for():
    assert all(parameters.NO_PROMPT not in allowed for allowed in parameters.ALLOWED.values())


@pytest.mark.parametrize("text", ["4.sync,13.1700000000000;", "4.sync,13.1700000000000,1.3;",
                                  "4.size,1.0,4.1024,3.768;4.sync,4.1234,2.12;"])
def test_sync_with_or_without_its_frame_count_is_a_sync(text):
    assert has_opcode(text, "sync")
