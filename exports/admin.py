"""Django admin: export tasks listed with status, owner, format, rows and times."""
from django.contrib import admin

from .models import CorporateParkRecord, ExportTask


@admin.register(ExportTask)
class ExportTaskAdmin(admin.ModelAdmin):
    list_display = (
        "id", "owner", "export_format", "status", "progress", "row_count",
        "created_at", "started_at", "finished_at",
    )
    list_filter = ("status", "export_format")
    search_fields = ("id", "owner__username")
    readonly_fields = [f.name for f in ExportTask._meta.fields]


@admin.register(CorporateParkRecord)
class CorporateParkRecordAdmin(admin.ModelAdmin):
    list_display = ("id", "dot", "actel_code", "customer_full_name", "offer_name", "creation_date")
    list_filter = ("dot", "telecom_type", "subscriber_status", "state")
    show_full_result_count = False
