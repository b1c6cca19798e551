"""Root URLs: admin, the REST API, the dashboard and the API schema."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from batchsync import views
from batchsync.api.urls import not_found_urlpatterns

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="sync-dashboard"), name="root"),
    path("admin/", admin.site.urls),
    # The progress dashboard (login required; its own login admits non-staff followers too).
    path("sync/", views.sync_dashboard, name="sync-dashboard"),
    path("sync/panel/", views.sync_dashboard_panel, name="sync-dashboard-panel"),
    path("sync/login/", views.SyncLoginView.as_view(), name="sync-login"),
    path("sync/logout/", views.SyncLogoutView.as_view(), name="sync-logout"),
    # REST API (batchsync.api), its OpenAPI schema and an offline Swagger UI; any other
    # /api/... URL is a 404 in the API's envelope, so the catch-all stays last of these.
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("batchsync.api.urls")),
    path("api/", include(not_found_urlpatterns)),
]
