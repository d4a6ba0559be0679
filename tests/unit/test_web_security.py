"""The pieces behind the security headers and log scrubbing, without a server."""
import io
import logging

from guacbridge import config, logs
from guacbridge.web import headers, page


def test_hsts_is_sent_only_when_the_public_url_is_https():
    plain = dict(headers.defaults(config.load(env={})))
    secure = dict(headers.defaults(config.load(env={"GUACBRIDGE_PUBLIC_URL":
                                                    "https://gw.example"})))
    assert "Strict-Transport-Security" not in plain
    assert secure["Strict-Transport-Security"].startswith("max-age=")
    assert plain["X-Frame-Options"] == "DENY"


def test_the_page_policy_names_the_tunnel_origin_of_the_public_url():
    assert "connect-src 'self' wss://gw.example:8443;" in page.csp("https://gw.example:8443/c")
    assert "connect-src 'self' ws://127.0.0.1:8080;" in page.csp("http://127.0.0.1:8080")


def test_every_log_line_is_scrubbed_whoever_logs_it_text_or_json():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    for fmt in ("text", "json"):
        logs.setup("debug", fmt)
        stream = io.StringIO()
        logging.getLogger().handlers[0].setStream(stream)
        try:
            raise ValueError("bad /tunnel?token=T0KEN-1&width=3")
        except ValueError:
            logging.getLogger("tornado.application").exception(
                "Uncaught exception GET /h/skey/K3Y/id/n/ovirt/pass/PASSW0RD/port/1 %s",
                "Authorization: Bearer B3ARER")
        text = stream.getvalue()
        assert "Uncaught exception" in text and "width=3" in text
        for secret in ("T0KEN-1", "K3Y", "PASSW0RD", "B3ARER"):
            assert secret not in text, (fmt, secret)
    root.handlers[:], level = saved
    root.setLevel(level)
