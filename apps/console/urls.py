from django.urls import path

from . import views

app_name = "console"

urlpatterns = [
    path("getting-started/", views.admin_page(views.getting_started), name="getting_started"),
]
