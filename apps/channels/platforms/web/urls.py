from django.urls import path

from . import views

urlpatterns = [
    path("widget.js", views.widget_js, name="webchat-widget"),
    path("chat/<str:key>/", views.chat_page, name="webchat-page"),
    path("api/v1/webchat/<str:key>/token", views.token, name="webchat-token"),
]
