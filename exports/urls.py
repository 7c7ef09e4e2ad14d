"""Routes of the export API, one path per operation (the start path also without its slash)."""
from django.urls import path

from . import views

PREFIX = "data/export/corporate-park"

urlpatterns = [
    path(f"{PREFIX}/", views.ExportStartApi.as_view(), name="export-start"),
    path(PREFIX, views.ExportStartApi.as_view()),
    path(f"{PREFIX}/status/", views.ExportStatusApi.as_view(), name="export-status"),
    path(f"{PREFIX}/tasks/", views.ExportTaskListApi.as_view(), name="export-tasks"),
    path(f"{PREFIX}/download/<uuid:task_id>/", views.ExportDownloadApi.as_view(),
         name="export-download"),
    path(f"{PREFIX}/cancel/", views.ExportCancelApi.as_view(), name="export-cancel"),
]
