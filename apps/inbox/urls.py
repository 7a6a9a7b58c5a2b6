from django.urls import path

from . import views

app_name = "inbox"

urlpatterns = [
    path("", views.inbox_view(views.inbox_page), name="inbox"),
    path("queue.json", views.inbox_view(views.queue), name="queue"),
    path("<int:handoff_id>.json", views.inbox_view(views.detail), name="detail"),
    path("<int:handoff_id>/<slug:action>/", views.inbox_view(views.act), name="act"),
]
