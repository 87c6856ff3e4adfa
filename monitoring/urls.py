"""The monitoring pages, behind the admin's login (second factor included): the dashboard and its snapshot."""

from django.contrib import admin
from django.urls import path

from monitoring import views

app_name = "monitoring"
urlpatterns = [
    path("dashboard/", admin.site.admin_view(views.dashboard), name="dashboard"),
    path("snapshot/", admin.site.admin_view(views.snapshot), name="snapshot"),
]
