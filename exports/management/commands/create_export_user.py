"""`create_export_user`: creates or reuses an API user and prints its DRF token alone on the
last line, so scripts can take it with `tail -n 1`."""

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from rest_framework.authtoken.models import Token


def _valid_username(raw: str) -> str:
    """The normalised username, or a CommandError saying what is wrong with it."""
    User = get_user_model()
    if not raw or not raw.strip():
        raise CommandError("The user name must not be empty.")
    name = User.normalize_username(raw)
    field = User._meta.get_field(User.USERNAME_FIELD)
    try:
        field.run_validators(name)
    except ValidationError as error:
        raise CommandError(f"Invalid user name {raw!r}: {' '.join(error.messages)}") from None
    return name


def _checked_password(password: str, user) -> str:
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise CommandError(f"Invalid --password: {' '.join(error.messages)}") from None
    return password


def _ensure_user(name: str, *, staff: bool, password: str | None) -> tuple[object, bool]:
    """Get or create the user; never demotes staff, never touches an existing token."""
    User = get_user_model()
    with transaction.atomic():
        user, created = User.objects.get_or_create(**{User.USERNAME_FIELD: name})
        if created and password is None:
            # No password means token-only: a usable empty password must never exist.
            user.set_unusable_password()
        if password is not None:
            user.set_password(_checked_password(password, user))
        user.is_staff = user.is_staff or staff
        user.save()
        if staff:  # staff read every export in the admin too, without being superusers
            user.user_permissions.add(*_admin_view_permissions())
    return user, created


def _admin_view_permissions():
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(content_type__app_label="exports",
                                     codename__startswith="view_")


class Command(BaseCommand):
    help = "Create (or reuse) an API user and print its token alone on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="User name (letters, digits and @.+-_).")
        parser.add_argument("--staff", action="store_true", help="Staff see every export.")
        parser.add_argument(
            "--password", help="Also set this password, for POST /data/auth/token/."
        )

    def handle(self, *args, name, staff=False, password=None, **options) -> None:
        name = _valid_username(name)
        user, created = _ensure_user(name, staff=staff, password=password)
        token, _ = Token.objects.get_or_create(user=user)
        role = "staff user" if user.is_staff else "user"
        self.stdout.write(f"{'Created' if created else 'Reused'} {role} {name!r}; API token:")
        self.stdout.write(token.key)
