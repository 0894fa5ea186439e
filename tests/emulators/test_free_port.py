"""The test fixtures' ``free_port`` never hands out a port twice (a site file written with two
devices on one port fails validation: the kernel readily offers a just-closed port again)."""

from tests.fixtures.emulators import free_port


def test_free_port_is_never_repeated() -> None:
    ports = [free_port() for _ in range(2000)]
    assert len(set(ports)) == len(ports)
