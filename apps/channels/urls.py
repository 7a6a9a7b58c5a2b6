from django.urls import path

from . import views

urlpatterns = [path("<slug:platform>/<str:key>/", views.webhook, name="webhook")]
