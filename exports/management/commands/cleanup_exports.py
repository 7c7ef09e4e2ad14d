"""`cleanup_exports`: cron's entry point for file retention (see exports/cleanup.py)."""

from django.core.management.base import BaseCommand, CommandError

from exports.cleanup import exports_cleanup


class Command(BaseCommand):
    help = "Delete export files past retention and mark their tasks expired; remove orphans."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, help="Override FILE_RETENTION_DAYS.")
        parser.add_argument("--dry-run", action="store_true", help="Report, change nothing.")

    def handle(self, *args, days=None, dry_run=False, **options):
        if days is not None and days < 0:
            raise CommandError(f"--days must be zero or more; got {days}.")
        self.stdout.write(exports_cleanup(older_than_days=days, dry_run=dry_run).summary())
