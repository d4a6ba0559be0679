"""SSH and telnet consoles in Chromium, against real sshd and telnetd: typed text runs a
command on the machine, and a refused login is reported as such, not retried."""
import subprocess
import time

import pytest

pytestmark = pytest.mark.e2e


def wait_for_file(path, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return path.exists()


def type_command(page, marker):
    page.locator("body[data-state='3']").wait_for(state="attached", timeout=20000)
    page.wait_for_timeout(1500)                     # the shell prompt
    page.keyboard.type(f"touch {marker}", delay=15)
    page.keyboard.press("Enter")


def test_an_ssh_console_runs_what_is_typed(service, sshd, console_user, page):
    marker = console_user["home"] / "typed-over-ssh"
    reply = service.create({"protocol": "ssh", "hostname": sshd["host"], "port": sshd["port"],
                            "username": console_user["name"],
                            "password": console_user["password"]})
    page.goto(reply["url"])
    type_command(page, marker)
    assert wait_for_file(marker)


def test_an_ssh_console_logs_in_with_a_private_key(service, sshd, console_user, page,
                                                   tmp_path):
    # guacd 1.3.0 (libssh2 1.9) reads PEM keys only, and signs with SHA-1 RSA: the sshd
    # fixture accepts ssh-rsa for it (OpenSSH 9 refuses it by default).
    key = tmp_path / "id_rsa"
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-f",
                    str(key)], check=True)
    ssh_dir = console_user["home"] / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(key.with_suffix(".pub").read_text())
    subprocess.run(["chown", "-R", f"{console_user['name']}:", str(ssh_dir)], check=True)
    marker = console_user["home"] / "typed-with-a-key"
    reply = service.create({"protocol": "ssh", "hostname": sshd["host"], "port": sshd["port"],
                            "username": console_user["name"], "private-key": key.read_text()})
    page.goto(reply["url"])
    type_command(page, marker)
    assert wait_for_file(marker)


def test_a_refused_ssh_login_is_reported_and_not_retried(service, sshd, console_user, page):
    reply = service.create({"protocol": "ssh", "hostname": sshd["host"], "port": sshd["port"],
                            "username": console_user["name"], "password": "wrong-password"})
    page.goto(reply["url"])
    page.locator("body[data-error]").wait_for(state="attached", timeout=20000)
    assert page.evaluate("window.guacbridge.error.code") == 0x0301
    assert "refused the login" in page.locator("#status").inner_text()
    page.wait_for_timeout(1000)
    assert page.locator("body[data-reconnecting]").count() == 0


def test_a_telnet_console_logs_in_and_runs_what_is_typed(service, telnetd, console_user, page):
    marker = console_user["home"] / "typed-over-telnet"
    reply = service.create({"protocol": "telnet", "hostname": telnetd["host"],
                            "port": telnetd["port"], "username": console_user["name"],
                            "password": console_user["password"]})
    page.goto(reply["url"])
    type_command(page, marker)
    assert wait_for_file(marker)


def test_a_refused_telnet_login_is_reported(service, telnetd, console_user, page):
    reply = service.create({"protocol": "telnet", "hostname": telnetd["host"],
                            "port": telnetd["port"], "username": console_user["name"],
                            "password": "wrong-password"})
    page.goto(reply["url"])
    page.locator("body[data-error]").wait_for(state="attached", timeout=30000)
    assert page.evaluate("window.guacbridge.error.code") == 0x0301
    assert page.locator("body[data-reconnecting]").count() == 0


def rdp_target(xrdp, console_user, password):
    return {"protocol": "rdp", "hostname": xrdp["host"], "port": xrdp["port"],
            "username": console_user["name"], "password": password, "security": "any",
            "ignore-cert": True}


def test_an_rdp_console_to_xrdp_runs_what_is_typed_in_its_xterm(service, xrdp, console_user,
                                                                page):
    marker = console_user["home"] / "typed-over-rdp"
    page.goto(service.create(rdp_target(xrdp, console_user, console_user["password"]))["url"])
    page.locator("body[data-state='3']").wait_for(state="attached", timeout=30000)
    # The RDP desktop is made at the browser window's size (sent in the handshake); guacd's
    # size can come just after the connected state, on a busy machine.
    page.wait_for_function("window.guacbridge.display.getWidth() > 0", timeout=10000)
    assert page.evaluate("[window.guacbridge.display.getWidth(),"
                         " window.guacbridge.display.getHeight()]") == [1280, 800]
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        page.mouse.move(200, 150)                  # twm: the xterm under the pointer
        page.wait_for_timeout(2000)                # the session and its xterm start
        page.keyboard.type(f"touch {marker}", delay=15)
        page.keyboard.press("Enter")
        wait_for_file(marker, timeout=3)
    assert marker.exists()


def test_a_refused_rdp_login_shows_the_servers_own_dialog(service, xrdp, console_user, page):
    # xrdp answers a wrong password with its own login dialog inside the session: there is
    # no Guacamole error to report, so the console stays up showing that dialog.
    page.goto(service.create(rdp_target(xrdp, console_user, "wrong-password"))["url"])
    page.locator("body[data-state='3']").wait_for(state="attached", timeout=30000)
    page.wait_for_timeout(3000)
    assert page.locator("body[data-error]").count() == 0
