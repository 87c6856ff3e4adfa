"""The raw SQL of the hot path, portable between PostgreSQL and SQLite.

Two reads serve a whole check: ``fingerprint_sql`` (the global state, the
configuration's version and today's counter rows) and ``snapshot_sql``
(holdings with quotes and the control group), sent in one round trip.
Identifiers come from model metadata; every value is a bound parameter.
"""

from __future__ import annotations

from typing import Any

# The counter columns a check reads (``risk.context.normalize_counter_row`` parses them).
COUNTER_SELECT = ("c.key, c.orders, c.amount, c.cancels, c.rejected, c.last_order_at, c.second, c.second_count,"
                  " c.instrument_id, c.open_buy_quantity, c.open_buy_amount, i.industry")


def _tables() -> dict[str, str]:
    from risk.models import RiskControl, RiskCounter
    from trading.models import Account, Instrument, Position, Quote

    return {
        "control": RiskControl._meta.db_table,
        "counter": RiskCounter._meta.db_table, "position": Position._meta.db_table, "instrument": Instrument._meta.db_table,
        "quote": Quote._meta.db_table, "account": Account._meta.db_table,
    }


FINGERPRINT_COLUMNS = 4


def fingerprint_sql(counters_for: tuple[int, Any, str] | None) -> tuple[str, list[Any]]:
    """The global state, its reason and the configuration's version and time of last change (one
    row; NULLs while the singleton is absent): triggers bump them on any write to the rule and
    restricted-symbol tables (migration risk 0003). With ``counters_for`` = (account id, day,
    symbol): one row per counter row a check reads (the account's, the symbol's, those of symbols
    with open buys), or one row of NULL counter columns when there is none."""
    t = _tables()
    sql = (
        f"SELECT r.trading_state, r.trading_state_reason, r.version, r.updated_at"  # noqa: S608 - identifiers from model metadata; values are bound
        f" FROM (SELECT 1 AS one) o LEFT JOIN {t['control']} r ON r.id = 1"
    )
    if counters_for is None:
        return sql, []
    account_id, day, symbol = counters_for
    sql = (
        f"SELECT r.trading_state, r.trading_state_reason, r.version, r.updated_at, {COUNTER_SELECT}"  # noqa: S608 - identifiers from model metadata; values are bound
        f" FROM (SELECT 1 AS one) o LEFT JOIN {t['control']} r ON r.id = 1"
        f" LEFT JOIN {t['counter']} c"
        f" ON c.account_id = %s AND c.trading_day = %s AND (c.key IN ('', %s) OR c.open_buy_quantity > 0)"
        f" LEFT JOIN {t['instrument']} i ON i.id = c.instrument_id"
    )
    return sql, [account_id, day, symbol]


def counters_sql(account_id: int, day: Any, symbol: str) -> tuple[str, list[Any]]:
    """Today's counter rows a check reads, without the configuration fingerprint."""
    t = _tables()
    sql = (
        f"SELECT {COUNTER_SELECT} FROM {t['counter']} c LEFT JOIN {t['instrument']} i ON i.id = c.instrument_id"  # noqa: S608 - identifiers from model metadata; values are bound
        f" WHERE c.account_id = %s AND c.trading_day = %s AND (c.key IN ('', %s) OR c.open_buy_quantity > 0)"
    )
    return sql, [account_id, day, symbol]


def snapshot_sql(*, account_id: int, instrument_id: int, day: Any, symbol: str, group: str) -> tuple[str, list[Any]]:
    """Rows (kind, instrument_id, account_id, quantity, frozen, amount, industry, last, prev_close):
    the account's positions with quotes (P) and, with a control group, the other accounts' holdings (G)
    and open buys (H, from their counter rows) of the order's instrument."""
    t = _tables()
    parts = [
        f"SELECT 'P' AS kind, p.instrument_id, p.account_id, p.quantity, p.frozen_quantity AS frozen, p.cost_amount AS amount,"  # noqa: S608 - identifiers from model metadata; values are bound
        f" i.industry, q.last, q.prev_close FROM {t['position']} p JOIN {t['instrument']} i ON i.id = p.instrument_id"
        f" LEFT JOIN {t['quote']} q ON q.instrument_id = p.instrument_id WHERE p.account_id = %s AND p.quantity > 0"
    ]
    params: list[Any] = [account_id]
    if group:
        parts.append(
            f"SELECT 'G', p.instrument_id, p.account_id, p.quantity, p.frozen_quantity, 0, '', NULL, NULL"  # noqa: S608 - identifiers from model metadata; values are bound
            f" FROM {t['position']} p JOIN {t['account']} a ON a.id = p.account_id"
            f" WHERE a.control_group = %s AND a.id <> %s AND p.instrument_id = %s"
        )
        parts.append(
            f"SELECT 'H', c.instrument_id, c.account_id, c.open_buy_quantity, 0, c.open_buy_amount, '', NULL, NULL"  # noqa: S608 - identifiers from model metadata; values are bound
            f" FROM {t['counter']} c JOIN {t['account']} a ON a.id = c.account_id"
            f" WHERE a.control_group = %s AND a.id <> %s AND c.trading_day = %s AND c.key = %s AND c.open_buy_quantity > 0"
        )
        params += [group, account_id, instrument_id, group, account_id, day, symbol]
    return " UNION ALL ".join(parts), params


COUNTER_UPSERT_COLUMNS = ("account_id", "trading_day", '"key"', "instrument_id", "orders", "amount", "rejected", "cancels",
                          "last_order_at", '"second"', "second_count", "open_buy_quantity", "open_buy_amount", "updated_at")


def counters_upsert_sql(rows_count: int) -> str:
    """INSERT of ``rows_count`` counter rows (values in COUNTER_UPSERT_COLUMNS order) that adds
    to the totals of rows already there (ON CONFLICT ... DO UPDATE): one statement whatever
    exists, so it can ride in a batch of writes. The one-second window moves only when a row
    brings a count for it; the last-order time only when it brings one."""
    t = _tables()["counter"]
    placeholder = "(" + ", ".join(["%s"] * len(COUNTER_UPSERT_COLUMNS)) + ")"
    return (
        f"INSERT INTO {t} ({', '.join(COUNTER_UPSERT_COLUMNS)}) VALUES {', '.join([placeholder] * rows_count)}"  # noqa: S608 - identifiers from model metadata; values are bound
        f' ON CONFLICT (account_id, trading_day, "key") DO UPDATE SET updated_at = excluded.updated_at,'
        f" orders = {t}.orders + excluded.orders, amount = {t}.amount + excluded.amount,"
        f" rejected = {t}.rejected + excluded.rejected, cancels = {t}.cancels + excluded.cancels,"
        f" last_order_at = COALESCE(excluded.last_order_at, {t}.last_order_at),"
        f" second_count = CASE WHEN excluded.second_count > 0 THEN"
        f' (CASE WHEN {t}."second" = excluded."second" THEN {t}.second_count + excluded.second_count'
        f" ELSE excluded.second_count END) ELSE {t}.second_count END,"
        f' "second" = CASE WHEN excluded.second_count > 0 THEN excluded."second" ELSE {t}."second" END,'
        f" open_buy_quantity = {t}.open_buy_quantity + excluded.open_buy_quantity,"
        f" open_buy_amount = {t}.open_buy_amount + excluded.open_buy_amount,"
        f" instrument_id = COALESCE({t}.instrument_id, excluded.instrument_id)"
    )
