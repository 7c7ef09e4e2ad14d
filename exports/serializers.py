"""Output shapes of the API; no queries, no decisions."""

from django.urls import reverse
from rest_framework import serializers

from .models import ExportTask
from .selectors import remaining_seconds


class ExportTaskSerializer(serializers.ModelSerializer):
    """The status body (CONTRACT.md, Follow it); also each item of tasks/."""

    task_id = serializers.UUIDField(source="id")
    remaining_time = serializers.SerializerMethodField()
    file_url = serializers.SerializerMethodField()
    status_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportTask
        fields = (
            "task_id", "status", "progress", "row_count", "rows_processed", "remaining_time",
            "file_url", "file_name", "file_size", "file_sha256", "error", "created_at",
            "started_at", "finished_at", "expires_at", "export_format", "filters", "status_url",
        )

    def get_remaining_time(self, task: ExportTask) -> int | None:
        return remaining_seconds(task)

    def get_file_url(self, task: ExportTask) -> str | None:
        if task.status != ExportTask.Status.COMPLETED:
            return None
        return reverse("export-download", kwargs={"task_id": task.id})

    def get_status_url(self, task: ExportTask) -> str:
        return status_url(task)

    def to_representation(self, task: ExportTask) -> dict:
        data = super().to_representation(task)
        if task.status != ExportTask.Status.COMPLETED:
            data.update(file_name=None, file_size=None, file_sha256=None)
        data["error"] = data["error"] or None
        return data


def status_url(task: ExportTask) -> str:
    return f"{reverse('export-status')}?task_id={task.id}"


def start_body(task: ExportTask, *, deduplicated: bool) -> dict:
    """The start answer (202 new, 200 deduplicated)."""
    return {
        "task_id": str(task.id),
        "status": task.status,
        "progress": task.progress,
        "status_url": status_url(task),
        "export_format": task.export_format,
        "deduplicated": deduplicated,
    }
