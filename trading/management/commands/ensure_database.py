"""Create the PostgreSQL database named by DATABASE_URL when it does not exist yet."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the PostgreSQL database of DATABASE_URL if missing (no-op on SQLite)."

    def handle(self, *args, **options):
        db = settings.DATABASES["default"]
        if not db["ENGINE"].endswith("postgresql"):
            return
        import psycopg
        from psycopg import sql

        params = {"dbname": "postgres", "user": db.get("USER") or None, "host": db.get("HOST") or None,
                  "port": db.get("PORT") or None, "password": db.get("PASSWORD") or None}
        try:
            with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone()
                if not exists:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
                    self.stdout.write(f"created database {db['NAME']}")
        except psycopg.Error as exc:
            raise CommandError(f"cannot reach PostgreSQL at {db.get('HOST')}:{db.get('PORT')}: {exc}") from exc
