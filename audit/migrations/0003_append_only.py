"""PostgreSQL refuses UPDATE, DELETE and TRUNCATE on the audit events and their seals.

A row trigger refuses UPDATE and DELETE; a statement trigger refuses TRUNCATE unless the session
says ``SET audit.allow_truncate = 'on'``, which only the tests' database teardown does (Django
flushes a test database with TRUNCATE). A role that owns the tables can still drop the triggers:
what proves the log intact is the keyed chain (audit/sealing.py, ``manage.py verify_audit``).
On SQLite (the embedded demo) nothing is refused at the database level.
"""

from django.db import migrations

TABLES = ("audit_auditevent", "audit_auditseal")

FUNCTION = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' AND current_setting('audit.allow_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% on % refused: the audit log is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION, params=None)  # no placeholders: its % are PL/pgSQL's
    for table in TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()")
        schema_editor.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_change ON {table}")
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS audit_refuse_change()")


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_audit_chain")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
