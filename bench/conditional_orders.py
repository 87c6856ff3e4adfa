"""Conditional orders under a quote stream: what evaluating them costs per quote, and how long a
trigger takes from the quote's arrival to its child order accepted.

Builds a fresh PostgreSQL database with BENCH_PARENTS (10,000) ACTIVE conditional orders (price
triggers, buys) over BENCH_SYMBOLS (50) main-board symbols of one account: per symbol, a ladder of
levels the bench will cross one at a time (AT_OR_ABOVE 10.50, 10.51, ...) and the rest far from the
market (AT_OR_ABOVE 10.80-10.99, AT_OR_BELOW 9.01-9.20), created in bulk with the thresholds their
kind computes. Starts the system as `make run` does on PostgreSQL + Redis (`manage.py run_system
--no-market`: web server, outbox relay, Celery workers and beat; the simulated market off so that
only the bench moves prices), then publishes BENCH_RATE (200) quotes a second through
POST /api/v1/market/quotes in batches of BENCH_BATCH (10) from BENCH_PUBLISHERS (4) threads, each
its own connection and symbols, for BENCH_SECONDS (20): the last price
wanders 9.95-10.05 (reaching nothing), and BENCH_SPIKES a second one quote of a symbol jumps to its
next ladder level, which must fire exactly one parent.

Reported:
- evaluation cost per quote, p50/p99 (all quotes, and those that reached nothing): the histogram
  ``trading_conditions_evaluation_seconds`` (conditions/signals.py -> monitoring/metrics.py) summed
  over the system's processes, read from its prometheus multiprocess files; percentiles are
  interpolated within its buckets;
- trigger latency: the wall-clock time the bench sent the batch holding the crossing quote to the
  child order's ``created_at`` (accepted by order intake), p50/p99;
- how many spikes fired, how many parents fired twice or fired without a spike (must be 0).

Targets (issue 13): evaluation p99 < 2 ms, trigger latency p99 < 50 ms. The figures depend on the
machine and on what else runs on it.

Environment: BENCH_DATABASE_URL (postgres://postgres@127.0.0.1:5432/bench_conditional_orders, recreated),
BENCH_REDIS_URL (redis://127.0.0.1:6379/14, emptied), BENCH_PORT (8765), BENCH_SECONDS (20),
BENCH_RATE (200), BENCH_BATCH (10), BENCH_PUBLISHERS (4), BENCH_SPIKES (4), BENCH_PARENTS (10000), BENCH_SYMBOLS (50).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.system import fresh_postgres, percentile, system_start, system_stop  # noqa: E402

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_conditional_orders")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
PORT = int(os.environ.get("BENCH_PORT", "8765"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
RATE = float(os.environ.get("BENCH_RATE", "200"))
BATCH = int(os.environ.get("BENCH_BATCH", "10"))
SPIKES = float(os.environ.get("BENCH_SPIKES", "4"))
PARENTS = int(os.environ.get("BENCH_PARENTS", "10000"))
SYMBOLS = int(os.environ.get("BENCH_SYMBOLS", "50"))
PUBLISHERS = int(os.environ.get("BENCH_PUBLISHERS", "4"))  # threads, each its own connection and symbols
METRICS_DIR = ROOT / "var" / "bench_conditions_metrics"
LADDER = 40  # crossable levels per symbol: 10.50, 10.51, ... (a run crosses SPIKES x SECONDS of them in all)
DRAIN_SECONDS = 15.0


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SQLITE_PATH")}
    env.update(DJANGO_DEBUG="0", LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1", DJANGO_SETTINGS_MODULE="trading.settings",
               DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL, CELERY_QUEUE="bench-conditions",
               PROMETHEUS_MULTIPROC_DIR=str(METRICS_DIR))
    return env


# --------------------------------------------------------------------------- set-up (the child process)


def prepare() -> tuple[str, list[str]]:
    """Schema, instruments, the account, a market-data key, quotes and the parents; (key, symbols)."""
    from django.core.management import call_command
    from django.db import transaction

    from brokers.services import account_create, quotes_publish
    from conditions.kinds import kind_for
    from conditions.models import ChildPriceType, ConditionalOrder
    from trading.auth import api_key_create
    from trading.models import ApiKey, Instrument
    from trading.suitability import ALL_PERMISSIONS

    call_command("migrate", "--noinput", verbosity=0)
    account = account_create(name="bench", broker_kind="paper", cash=Decimal("1000000000000"), permissions=ALL_PERMISSIONS)
    _, key = api_key_create(name="bench", accounts=["bench"], can_trade=True, market_data=True, disclosure_acknowledged_by="bench")
    ApiKey.objects.filter(name="bench").update(rate_limit_per_second=100000)
    # Made-up main-board symbols (the shipped reference data has too few): 601000.SH, 601001.SH, ...
    instruments = [Instrument.objects.create(exchange="SH", code=str(601000 + i), name=f"bench {i}", board="MAIN")
                   for i in range(SYMBOLS)]
    symbols = [f"{i.code}.SH" for i in instruments]
    quotes_publish([{"symbol": s, "last": "10.00", "prev_close": "10.00", "bid": "9.99", "ask": "10.00",
                     "bid_volume": 100000, "ask_volume": 100000} for s in symbols])
    price = kind_for("price")
    rows = []
    per_symbol = PARENTS // SYMBOLS
    for n in range(PARENTS):
        inst = instruments[n % SYMBOLS]
        j = n // SYMBOLS
        if j < LADDER:
            params = {"direction": "AT_OR_ABOVE", "level": str(Decimal("10.50") + Decimal("0.01") * j)}
        elif j % 2:
            params = {"direction": "AT_OR_ABOVE", "level": str(Decimal("10.80") + Decimal("0.01") * (j % 20))}
        else:
            params = {"direction": "AT_OR_BELOW", "level": str(Decimal("9.01") + Decimal("0.01") * (j % 20))}
        parent = ConditionalOrder(account=account, instrument=inst, client_order_id=f"b-{n}", kind="price", side="BUY",
                                  quantity=100, price_type=ChildPriceType.TRIGGER_OFFSET, offset_ticks=1,
                                  params=params, memory={"prev_close": "10.00"}, created_by="bench")
        thresholds = price.thresholds(parent, price.parse(params))
        parent.watch_low, parent.watch_high = thresholds.low, thresholds.high
        rows.append(parent)
    with transaction.atomic():
        ConditionalOrder.objects.bulk_create(rows, batch_size=2000)
    print(f"prepared {len(rows)} parents ({per_symbol} per symbol) over {len(symbols)} symbols", flush=True)
    return key, symbols


# --------------------------------------------------------------------------- the quote stream


def publish_share(key: str, symbols: list[str], rate: float, seed: int, out: dict[str, Any]) -> None:
    """``rate`` quotes/s of ``symbols`` for BENCH_SECONDS on one connection (one publisher thread)."""
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    rng = random.Random(seed)
    batches_per_second = rate / BATCH
    spike_every = max(round(batches_per_second * PUBLISHERS / SPIKES), 1) if SPIKES > 0 else 0
    ladder = dict.fromkeys(symbols, 0)
    spikes: list[tuple[str, Decimal, float]] = []
    http_times: list[float] = []
    errors = sent_quotes = cursor = batch_number = 0
    start = time.perf_counter()
    next_at = start
    while time.perf_counter() - start < SECONDS:
        next_at += 1 / batches_per_second
        time.sleep(max(next_at - time.perf_counter(), 0))
        quotes = []
        spike: tuple[str, Decimal] | None = None
        for _ in range(BATCH):
            symbol = symbols[cursor % len(symbols)]
            cursor += 1
            last = Decimal("9.95") + Decimal("0.01") * rng.randrange(11)
            if spike is None and spike_every and batch_number % spike_every == 0 and ladder[symbol] < LADDER:
                last = Decimal("10.50") + Decimal("0.01") * ladder[symbol]
                ladder[symbol] += 1
                spike = (symbol, last)
            quotes.append({"symbol": symbol, "last": str(last), "bid": str(last - Decimal("0.01")), "ask": str(last),
                           "bid_volume": 100000, "ask_volume": 100000})
        batch_number += 1
        sent = time.time()
        began = time.perf_counter()
        conn.request("POST", "/api/v1/market/quotes", json.dumps({"quotes": quotes}), headers)
        response = conn.getresponse()
        response.read()
        http_times.append(time.perf_counter() - began)
        if response.status != 200:
            errors += 1
            continue
        sent_quotes += len(quotes)
        if spike is not None:
            spikes.append((spike[0], spike[1], sent))
    out.update(spikes=spikes, errors=errors, http_times=http_times, quotes=sent_quotes, seconds=time.perf_counter() - start)


def publish(key: str, symbols: list[str]) -> tuple[list[tuple[str, Decimal, float]], int, list[float], float]:
    """BENCH_RATE quotes/s for BENCH_SECONDS from BENCH_PUBLISHERS threads, each with its own symbols
    (so one symbol's quotes stay in order); the spikes as (symbol, level, sent at), refused batches,
    the batches' HTTP times and the quotes/s achieved."""
    results: list[dict[str, Any]] = [{} for _ in range(PUBLISHERS)]
    threads = [threading.Thread(target=publish_share, args=(key, symbols[i::PUBLISHERS], RATE / PUBLISHERS, 13 + i, results[i]))
               for i in range(PUBLISHERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spikes = [s for r in results for s in r["spikes"]]
    achieved = sum(r["quotes"] for r in results) / max(r["seconds"] for r in results)
    return spikes, sum(r["errors"] for r in results), [t for r in results for t in r["http_times"]], achieved


# --------------------------------------------------------------------------- the figures


def fired_children() -> dict[tuple[str, Decimal], list[tuple[int, datetime]]]:
    """(symbol, level) -> [(parent id, its child's created_at)] for every firing recorded."""
    from conditions.models import ParentEvent

    found: dict[tuple[str, Decimal], list[tuple[int, datetime]]] = {}
    rows = (ParentEvent.objects.filter(event="FIRED", child__isnull=False)
            .values_list("parent_id", "parent__instrument__code", "parent__params", "child__created_at"))
    for parent_id, code, params, created in rows:
        found.setdefault((f"{code}.SH", Decimal(params["level"])), []).append((parent_id, created))
    return found


def evaluation_histogram() -> dict[str, list[tuple[float, float]]]:
    """result -> cumulative [(upper bound, count)] of trading_conditions_evaluation_seconds, summed over processes."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(METRICS_DIR))
    buckets: dict[str, dict[float, float]] = {}
    for family in registry.collect():
        if family.name != "trading_conditions_evaluation_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                bound = float("inf") if sample.labels["le"] == "+Inf" else float(sample.labels["le"])
                per = buckets.setdefault(sample.labels["result"], {})
                per[bound] = per.get(bound, 0.0) + sample.value
    return {result: sorted(per.items()) for result, per in buckets.items()}


def merged(histograms: dict[str, list[tuple[float, float]]], results: list[str]) -> list[tuple[float, float]]:
    total: dict[float, float] = {}
    for result in results:
        for bound, count in histograms.get(result, []):
            total[bound] = total.get(bound, 0.0) + count
    return sorted(total.items())


def bucket_percentile(cumulative: list[tuple[float, float]], fraction: float) -> float:
    """The percentile, interpolated linearly inside its bucket (as Prometheus' histogram_quantile)."""
    if not cumulative or cumulative[-1][1] == 0:
        return float("nan")
    rank = cumulative[-1][1] * fraction
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in cumulative:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            width = count - lower_count
            return lower_bound + (bound - lower_bound) * ((rank - lower_count) / width if width else 1.0)
        lower_bound, lower_count = bound, count
    return lower_bound


def run() -> dict[str, Any]:
    import django

    django.setup()
    from django.db import connection

    shutil.rmtree(METRICS_DIR, ignore_errors=True)
    METRICS_DIR.mkdir(parents=True, exist_ok=True)
    key, symbols = prepare()
    connection.close()
    log = open(ROOT / "var" / "bench_conditional_orders.log", "w")  # noqa: SIM115 - closed below
    try:
        system = system_start(PORT, log, "--no-market")
    except BaseException:
        log.close()
        raise
    try:
        time.sleep(3)  # the workers and beat come up
        spikes, errors, http_times, achieved = publish(key, symbols)
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline:
            found = fired_children()
            if all((s, level) in found for s, level, _ in spikes):
                break
            time.sleep(0.5)
        found = fired_children()
        histograms = evaluation_histogram()
    finally:
        system_stop(system)
        log.close()
    latencies = []
    missed = 0
    for symbol, level, sent in spikes:
        fired = found.get((symbol, level), [])
        if not fired:
            missed += 1
            continue
        created = min(c for _, c in fired)
        latencies.append(created.timestamp() - sent)
    spiked = {(s, level) for s, level, _ in spikes}
    twice = sum(1 for key_, fired in found.items() if len(fired) > 1 or len({p for p, _ in fired}) != len(fired))
    unexpected = sum(len(fired) for key_, fired in found.items() if key_ not in spiked)
    from conditions.models import ParentEvent

    per_parent = ParentEvent.objects.filter(event="FIRED").values_list("parent_id", flat=True)
    fired_twice = len(per_parent) - len(set(per_parent))
    everything = merged(histograms, list(histograms))
    idle = merged(histograms, ["idle"])
    return {
        "quotes": int(everything[-1][1]) if everything else 0,
        "idle_quotes": int(idle[-1][1]) if idle else 0,
        "eval_p50_ms": bucket_percentile(everything, 0.50) * 1000,
        "eval_p99_ms": bucket_percentile(everything, 0.99) * 1000,
        "eval_idle_p50_ms": bucket_percentile(idle, 0.50) * 1000,
        "eval_idle_p99_ms": bucket_percentile(idle, 0.99) * 1000,
        "spikes": len(spikes),
        "fired": len(latencies),
        "missed": missed,
        "fired_twice": fired_twice + twice,
        "fired_without_spike": unexpected,
        "trigger_p50_ms": percentile(latencies, 0.50) * 1000,
        "trigger_p99_ms": percentile(latencies, 0.99) * 1000,
        "http_p50_ms": percentile(http_times, 0.50) * 1000,
        "http_p99_ms": percentile(http_times, 0.99) * 1000,
        "batch_errors": errors,
        "quotes_per_second": achieved,
        "histograms": {r: [(b if b != float("inf") else "+Inf", c) for b, c in h] for r, h in histograms.items()},
    }


def main() -> None:
    if len(sys.argv) == 2 and sys.argv[1] == "run":
        fresh_postgres(DATABASE_URL, REDIS_URL)
        print("RESULT " + json.dumps(run(), default=str))
        return
    print(f"conditional-orders benchmark: {PARENTS} ACTIVE parents over {SYMBOLS} symbols, {RATE:g} quotes/s in batches of "
          f"{BATCH} for {SECONDS:g}s, {SPIKES:g} crossing quotes/s; PostgreSQL + Redis, run_system with Celery workers "
          f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)", flush=True)
    done = subprocess.run([sys.executable, __file__, "run"], cwd=ROOT, env=child_env(), capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        print(f"failed\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
        raise SystemExit(1)
    r = json.loads(lines[-1][7:])
    print(f"quotes published {r['quotes_per_second']:.1f}/s (offered {RATE:g}/s); evaluated {r['quotes']} "
          f"({r['idle_quotes']} reached nothing); HTTP per batch p50 {r['http_p50_ms']:.1f} ms "
          f"p99 {r['http_p99_ms']:.1f} ms, {r['batch_errors']} batches refused")
    print(f"evaluation per quote: p50 {r['eval_p50_ms']:.3f} ms  p99 {r['eval_p99_ms']:.3f} ms  "
          f"(reaching nothing: p50 {r['eval_idle_p50_ms']:.3f} ms  p99 {r['eval_idle_p99_ms']:.3f} ms; bucket-interpolated)")
    print(f"trigger latency quote sent -> child accepted: p50 {r['trigger_p50_ms']:.1f} ms  p99 {r['trigger_p99_ms']:.1f} ms")
    print(f"crossing quotes {r['spikes']}: fired {r['fired']}, missed {r['missed']}, fired twice {r['fired_twice']}, "
          f"fired without a crossing {r['fired_without_spike']}")
    print(f"target evaluation p99 < 2 ms: {'met' if r['eval_p99_ms'] < 2 else 'NOT met'}; "
          f"target trigger p99 < 50 ms: {'met' if r['trigger_p99_ms'] < 50 else 'NOT met'}; "
          f"exactly once: {'yes' if not r['fired_twice'] and not r['fired_without_spike'] and not r['missed'] else 'NO'}")
    print("histogram (result: [(le seconds, cumulative count)]): " + json.dumps(r["histograms"]))


if __name__ == "__main__":
    main()
