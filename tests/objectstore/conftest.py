import pytest


@pytest.fixture(scope="session")
def pydoc_site(tmp_path_factory):
    """The pydoc site the project renders offline (80 pages), served on 127.0.0.1."""
    from webmill.pydoc_site import render_site
    from webmill.serve import SiteServer

    with SiteServer(render_site(tmp_path_factory.mktemp("site"))) as server:
        yield server
