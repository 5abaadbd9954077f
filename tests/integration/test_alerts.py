"""Alerts over real HTTP: a loopback webhook receiver and a loopback fake of the Telegram Bot API
(aiohttp servers on 127.0.0.1) receive the real POSTs of the alert channels; a live session against
the exchange emulator raises and journals alerts; a hanging webhook never delays the emergency stop;
a flapping venue is deduplicated."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from engine.services.live import TradingState
from engine.services.live.alerts import Alert, AlertBus, AlertKind, AlertPolicy
from tests.integration.alert_receiver import TOKEN, Receiver
from tests.integration.live_support import make_service, request, wait_until
from venues.alert_channels import TelegramChannel, WebhookChannel
from venues.credentials import Secret, registered_secrets


@pytest.fixture
async def receiver():
    r = await Receiver().start()
    yield r
    await r.stop()


async def test_webhook_receives_the_alert_as_json(receiver):
    bus = AlertBus(channels=[WebhookChannel(receiver.url + "/hook", timeout_seconds=2.0)])
    assert bus.raise_alert(Alert(AlertKind.RISK_BREACH, "max_drawdown 6.1% > 5%", session="s1", venue="binance"))
    await bus.drain(timeout=5)
    assert len(receiver.posts) == 1
    path, body = receiver.posts[0]
    assert body["kind"] == "risk_breach" and body["severity"] == "critical" and body["venue"] == "binance"
    assert body["session"] == "s1" and "max_drawdown 6.1% > 5%" in body["text"]
    assert bus.deliveries[-1].ok and bus.deliveries[-1].channel == "webhook"


async def test_webhook_error_answer_is_reported_not_raised(receiver):
    bus = AlertBus(channels=[WebhookChannel(receiver.url + "/missing", timeout_seconds=2.0)])
    bus.raise_alert(Alert(AlertKind.ORDER_FAILED, "x"))
    await bus.drain(timeout=5)
    d = bus.deliveries[-1]
    assert not d.ok and "HTTP 404" in d.error


async def test_telegram_send_message_reaches_the_bot_api(receiver):
    channel = TelegramChannel(Secret(TOKEN), "-100777", base_url=receiver.url, timeout_seconds=2.0)
    bus = AlertBus(channels=[channel])
    bus.raise_alert(Alert(AlertKind.ESTOP, "HALTED in 0.1 ms: operator emergency stop", session="s2"))
    await bus.drain(timeout=5)
    assert bus.deliveries[-1].ok, bus.deliveries[-1].error
    (path, body), = receiver.posts
    assert path == "sendMessage" and body["chat_id"] == "-100777"
    assert body["text"].startswith("CRITICAL: Emergency stop [session s2]")
    assert TOKEN in registered_secrets(), "the token is redacted from every log record"


async def test_telegram_refusal_never_shows_the_token(receiver):
    receiver.telegram_token = "another-token"
    bus = AlertBus(channels=[TelegramChannel(Secret(TOKEN), "42", base_url=receiver.url, timeout_seconds=2.0)])
    bus.raise_alert(Alert(AlertKind.TX_FAILED, "reverted"))
    await bus.drain(timeout=5)
    d = bus.deliveries[-1]
    assert not d.ok and "401" in d.error and "Unauthorized" in d.error
    assert TOKEN not in d.error


async def test_a_flapping_venue_alerts_once_per_window(receiver):
    now = [1000.0]
    bus = AlertBus(AlertPolicy(dedupe_seconds=60.0), [WebhookChannel(receiver.url + "/hook", 2.0)],
                   clock=lambda: now[0])
    sent = [bus.raise_alert(Alert(AlertKind.VENUE_TIMEOUT, "no answer", session="s", venue="okx"))
            for _ in range(20)]
    assert sent == [True] + [False] * 19
    bus.raise_alert(Alert(AlertKind.VENUE_TIMEOUT, "no answer", session="s", venue="bybit"))  # another key
    now[0] += 61.0
    assert bus.raise_alert(Alert(AlertKind.VENUE_TIMEOUT, "no answer", session="s", venue="okx"))
    await bus.drain(timeout=5)
    okx = [b for _, b in receiver.posts if b["venue"] == "okx"]
    assert [b["suppressed"] for b in okx] == [0, 19]
    assert "+19 similar held back" in okx[1]["text"]
    assert [b["venue"] for _, b in receiver.posts].count("bybit") == 1


async def test_switched_off_kinds_do_not_go_out(receiver):
    bus = AlertBus(AlertPolicy(enabled=frozenset({AlertKind.ESTOP})), [WebhookChannel(receiver.url + "/hook", 2.0)])
    assert not bus.raise_alert(Alert(AlertKind.ORDER_FAILED, "refused"))
    assert bus.raise_alert(Alert(AlertKind.ESTOP, "pressed"))
    await bus.drain(timeout=5)
    assert [b["kind"] for _, b in receiver.posts] == ["emergency_stop"]


# ---- a live session against the exchange emulator ------------------------------------------------
@pytest.fixture
async def service(emulator, cex_store, tmp_path, cache_dir):
    svc = make_service(emulator, cex_store, tmp_path / "journal", cache_dir)
    yield svc
    await svc.close()


def journaled_alerts(service, environment: str = "testnet") -> list[dict]:
    journal = service._journal(environment)
    assert journal.flush(5.0)                            # journal writes are queued off the trading path
    rows = journal.events(5000)
    return [json.loads(detail) | {"venue": venue} for _at, _sid, venue, type_, detail in rows if type_ == "alert"]


async def test_a_hanging_webhook_never_delays_the_emergency_stop(service, receiver):
    receiver.hang = True
    service.alerts.configure(AlertPolicy(send_timeout_seconds=2.0),
                             [WebhookChannel(receiver.url + "/hook", timeout_seconds=30.0)])
    heard: list[Alert] = []
    service.alerts.subscribe(heard.append)
    rid = await service.start(request())
    s = service.session(rid)
    await wait_until(lambda: s.status().trades == 4, timeout=10, what="the live entry")
    # one alert already hangs at the receiver
    service.alerts.raise_alert(Alert(AlertKind.ORDER_FAILED, "warm-up alert", session=rid))
    await wait_until(lambda: len(receiver.posts) == 1, timeout=5, what="the first webhook POST")
    assert service.alerts.pending == 1

    t0 = time.perf_counter()
    handle = service.emergency_stop("test press with a hung webhook")
    press_ms = (time.perf_counter() - t0) * 1000
    assert s.state.state is TradingState.HALTED and handle.halted_ms < 50 and press_ms < 50
    reports = await asyncio.wait_for(handle.done, 3.0)
    assert reports[rid].all_cancelled
    done_s = time.perf_counter() - t0
    assert done_s < 1.5, f"the cancel-all took {done_s:.2f} s behind a hung webhook"
    # the alert of the press was raised (after the halt), its POST still hangs at the receiver
    await wait_until(lambda: any(a.kind is AlertKind.ESTOP for a in heard), timeout=2, what="the e-stop alert")
    await wait_until(lambda: len(receiver.posts) == 2, timeout=2, what="the e-stop webhook POST")
    assert service.alerts.pending == 2
    # ... and is abandoned at the bus's deadline, reported as a failed delivery
    await service.alerts.drain(timeout=5)
    failed = [d for d in service.alerts.deliveries if not d.ok]
    assert len(failed) == 2 and all("no answer within 2 s" in d.error for d in failed)
    assert any(a["kind"] == "emergency_stop" and "hung webhook" in a["message"] for a in journaled_alerts(service))


async def test_a_refused_order_is_alerted_and_journaled(service, receiver):
    service.alerts.configure(channels=[WebhookChannel(receiver.url + "/hook", timeout_seconds=2.0)])
    rid = await service.start(request(capital=5e7))
    s = service.session(rid)
    # the entry's first order is more than the emulator account holds: a pre-trade refusal
    await wait_until(lambda: any(b["kind"] == "order_failed" for _, b in receiver.posts), timeout=10,
                     what="the refused order's alert")
    assert s.state.state is TradingState.REDUCING
    await service.alerts.drain(timeout=5)
    refused = next(b for _, b in receiver.posts if b["kind"] == "order_failed")
    assert refused["session"] == rid and "pre-trade check refused" in refused["message"]
    assert any(a["kind"] == "order_failed" and "pre-trade check refused" in a["message"]
               for a in journaled_alerts(service))


async def test_a_risk_breach_is_alerted_and_journaled(service, receiver):
    service.alerts.configure(channels=[WebhookChannel(receiver.url + "/hook", timeout_seconds=2.0)])
    rid = await service.start(request(risk_overrides={"max_data_age_seconds": 1e-6}))
    s = service.session(rid)
    await wait_until(lambda: any(b["kind"] == "risk_breach" for _, b in receiver.posts), timeout=10,
                     what="the breach alert")
    assert s.state.state is TradingState.HALTED          # eth_basis: breach_action halt
    await service.alerts.drain(timeout=5)
    breach = next(b for _, b in receiver.posts if b["kind"] == "risk_breach")
    assert breach["session"] == rid and "max_data_age_seconds" in breach["message"]
    kinds = [a["kind"] for a in journaled_alerts(service)]
    assert "risk_breach" in kinds and "emergency_stop" in kinds, "the breach halts: both are journaled"


async def test_a_plain_stop_that_cancels_its_orders_raises_no_emergency_stop_alert(service):
    heard: list[Alert] = []
    service.alerts.subscribe(heard.append)
    rid = await service.start(request())
    s = service.session(rid)
    await wait_until(lambda: s.status().trades == 4, timeout=10, what="the live entry")
    await service.stop(rid, cancel_open_orders=True)
    await service.alerts.drain(timeout=2)
    assert s.state.state is TradingState.HALTED and s.last_estop is not None
    assert [a for a in heard if a.kind is AlertKind.ESTOP] == []
