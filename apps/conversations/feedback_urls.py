from django.urls import path

from . import feedback_views

app_name = "feedback"

urlpatterns = [
    path("<str:token>/", feedback_views.feedback_page, name="page"),
    path("<str:token>/thanks/", feedback_views.feedback_thanks, name="thanks"),
]
