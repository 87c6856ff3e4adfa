"""Operators' own pages outside the model admin: the language switch."""

from django.urls import path

from staff import views

app_name = "staff"
urlpatterns = [
    path("language/", views.language_set, name="language_set"),
]
