"""``/api/docs``: the OpenAPI explorer, served from the installed Swagger UI files (works offline)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)


@router.get("/api/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> HTMLResponse:
    """Swagger UI; its script and styles come from this server only (no inline script)."""
    templates = request.app.state.templates
    response: HTMLResponse = templates.TemplateResponse(request, "api_docs.html", {})
    return response
