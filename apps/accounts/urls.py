from django.urls import path

from . import views as signin_views

urlpatterns = [
    path("start/", signin_views.oidc_start, name="oidc-start"),
    path("callback/", signin_views.oidc_callback, name="oidc-callback"),
]
