"""The playground page and its assets: served without a key, the page only at /.
(The page in a real browser: tests/e2e/test_playground.py.)"""

from __future__ import annotations

from inprocess import InProcess


def test_the_page_and_its_assets_are_served_without_a_key(api: InProcess) -> None:
    anonymous = api.client(None)
    page = anonymous.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/playground.js", "/static/playground.css"):
        assert anonymous.get(asset).status_code == 200
    assert anonymous.get("/static/nothing.js").status_code == 404
    # The page itself only at /, with its CSP: no copy to frame from elsewhere.
    assert anonymous.get("/static/playground.html").status_code == 404
