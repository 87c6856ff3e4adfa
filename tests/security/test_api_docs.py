"""The API docs load nothing from other hosts, and HTML pages carry a Content-Security-Policy (issue 8, item 16)."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client


def _docs() -> tuple[object, str]:
    response = Client().get("/api/v1/docs")
    return response, response.content.decode()


@pytest.mark.django_db
def test_the_docs_reference_no_external_host() -> None:
    response, html = _docs()
    assert response.status_code == 200
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert urls, html
    assert not [u for u in urls if re.match(r"^(https?:)?//", u)], urls
    assert "cdn" not in html.lower() and "jsdelivr" not in html and "unpkg" not in html
    assert '"validatorUrl": null' in html  # no badge fetched from validator.swagger.io


@pytest.mark.django_db
def test_the_docs_scripts_and_styles_are_our_static_files() -> None:
    _, html = _docs()
    for name in ("ninja/swagger-ui-bundle.js", "ninja/swagger-ui-init.js", "ninja/swagger-ui.css"):
        assert f"/static/{name}" in html
        assert finders.find(name), name  # collectstatic / WhiteNoise will find it


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/docs", "/admin/login/", "/admin/"])
def test_html_pages_carry_a_same_origin_content_security_policy(path: str) -> None:
    response = Client().get(path, follow=True)
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "http" not in policy and "*" not in policy and "unsafe-eval" not in policy
    assert "script-src 'self' 'unsafe-inline'" not in policy


@pytest.mark.django_db
def test_the_docs_page_has_no_inline_script() -> None:
    _, html = _docs()
    inline = [m for m in re.finditer(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S)
              if "src=" not in m.group(1) and "application/json" not in m.group(1) and m.group(2).strip()]
    assert inline == []
