"""`seed_corporate_park`: fills the corporate park with reproducible demo or benchmark rows;
the rows and the insert belong to exports.seed_data."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from exports.seed_data import DEFAULT_SEED, SeedOutcome, records_seed


def _whole_number(name: str, raw: object, *, minimum: int | None = None) -> int:
    """The option's value as an int, or a CommandError that names the option."""
    try:
        value = int(str(raw).strip().replace("_", ""))
    except ValueError:
        raise CommandError(f"{name} must be a whole number, not {raw!r}.") from None
    if minimum is not None and value < minimum:
        raise CommandError(f"{name} must be at least {minimum}, not {value}.")
    return value


class Command(BaseCommand):
    help = "Insert N realistic, reproducible corporate park records across Algeria's 58 wilayas."

    def add_arguments(self, parser: CommandParser) -> None:
        # Numbers are parsed in handle(), so the CLI and call_command() fail the same way.
        parser.add_argument("--rows", required=True, help="How many records to insert (>= 1).")
        parser.add_argument(
            "--seed", default=DEFAULT_SEED, help=f"Same seed, same rows (default {DEFAULT_SEED})."
        )
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--if-empty", action="store_true", help="Do nothing if the table already has rows."
        )
        mode.add_argument("--replace", action="store_true", help="Delete existing records first.")

    def handle(self, *args, rows, seed, if_empty=False, replace=False, **options) -> None:
        rows = _whole_number("--rows", rows, minimum=1)
        seed = _whole_number("--seed", seed)
        outcome = records_seed(
            rows=rows, seed=seed, replace=replace, if_empty=if_empty, on_progress=self._progress
        )
        self.stdout.write(self._summary(outcome, seed))

    def _progress(self, done: int, elapsed: float) -> None:
        self.stdout.write(f"  {done:,} rows ({done / max(elapsed, 1e-9):,.0f} rows/s)")

    @staticmethod
    def _summary(outcome: SeedOutcome, seed: int) -> str:
        if outcome.skipped:
            return (
                f"The corporate park already holds {outcome.existing:,} rows; "
                "nothing inserted (--if-empty)."
            )
        rate = outcome.inserted / max(outcome.elapsed, 1e-9)
        return (
            f"Inserted {outcome.inserted:,} corporate park rows (seed {seed}) "
            f"in {outcome.elapsed:.1f} s ({rate:,.0f} rows/s)."
        )
