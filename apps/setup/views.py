from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .forms import SetupForm
from .services import setup_complete, setup_needed


@never_cache
def setup_view(request: HttpRequest) -> HttpResponse:
    """First-run setup, shown only while no superuser exists; a 404 afterwards."""
    if not setup_needed():
        return render(request, "setup/done.html", status=404)
    form = SetupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = setup_complete(data=form.cleaned_data)
        except PermissionError:
            return render(request, "setup/done.html", status=404)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("console:getting_started")
    status = 400 if request.method == "POST" else 200
    return render(request, "setup/setup.html", {"form": form}, status=status)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """``/``: the setup wizard until Parley is set up, the admin afterwards."""
    return redirect("setup" if setup_needed() else "admin:index")
