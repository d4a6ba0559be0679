"""A screenshot's own guacd connection is not a session: it leaves the recording alone."""
from guacbridge.screenshots import unrecorded


def test_a_screenshots_connection_is_neither_recorded_nor_typescripted():
    params = {"hostname": "10.0.0.5", "port": "5901", "password": "pw",
              "recording-path": "/var/rec", "recording-name": "c.3",
              "create-recording-path": "true",
              "recording-exclude-output": "", "typescript-path": "/var/ts",
              "typescript-name": "t", "create-typescript-path": "true"}
    assert unrecorded(params) == {"hostname": "10.0.0.5", "port": "5901", "password": "pw"}
