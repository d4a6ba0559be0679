"""The engine emulator enforces ticket expiry on a real Xvnc, as a hypervisor does: a ticket
is the console's VNC password only until it expires or the next ticket replaces it, and a
migrated VM's old console takes no password anyone has (the parts the follow tests use)."""
import leaks
import ovirtsdk4 as sdk
import ovirtsdk4.types as types
import pytest
from ovirt_emulator import Engine, vnc_login

from guacbridge import demo


@pytest.fixture
def engine():
    e = Engine()
    yield e
    e.stop()


def ticket(engine, vm_name, seconds):
    conn = sdk.Connection(url=engine.url, username="admin@internal", password="secret")
    try:
        vms = conn.system_service().vms_service()
        vm = vms.list(search=f"name={vm_name}")[0]
        consoles = vms.vm_service(vm.id).graphics_consoles_service()
        value = consoles.console_service("766e63").ticket(
            ticket=types.Ticket(expiry=seconds)).value
    finally:
        conn.close()
    leaks.remember(value)
    return value


def test_a_ticket_opens_the_real_console_only_until_it_expires(engine, tmp_path):
    desktop = demo.start_desktop(tmp_path / "a", password="notticket")
    try:
        vm = engine.add_vm("web-12", address=desktop.host, port=desktop.port)
        engine.enforce_tickets(vm, desktop.workdir / "passwd")
        first = ticket(engine, "web-12", 2)
        assert vnc_login(desktop.host, desktop.port, first)      # Xvnc reads the file anew
        engine.wait_expired(1)
        assert not vnc_login(desktop.host, desktop.port, first)  # expired: refused
        second = ticket(engine, "web-12", 60)
        assert vnc_login(desktop.host, desktop.port, second)
    finally:
        desktop.stop()
