"""The dashboard page and its static files, served from the package (in process)."""

from __future__ import annotations

import re
from pathlib import Path

from eventtally.web import dashboard
from tests.support import Api

PACKAGE = Path(dashboard.__file__).resolve().parent


def _references(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"#][^"]*)"', html)


def test_page_at_root_and_dashboard(api: Api) -> None:
    for path in ("/", "/dashboard"):
        response = api.client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "connect-src 'self'" in policy
        assert "script-src 'self'" in policy
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "<title>eventtally dashboard</title>" in response.text
        assert response.headers["x-request-id"]
    assert api.client.post("/").status_code == 405


def test_every_referenced_file_is_served(api: Api) -> None:
    html = api.client.get("/").text
    references = [r for r in _references(html) if not r.startswith("data:")]
    assert "dashboard/static/app.js" in references
    assert "dashboard/static/vendor/uplot/uPlot.iife.min.js" in references
    types = {".js": "text/javascript", ".css": "text/css", ".json": "application/json"}
    for reference in references:
        response = api.client.get(f"/{reference}")
        assert response.status_code == 200, reference
        suffix = Path(reference).suffix
        assert response.headers["content-type"].startswith(types[suffix]), reference
    # The modules' own imports resolve too.
    for module in sorted((PACKAGE / "static").glob("*.js")):
        for target in re.findall(r'from "\./([^"]+)"', module.read_text()):
            assert api.client.get(f"/dashboard/static/{target}").status_code == 200, target


def test_no_other_host(api: Api) -> None:
    """The page's own files name no host: everything is fetched from this server."""
    html = (PACKAGE / "index.html").read_text()
    assert all("//" not in reference for reference in _references(html))
    for path in sorted((PACKAGE / "static").glob("*.*")):
        assert re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", path.read_text()) is None, path
    vendored = (PACKAGE / "static/vendor/uplot/uPlot.iife.min.js").read_text()
    # uPlot names its home page in its banner comment, and nothing else.
    assert re.findall(r"https?://[^\s\"')]+", vendored) == ["https://github.com/leeoniya/uPlot"]


def test_vendored_chart_library_and_licence(api: Api) -> None:
    licence = api.client.get("/dashboard/static/vendor/uplot/LICENSE")
    assert licence.status_code == 200
    assert "The MIT License" in licence.text
    assert "Leon Sorokin" in licence.text
    script = api.client.get("/dashboard/static/vendor/uplot/uPlot.iife.min.js").text
    version = re.search(r"\(v(\d+\.\d+\.\d+)\)", script)
    assert version is not None
    assert f"uPlot {version.group(1)}" in (PACKAGE / "static/vendor/uplot/SOURCE.txt").read_text()
    assert api.client.get("/dashboard/static/vendor/uplot/uPlot.min.css").status_code == 200


def test_missing_files_and_escapes_are_json_404s(api: Api) -> None:
    for path in (
        "/dashboard/static/nope.js",
        "/dashboard/static/../__init__.py",
        "/dashboard/static/..%2f__init__.py",
        "/dashboard/static/%2e%2e/index.html",
        "/dashboard/index.html",
    ):
        response = api.client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/json"
        assert "message" in response.json()


def test_dashboard_paths_need_no_key_and_count_no_rate_limit(api: Api) -> None:
    api.client.get("/")
    api.client.get("/dashboard/static/app.js")
    remaining = api.get("/workspace").headers["x-ratelimit-remaining"]
    assert int(remaining) == 250_000 - 1
