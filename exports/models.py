"""The two tables of the service: corporate park records, and export tasks (the single truth
about every export, so that any process can answer for any task)."""

import uuid

from django.conf import settings
from django.db import models


class CorporateParkRecord(models.Model):
    """One corporate subscriber line. Field order is the export's column order."""

    dot = models.CharField(max_length=100)
    actel_code = models.CharField(max_length=50)
    customer_l1_code = models.CharField(max_length=50)
    customer_l1_desc = models.CharField(max_length=200)
    customer_l2_code = models.CharField(max_length=50)
    customer_l2_desc = models.CharField(max_length=200)
    customer_l3_code = models.CharField(max_length=50)
    customer_l3_desc = models.CharField(max_length=200)
    telecom_type = models.CharField(max_length=50)
    offer_type = models.CharField(max_length=50)
    offer_name = models.CharField(max_length=200)
    subscriber_status = models.CharField(max_length=50)
    creation_date = models.DateTimeField()
    state = models.CharField(max_length=50)
    customer_full_name = models.CharField(max_length=200)

    class Meta:
        indexes = [
            models.Index(fields=["dot"]),
            models.Index(fields=["actel_code"]),
            models.Index(fields=["customer_l2_code"]),
            models.Index(fields=["customer_l3_code"]),
            models.Index(fields=["telecom_type"]),
            models.Index(fields=["offer_name"]),
            models.Index(fields=["subscriber_status"]),
            models.Index(fields=["state"]),
            models.Index(fields=["creation_date"]),
        ]

    def __str__(self) -> str:
        return f"{self.dot} {self.actel_code} {self.customer_full_name}"


# (field, header label), in the export's column order (CONTRACT.md, Data).
EXPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("dot", "DOT"),
    ("actel_code", "Actel Code"),
    ("customer_l1_code", "Customer L1 Code"),
    ("customer_l1_desc", "Customer L1 Description"),
    ("customer_l2_code", "Customer L2 Code"),
    ("customer_l2_desc", "Customer L2 Description"),
    ("customer_l3_code", "Customer L3 Code"),
    ("customer_l3_desc", "Customer L3 Description"),
    ("telecom_type", "Telecom Type"),
    ("offer_type", "Offer Type"),
    ("offer_name", "Offer Name"),
    ("subscriber_status", "Subscriber Status"),
    ("creation_date", "Creation Date"),
    ("state", "State"),
    ("customer_full_name", "Customer Full Name"),
)
EXPORT_FIELDS = tuple(field for field, _ in EXPORT_COLUMNS)
EXPORT_HEADERS = tuple(label for _, label in EXPORT_COLUMNS)
DATE_FIELD = "creation_date"  # the one date column, stored in UTC
DATE_COLUMN = EXPORT_FIELDS.index(DATE_FIELD)


class ExportTaskQuerySet(models.QuerySet):
    def active(self) -> "ExportTaskQuerySet":
        return self.filter(status__in=ExportTask.ACTIVE_STATUSES)


class ExportTask(models.Model):
    """One export asked for by one user, from queued to a terminal status."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        PROCESSING = "processing"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"
        EXPIRED = "expired"

    class Format(models.TextChoices):
        EXCEL = "excel"
        CSV = "csv"
        PDF = "pdf"

    ACTIVE_STATUSES = (Status.QUEUED, Status.PROCESSING)
    TERMINAL_STATUSES = (Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.EXPIRED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="export_tasks"
    )
    export_format = models.CharField(max_length=10, choices=Format.choices)
    filters = models.JSONField(default=dict, blank=True)
    fingerprint = models.CharField(max_length=64, db_index=True)
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    progress = models.PositiveSmallIntegerField(default=0)
    row_count = models.PositiveBigIntegerField(null=True, blank=True)
    rows_processed = models.PositiveBigIntegerField(default=0)
    file_name = models.CharField(max_length=200, blank=True)
    file_path = models.CharField(max_length=500, blank=True)
    file_size = models.PositiveBigIntegerField(null=True, blank=True)
    file_sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    # Ownership while processing: which server process runs it, and when it last said so.
    worker_id = models.CharField(max_length=200, blank=True, db_index=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)  # claims so far; 2 = re-run once
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    objects = ExportTaskQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "status"])]

    def __str__(self) -> str:
        return f"{self.export_format} export {self.id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class CleanupRun(models.Model):
    """One run of cleanup_exports that changed something: how many files it removed, and
    their bytes. `cleaned_files` of the pool status is their sum, across processes."""

    ran_at = models.DateTimeField(auto_now_add=True)
    files_removed = models.PositiveIntegerField(default=0)
    bytes_freed = models.PositiveBigIntegerField(default=0)
    tasks_expired = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-ran_at"]
