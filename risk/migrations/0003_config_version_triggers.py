"""Any write to the rule or restricted-symbol tables bumps the configuration version.

Risk control caches the parsed configuration per process and checks one row per
order (the global state, its version and when it last changed, see
``risk.sql.fingerprint_sql``). These triggers make that row change with every
insert, update or delete of a rule or a restricted symbol, in the writer's own
transaction, whether it went through the services, admin, a queryset update or
raw SQL. The singleton row is created when absent.
"""

from django.db import migrations

TABLES = ("risk_riskrule", "risk_restrictedsymbol")

POSTGRESQL = [
    """
    CREATE OR REPLACE FUNCTION risk_config_changed() RETURNS trigger AS $$
    BEGIN
        INSERT INTO risk_riskcontrol (id, trading_state, trading_state_reason, version, updated_by, updated_at)
        VALUES (1, 'ACTIVE', '', 1, '', now())
        ON CONFLICT (id) DO UPDATE SET version = risk_riskcontrol.version + 1, updated_at = now();
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql
    """,
    *(f"CREATE TRIGGER {table}_config_changed AFTER INSERT OR UPDATE OR DELETE ON {table}"
      f" FOR EACH STATEMENT EXECUTE FUNCTION risk_config_changed()" for table in TABLES),
]
POSTGRESQL_REVERSE = [*(f"DROP TRIGGER IF EXISTS {table}_config_changed ON {table}" for table in TABLES),
                      "DROP FUNCTION IF EXISTS risk_config_changed()"]

SQLITE_BODY = (
    "INSERT OR IGNORE INTO risk_riskcontrol (id, trading_state, trading_state_reason, version, updated_by, updated_at)"
    " VALUES (1, 'ACTIVE', '', 0, '', strftime('%Y-%m-%d %H:%M:%f', 'now'));"
    " UPDATE risk_riskcontrol SET version = version + 1, updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE id = 1;"
)
SQLITE = [f"CREATE TRIGGER {table}_config_{op.lower()} AFTER {op} ON {table} BEGIN {SQLITE_BODY} END"
          for table in TABLES for op in ("INSERT", "UPDATE", "DELETE")]
SQLITE_REVERSE = [f"DROP TRIGGER IF EXISTS {table}_config_{op.lower()}" for table in TABLES for op in ("INSERT", "UPDATE", "DELETE")]


def _run(statements: dict[str, list[str]]):
    def run(apps, schema_editor) -> None:
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)
    return run


class Migration(migrations.Migration):

    dependencies = [
        ("risk", "0002_counter_open_buys"),
    ]

    operations = [
        migrations.RunPython(_run({"postgresql": POSTGRESQL, "sqlite": SQLITE}),
                             _run({"postgresql": POSTGRESQL_REVERSE, "sqlite": SQLITE_REVERSE})),
    ]
