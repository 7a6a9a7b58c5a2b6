from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from .setup import setup_needed


def setup_view(request: HttpRequest) -> HttpResponse:
    if not setup_needed():
        raise Http404("Parley is already set up.")
    return render(request, "setup/setup.html", {})
