"""GCP API errors as one short line (bakery/providers/gcp/api.py)."""

from __future__ import annotations

from bakery.providers.gcp import api as gcp_api

# --- errors as one line ------------------------------------------------------------------------------


class FakeApiError:
    def __init__(self, code: int, message: str) -> None:
        self.code, self.message = code, message


def test_an_html_error_page_is_one_short_line() -> None:
    page = (
        "GET https://compute.googleapis.com/compute/v1/projects/p/global/images: <!DOCTYPE html>\n"
        "<html lang=en><title>Error 502 (Server Error)!!1</title>\n<p>The server encountered a temporary error"
    )
    assert (
        gcp_api.api_error(FakeApiError(502, page))
        == "502 an HTML page, not the API's answer (Error 502 (Server Error)!!1)"
    )


def test_an_api_error_keeps_its_status_and_message_without_the_url() -> None:
    error = FakeApiError(
        404, "GET http://127.0.0.1:1/compute/v1/projects/p/global/images/x: The resource was not found"
    )
    assert gcp_api.api_error(error) == "404 The resource was not found"


def test_one_line_is_short() -> None:
    assert gcp_api.one_line("\n\n  first   line \nsecond") == "first line"
    assert len(gcp_api.one_line("x" * 500)) == 160
