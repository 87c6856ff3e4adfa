from django.core.management.base import BaseCommand, CommandError

from trading.reference import instruments_load


class Command(BaseCommand):
    help = "Load or update instrument reference data (default: trading/data/instruments.csv)."

    def add_arguments(self, parser):
        parser.add_argument("--file", default=None, help="CSV with the columns of trading/data/instruments.csv")

    def handle(self, *args, **options):
        try:
            report = instruments_load(path=options["file"])
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"instruments: {report.created} created, {report.updated} updated, {report.unchanged} unchanged")
