"""Top-level routes: the admin, health, token login and the exports app."""
from django.contrib import admin
from django.urls import include, path
from rest_framework.authtoken.views import obtain_auth_token

from exports.views import HealthApi

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", HealthApi.as_view(), name="healthz"),
    path("data/auth/token/", obtain_auth_token, name="auth-token"),
    path("", include("exports.urls")),
]

handler404 = "exports.views.not_found"
handler500 = "rest_framework.exceptions.server_error"
