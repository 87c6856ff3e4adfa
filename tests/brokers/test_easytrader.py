"""The easytrader adapters beyond the contract: each client's dialect, and each way a client fails.

The clients are the fakes of tests/brokers/fakes/easytrader_clients.py (shapes and failures of
easytrader 0.23.7's ClientTrader builds and MiniqmtTrader); the remote tests run easytrader's own
server module on loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from brokers.adapters.easytrader import (
    GJ,
    HT,
    MINIQMT,
    UNIVERSAL,
    EasytraderBroker,
    GridShapeError,
    parse_balance,
    parse_order,
    parse_trade,
    status_from_text,
)
from brokers.adapters.easytrader_remote import EasytraderRemoteBroker
from brokers.interface import BrokerOrderStatus, OrderRequest
from brokers.registry import adapter_class, broker_kinds
from tests.brokers.contract.targets.easytrader_remote import EasytraderServer
from tests.brokers.fakes.easytrader_clients import (
    CLIENTS,
    BrokerHost,
    GJClient,
    HTClient,
    MiniqmtClient,
    UniversalClient,
)
from trading.errors import BrokerError, BrokerTimeout, BrokerUnavailable

D = Decimal


def buy(quantity: int = 1000, price: str = "9.90", symbol: str = "600000.SH", ref: str = "1") -> OrderRequest:
    return OrderRequest(client_ref=ref, symbol=symbol, side="BUY", order_type="LIMIT", quantity=quantity, price=D(price))


def market_buy(quantity: int = 500) -> OrderRequest:
    return OrderRequest(client_ref="m", symbol="600000.SH", side="BUY", order_type="MARKET", quantity=quantity,
                        protection_price=D("10.50"))


@pytest.fixture
def host() -> BrokerHost:
    return BrokerHost(cash=D("1000000"))


def adapter_for(host: BrokerHost, client: str, **settings: Any) -> EasytraderBroker:
    broker = EasytraderBroker("acc", {"client": client, "confirm_interval": 0, "user": "u", **settings},
                              client=CLIENTS[client](host))
    broker.login()
    return broker


# -- dialects -----------------------------------------------------------------


def test_both_kinds_are_registered() -> None:
    assert {"easytrader", "easytrader_remote"} <= set(broker_kinds())
    assert adapter_class("easytrader") is EasytraderBroker and adapter_class("easytrader_remote") is EasytraderRemoteBroker
    assert not EasytraderBroker.capabilities.client_ref and not EasytraderRemoteBroker.capabilities.market_orders


@pytest.mark.parametrize(("text", "status"), [
    ("已报", BrokerOrderStatus.OPEN), ("未成交", BrokerOrderStatus.OPEN), ("已报待撤", BrokerOrderStatus.OPEN),
    ("已报(买卖)", BrokerOrderStatus.OPEN), ("部成", BrokerOrderStatus.PARTIALLY_FILLED),
    ("部分成交", BrokerOrderStatus.PARTIALLY_FILLED), ("部成待撤", BrokerOrderStatus.PARTIALLY_FILLED),
    ("已成", BrokerOrderStatus.FILLED), ("全部成交", BrokerOrderStatus.FILLED), ("已撤", BrokerOrderStatus.CANCELLED),
    ("部撤", BrokerOrderStatus.CANCELLED), ("场内撤单", BrokerOrderStatus.CANCELLED),
    ("废单", BrokerOrderStatus.REJECTED), ("废单[证券代码停牌]", BrokerOrderStatus.REJECTED), ("神秘状态", None),
])
def test_status_words(text: str, status: BrokerOrderStatus | None) -> None:
    assert status_from_text(text) == status


def test_an_unknown_status_text_reads_from_the_quantities() -> None:
    base = {"合同编号": "1", "证券代码": "600000", "操作": "买入", "委托价格": 9.9, "委托数量": 1000, "成交数量": 300,
            "成交均价": 9.9, "委托时间": "10:00:00", "备注": "神秘状态"}
    order = parse_order(base, HT)
    assert (order.status, order.filled_quantity, order.avg_fill_price) == (BrokerOrderStatus.PARTIALLY_FILLED, 300, D("9.9"))
    assert parse_order({**base, "成交数量": 1000}, HT).status == BrokerOrderStatus.FILLED


def test_balances_of_each_client(host: BrokerHost) -> None:
    host.holdings["600036"] = (1000, D("35.50"))
    for client in ("ht_client", "gj_client", "universal_client", "miniqmt"):
        broker = adapter_for(host, client)
        broker.place_order(buy(1000, "9.90"))
        balance = broker.get_balance()
        assert (balance.cash, balance.frozen, balance.available) == (D("1000000"), D("9900"), D("990100")), client
        assert (balance.market_value, balance.total_assets) == (D("35500"), D("1035500")), client
        broker.cancel_order(broker.query_orders()[-1].broker_order_id)


def test_universal_balance_has_no_market_value_and_is_derived() -> None:
    balance = parse_balance({"资金余额": 1000.0, "可用金额": 800.0, "可取金额": 800.0, "总资产": 3000.0}, UNIVERSAL)
    assert (balance.cash, balance.available, balance.frozen, balance.market_value, balance.total_assets) == (
        D("1000"), D("800"), D("200"), D("2000"), D("3000"))


def test_miniqmt_balance_is_a_list_and_its_cash_is_the_available_cash() -> None:
    balance = parse_balance([{"total_asset": 1100.0, "market_value": 100.0, "cash": 900.0, "frozen_cash": 100.0,
                              "account_type": 2, "account_id": "8800"}], MINIQMT)
    assert (balance.cash, balance.available, balance.frozen) == (D("1000"), D("900"), D("100"))
    with pytest.raises(GridShapeError):
        parse_balance({"total_asset": 1.0}, MINIQMT)


@pytest.mark.parametrize("client", ["ht_client", "gj_client", "universal_client", "miniqmt"])
def test_orders_positions_and_trades_of_each_client_are_typed(host: BrokerHost, client: str) -> None:
    host.holdings["000001"] = (500, D("12.34"))
    broker = adapter_for(host, client)
    ack = broker.place_order(buy(1000, "9.90"))
    host.fill(ack.broker_order_id, 400, D("9.89"))
    [order] = broker.query_orders()
    assert (order.broker_order_id, order.symbol, order.side, order.order_type, order.price) == (
        ack.broker_order_id, "600000.SH", "BUY", "LIMIT", D("9.90"))
    assert (order.status, order.quantity, order.filled_quantity, order.avg_fill_price) == (
        BrokerOrderStatus.PARTIALLY_FILLED, 1000, 400, D("9.89"))
    assert order.created_at.tzinfo is not None and order.client_ref == ""
    [trade] = broker.query_trades()
    assert isinstance(trade.broker_trade_id, str) and trade.broker_trade_id
    assert (trade.broker_order_id, trade.symbol, trade.quantity, trade.price, trade.amount) == (
        ack.broker_order_id, "600000.SH", 400, D("9.89"), D("3956.00"))
    positions = {p.symbol: p for p in broker.get_positions()}
    assert (positions["000001.SZ"].quantity, positions["000001.SZ"].sellable_quantity) == (500, 500)
    assert positions["000001.SZ"].avg_cost == D("12.34")
    assert (positions["600000.SH"].quantity, positions["600000.SH"].sellable_quantity) == (400, 0)  # T+1


def test_numbers_read_as_numbers_become_text() -> None:
    # pandas reads 成交编号 (not in GRID_DTYPE) as int, and a code column that lost its zeros
    trade = parse_trade({"成交时间": "10:00:01", "证券代码": 1, "操作": "卖出", "成交数量": 100, "成交均价": 12.5,
                         "成交金额": 1250.0, "合同编号": "77", "成交编号": 26091001}, HT)
    assert trade is not None
    assert (trade.broker_trade_id, trade.symbol, trade.side) == ("26091001", "000001.SZ", "SELL")


def test_miniqmt_ids_are_int_and_cancel_gets_an_int(host: BrokerHost) -> None:
    broker = adapter_for(host, "miniqmt", login="connect", account_id="8800001")
    assert isinstance(MiniqmtClient(host).today_entrusts, list)
    ack = broker.place_order(buy())
    assert isinstance(host.entrusts[0].number, int) and ack.broker_order_id == str(host.entrusts[0].number)
    broker.cancel_order(ack.broker_order_id)  # the fake matches int numbers only
    assert broker.query_orders()[0].status == BrokerOrderStatus.CANCELLED


def test_miniqmt_market_orders_and_refusals(host: BrokerHost) -> None:
    broker = adapter_for(host, "miniqmt", login="connect")
    broker.place_order(market_buy())
    [order] = broker.query_orders()
    assert (order.order_type, order.price, order.quantity) == ("MARKET", None, 500)
    host.place_faults.append("refuse")
    with pytest.raises(BrokerError) as info:
        broker.place_order(buy())
    assert not isinstance(info.value, BrokerTimeout)
    assert len(broker.query_orders()) == 1


def test_a_gui_market_order_is_listed_as_market(host: BrokerHost) -> None:
    broker = adapter_for(host, "ht_client")
    ack = broker.place_order(market_buy())
    [order] = broker.query_orders()
    assert (order.broker_order_id, order.order_type, order.price) == (ack.broker_order_id, "MARKET", None)


def test_a_client_without_market_orders_sends_nothing(host: BrokerHost) -> None:
    class NoMarket(HTClient):
        market_buy = None  # type: ignore[assignment]

    broker = EasytraderBroker("acc", {"client": "ht_client", "confirm_interval": 0}, client=NoMarket(host))
    with pytest.raises(BrokerError):
        broker.place_order(market_buy())
    assert host.sent == []


def test_an_account_may_name_its_own_columns(host: BrokerHost) -> None:
    class RenamedBuild(GJClient):
        def _entrust_row(self, e: Any) -> dict[str, Any]:
            row = super()._entrust_row(e)
            row["委托号"] = row.pop("合同编号")
            return row

    renamed = EasytraderBroker("acc", {"client": "gj_client", "confirm_interval": 0, "columns": {"order_id": ["委托号"]}},
                               client=RenamedBuild(host))
    ack = renamed.place_order(buy())
    assert ack.broker_order_id == str(host.entrusts[0].number)
    broker = EasytraderBroker("acc", {"client": "gj_client", "confirm_interval": 0}, client=RenamedBuild(host))
    with pytest.raises(GridShapeError):
        broker.place_order(buy())  # an unknown shape is an error, not a guess (and nothing was sent)
    assert len(host.sent) == 1
    with pytest.raises(ValueError):
        EasytraderBroker("acc", {"client": "gj_client", "columns": {"no_such_field": ["x"]}})


def test_rows_of_other_business_are_left_out_not_fatal(host: BrokerHost) -> None:
    class WithIpo(HTClient):
        @property
        def today_entrusts(self) -> list[dict[str, Any]] | None:
            rows = super().today_entrusts or []
            ipo = {**rows[0], "合同编号": "1", "证券代码": "732001", "操作": "申购", "委托价格": 5.0, "备注": "已报"}
            return [ipo, *rows]

    broker = EasytraderBroker("acc", {"client": "ht_client", "confirm_interval": 0}, client=WithIpo(host))
    host.enter("600000", "BUY", D("9.90"), 100)
    assert [o.broker_order_id for o in broker.query_orders()] == [str(host.entrusts[0].number)]


# -- trades -------------------------------------------------------------------


def test_trades_are_deduplicated_by_trade_id_and_cancellation_rows_skipped(host: BrokerHost) -> None:
    broker = adapter_for(host, "gj_client")
    ack = broker.place_order(buy())
    host.fill(ack.broker_order_id, 100, D("9.90"))
    host.fill(ack.broker_order_id, 100, D("9.90"))  # the same again: a different trade
    host.replay_trades = True
    trades = broker.query_trades()
    assert [t.quantity for t in trades] == [100, 100] and len({t.broker_trade_id for t in trades}) == 2
    cancel_row = {"成交时间": "10:00:01", "证券代码": "600000", "操作": "撤单", "成交数量": -900, "成交均价": 0.0,
                  "成交金额": 0.0, "合同编号": "11838", "成交编号": 0}
    assert parse_trade(cancel_row, GJ) is None


def test_a_grid_without_trade_numbers_gets_stable_made_up_ones() -> None:
    row = {"成交日期": 20260105, "成交时间": "10:00:01", "证券代码": "600000", "买卖标志": "买入", "成交价格": 9.9,
           "成交数量": 100, "成交金额": 990.0, "合同编号": "11838"}
    first, again = parse_trade(row, UNIVERSAL), parse_trade(dict(row), UNIVERSAL)
    assert first is not None and again is not None
    assert first.broker_trade_id == again.broker_trade_id == "11838-100001-100-9.9"
    assert first.filled_at.isoformat() == "2026-01-05T10:00:01+08:00"


# -- failures -------------------------------------------------------------------


@pytest.mark.parametrize("faults", [["none_grid"], ["clipboard", "clipboard"]])
def test_a_failed_grid_read_is_unavailable_never_an_empty_list(host: BrokerHost, faults: list[str]) -> None:
    broker = adapter_for(host, "gj_client")
    broker.place_order(buy())
    for fault in faults:
        host.fail_read("today_entrusts", fault)
    with pytest.raises(BrokerUnavailable):
        broker.query_orders()
    assert len(broker.query_orders()) == 1


def test_one_clipboard_error_is_read_again_after_logging_in(host: BrokerHost) -> None:
    broker = adapter_for(host, "gj_client")
    broker.place_order(buy())
    host.fail_read("today_entrusts", "clipboard")
    assert len(broker.query_orders()) == 1 and host.logins == 2


def test_a_failed_read_before_sending_sends_nothing(host: BrokerHost) -> None:
    broker = adapter_for(host, "ht_client")
    host.fail_read("today_entrusts", "none_grid")
    with pytest.raises(BrokerUnavailable):
        broker.place_order(buy())
    assert host.sent == [] and host.entrusts == []


def test_a_failed_read_after_sending_is_an_unknown_outcome(host: BrokerHost) -> None:
    broker = adapter_for(host, "ht_client", confirm_reads=1)
    host.fail_read("today_entrusts", "")  # the read before sending succeeds
    host.fail_read("today_entrusts", "none_grid")
    with pytest.raises(BrokerTimeout):
        broker.place_order(buy())
    assert len(host.entrusts) == 1  # it was placed: reconciliation finds it


def test_success_without_a_number_is_found_by_what_the_order_says(host: BrokerHost) -> None:
    broker = adapter_for(host, "ht_client")
    earlier = broker.place_order(buy())  # an identical order already listed
    host.place_faults.append("no_number")
    ack = broker.place_order(buy())
    assert ack.broker_order_id != earlier.broker_order_id
    assert ack.broker_order_id == str(host.entrusts[-1].number)


def test_reported_success_for_an_order_never_placed_is_never_acknowledged(host: BrokerHost) -> None:
    broker = adapter_for(host, "gj_client")
    host.place_faults.append("phantom")
    with pytest.raises(BrokerTimeout):
        broker.place_order(buy())
    assert broker.query_orders() == []


def test_an_entrust_number_missing_from_the_list_is_an_unknown_outcome(host: BrokerHost) -> None:
    class Liar(HTClient):
        def buy(self, security: str, price: float, amount: int, **kwargs: Any) -> dict[str, str]:
            return {"entrust_no": "99999"}

    broker = EasytraderBroker("acc", {"client": "ht_client", "confirm_interval": 0}, client=Liar(host))
    with pytest.raises(BrokerTimeout) as info:
        broker.place_order(buy())
    assert "99999" in info.value.message


def test_a_trade_error_is_a_refusal_in_the_brokers_words(host: BrokerHost) -> None:
    broker = adapter_for(host, "universal_client", login="connect")
    host.place_faults.append("refuse")
    with pytest.raises(BrokerError) as info:
        broker.place_order(buy())
    assert not isinstance(info.value, BrokerTimeout | BrokerUnavailable) and "证券代码停牌" in info.value.message
    host.cash = D("100")
    with pytest.raises(BrokerError, match="可用资金不足"):
        broker.place_order(buy())


@pytest.mark.parametrize("fault", ["lost_before", "lost_after"])
def test_a_window_that_stops_answering_while_sending_is_a_timeout(host: BrokerHost, fault: str) -> None:
    broker = adapter_for(host, "ht_client")
    host.place_faults.append(fault)
    with pytest.raises(BrokerTimeout):
        broker.place_order(buy())
    assert len(broker.query_orders()) == (1 if fault == "lost_after" else 0)


def test_cancel_answers(host: BrokerHost) -> None:
    broker = adapter_for(host, "ht_client")
    ack = broker.place_order(buy())
    host.fill(ack.broker_order_id, 1000, D("9.90"))
    with pytest.raises(BrokerError, match="不能撤单"):
        broker.cancel_order(ack.broker_order_id)

    class Unsure(HTClient):
        def cancel_entrust(self, entrust_no: str) -> dict[str, str]:
            return {"message": "unknown message: 系统繁忙"}

    unsure = EasytraderBroker("acc", {"client": "ht_client"}, client=Unsure(host))
    with pytest.raises(BrokerTimeout):
        unsure.cancel_order(ack.broker_order_id)


@pytest.mark.parametrize("client", ["ht_client", "universal_client", "miniqmt"])
def test_a_dead_client_fails_every_call_and_the_adapter_logs_in_again(host: BrokerHost, client: str) -> None:
    broker = adapter_for(host, client, login="connect")
    ack = broker.place_order(buy())
    host.disconnect()
    for call in (broker.query_orders, broker.query_trades, broker.get_balance, broker.get_positions):
        with pytest.raises((BrokerUnavailable, BrokerTimeout)):
            call()
    with pytest.raises(BrokerUnavailable):
        broker.place_order(buy(price="9.80"))
    host.fill(ack.broker_order_id, 100, D("9.90"))
    host.reconnect()
    assert host.logins == 1
    [order] = broker.query_orders()  # logs in again by itself
    assert host.logins == 2 and order.filled_quantity == 100
    assert [t.quantity for t in broker.query_trades()] == [100]
    assert [s for s in host.sent if s[2] == D("9.80")] == []


def test_miniqmt_empty_lists_while_down_are_not_believed(host: BrokerHost) -> None:
    broker = adapter_for(host, "miniqmt", login="connect")
    broker.place_order(buy())
    host.disconnect()
    host.reconnect()  # a new session on the host: the client's connection is stale
    assert MiniqmtClient.today_entrusts.fget(broker._session.client) == []  # type: ignore[attr-defined]
    assert len(broker.query_orders()) == 1  # the balance probe failed, the adapter logged in again


def test_miniqmt_connect_that_fails_silently_is_a_failed_login(host: BrokerHost) -> None:
    host.disconnect()
    broker = EasytraderBroker("acc", {"client": "miniqmt", "login": "connect"}, client=MiniqmtClient(host))
    with pytest.raises(BrokerUnavailable):
        broker.login()


def test_lazy_construction_from_settings_only() -> None:
    made: list[Any] = []

    def factory() -> Any:
        made.append(UniversalClient(BrokerHost(cash=D("5"))))
        return made[-1]

    broker = EasytraderBroker("acc", {"client": "universal_client", "exe_path": r"C:\ths\xiadan.exe"}, client_factory=factory)
    assert made == []
    assert broker.get_balance().cash == D("5") and len(made) == 1


# -- easytrader's own server ---------------------------------------------------------


@pytest.fixture
def served(host: BrokerHost) -> Iterator[EasytraderServer]:
    user = HTClient(host)
    user.prepare(user="u", password="p", comm_password="c")
    server = EasytraderServer(user)
    try:
        yield server
    finally:
        server.close()


def remote(server: EasytraderServer, **settings: Any) -> EasytraderRemoteBroker:
    return EasytraderRemoteBroker("acc", {"client": "ht_client", "host": "127.0.0.1", "port": server.port, "timeout": 5,
                                          "confirm_interval": 0, **settings})


def test_remote_trade_error_keeps_the_brokers_words(host: BrokerHost, served: EasytraderServer) -> None:
    host.place_faults.append("refuse")
    with pytest.raises(BrokerError) as info:
        remote(served).place_order(buy())
    assert not isinstance(info.value, BrokerTimeout | BrokerUnavailable)
    assert info.value.message == "委托失败: 证券代码停牌"


def test_remote_market_orders_are_refused_before_sending(host: BrokerHost, served: EasytraderServer) -> None:
    with pytest.raises(BrokerError):
        remote(served).place_order(market_buy())
    assert host.sent == []


def test_remote_server_down_is_unavailable(host: BrokerHost, served: EasytraderServer) -> None:
    broker = remote(served)
    broker.login()
    served.stop()
    with pytest.raises(BrokerUnavailable):
        broker.place_order(buy())
    with pytest.raises(BrokerUnavailable):
        broker.get_balance()
    assert host.sent == []


def test_remote_logs_in_through_prepare_and_again_after_the_client_died(
        host: BrokerHost, served: EasytraderServer, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []

    def use(broker: str) -> HTClient:  # what easytrader.api.use does on the Windows host
        made.append(broker)
        return HTClient(host)

    monkeypatch.setattr(served.module.api, "use", use)
    broker = remote(served, user="666600001234", password="secret", comm_password="comm")
    broker.login()
    assert made == ["ht_client"]
    broker.place_order(buy())
    host.disconnect()
    with pytest.raises(BrokerUnavailable):
        broker.query_orders()
    tries = len(made)  # the failed read logged in once more, in vain
    host.reconnect()
    assert len(broker.query_orders()) == 1 and len(made) == tries + 1
