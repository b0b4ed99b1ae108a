"""Shared fixtures: the mock server (BARRAGE_MOCKSERVER) and nginx (tests/nginx)."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.dirname(HERE))  # the package under test, from this checkout


@pytest.fixture(scope="session")
def mock():
    from barrage.testing import MockServer
    with MockServer() as m:
        yield m


@pytest.fixture(scope="session")
def nginx():
    sys.path.insert(0, os.path.join(ROOT, "tests", "nginx"))
    import nginx_peer
    if nginx_peer.find_nginx() is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed (CI must have it)")
        pytest.skip("nginx is not installed")
    with nginx_peer.NginxPeer(log=lambda m: None) as peer:
        yield peer
