from django.urls import path

from . import views as setup_views

urlpatterns = [path("", setup_views.setup_view, name="setup")]
