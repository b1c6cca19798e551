"""A local stand-in for tushare pro's HTTP API, so the tushare source can be tried and tested without a token.

Speaks the real protocol (POST JSON on any path, the vendor's answer envelope and error codes)
and serves the demo source's deterministic bars (`daily`) and factors (`adj_factor`). Run it by hand with
`python -m batchsync.sources.tushare_fake --port 8321 --token demo --per-minute 120`.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from batchsync.sources.base import BAR_COLUMNS
from batchsync.sources.demo import demo_day_csv

BAD_TOKEN_CODE = 40101
BAD_TOKEN_MESSAGE = "您的token不对，请确认。"  # noqa: RUF001 - the vendor's exact words
LIMITED_CODE = 40203
PER_MINUTE_MESSAGE = (
    "抱歉，您每分钟最多访问该接口{limit}次，权限的具体详情访问：https://tushare.pro/document/1?doc_id=108。"  # noqa: RUF001
)
NO_PERMISSION_MESSAGE = "没有接口访问权限"
DEFAULT_ROW_CAP = 6000
_NUMERIC = BAR_COLUMNS[2:]
ADJ_FACTOR_FIELDS = ("ts_code", "trade_date", "adj_factor")
FIELDS_OF_API = {"daily": BAR_COLUMNS, "adj_factor": ADJ_FACTOR_FIELDS}
# Each stock goes ex-rights every EX_RIGHTS_EVERY_DAYS calendar days (on a day set by its code),
# when its factor grows EX_RIGHTS_STEP-fold; before the first event after FACTOR_EPOCH it is 1.
FACTOR_EPOCH = dt.date(2020, 1, 1)
EX_RIGHTS_EVERY_DAYS = 30
EX_RIGHTS_STEP = 1.05


@dataclass
class FakeTushareConfig:
    """How the fake server behaves; tests change it while the server runs."""

    token: str = "demo"
    per_minute: int = 500
    window_seconds: float = 60.0  # the limit's window; per_minute is scaled to it (tests use seconds)
    row_cap: int = DEFAULT_ROW_CAP
    published_until: dt.date | None = None  # days after it answer no rows (not published yet)
    factors_published_until: dt.date | None = None  # the same for adj_factor alone
    no_permission: bool = False
    delay_seconds: float = 0.0
    fail_next: int = 0  # that many calls answer HTTP 500


@dataclass
class FakeTushareCounters:
    """What the server answered, for tests."""

    calls: int = 0
    throttled: int = 0
    failed: int = 0
    answered: int = 0
    call_times: list[float] = field(default_factory=list)


@dataclass
class _Limiter:
    """A sliding window of call times per token."""

    calls: dict[str, collections.deque[float]] = field(default_factory=dict)

    def admit(self, token: str, limit: int, window: float, now: float) -> bool:
        recent = self.calls.setdefault(token, collections.deque())
        while recent and now - recent[0] >= window:
            recent.popleft()
        if len(recent) >= limit:
            return False
        recent.append(now)
        return True


def day_items(day: dt.date) -> list[list[Any]]:
    """The demo bars of `day` as tushare `daily` items (numbers as numbers, trade_date YYYYMMDD)."""
    lines = demo_day_csv(day).decode().splitlines()[1:]
    items: list[list[Any]] = []
    for line in lines:
        values = line.split(",")
        items.append([values[0], values[1], *(float(value) for value in values[2:])])
    return items


def adj_factor_on(ts_code: str, day: dt.date) -> float:
    """The fake's deterministic factor of `ts_code` on `day` (6 places, like a NUMERIC(20, 6))."""
    shift = int(ts_code[:6]) % EX_RIGHTS_EVERY_DAYS
    events = (day.toordinal() - FACTOR_EPOCH.toordinal() + shift) // EX_RIGHTS_EVERY_DAYS
    return round(EX_RIGHTS_STEP**events, 6)


def factor_items(day: dt.date, bars: list[list[Any]]) -> list[list[Any]]:
    """The `adj_factor` items of `day`: one per stock with a bar that day."""
    return [[bar[0], bar[1], adj_factor_on(str(bar[0]), day)] for bar in bars]


class FakeTushareServer(ThreadingHTTPServer):
    """The HTTP server; `config` and `counters` are shared with its handler threads."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], config: FakeTushareConfig) -> None:
        super().__init__(address, _Handler)
        self.config = config
        self.counters = FakeTushareCounters()
        self.lock = threading.Lock()
        self.limiter = _Limiter()
        self._days: dict[dt.date, list[list[Any]]] = {}

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/dataapi"

    def items_of(self, day: dt.date) -> list[list[Any]]:
        with self.lock:
            if day not in self._days:
                self._days[day] = day_items(day)
            return self._days[day]

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        """The HTTP status and JSON answer for one request body."""
        config = self.config
        with self.lock:
            self.counters.calls += 1
            self.counters.call_times.append(time.monotonic())
            if config.fail_next > 0:
                config.fail_next -= 1
                self.counters.failed += 1
                return 500, None
        if config.delay_seconds:
            time.sleep(config.delay_seconds)
        token = str(body.get("token") or "")
        if token != config.token:
            return 200, _envelope(BAD_TOKEN_CODE, BAD_TOKEN_MESSAGE)
        api_name = str(body.get("api_name") or "")
        if config.no_permission or api_name not in FIELDS_OF_API:
            return 200, _envelope(LIMITED_CODE, NO_PERMISSION_MESSAGE)
        limit = max(1, round(config.per_minute * config.window_seconds / 60.0))
        with self.lock:
            admitted = self.limiter.admit(token, limit, config.window_seconds, time.monotonic())
            if not admitted:
                self.counters.throttled += 1
        if not admitted:
            return 200, _envelope(LIMITED_CODE, PER_MINUTE_MESSAGE.format(limit=config.per_minute))
        params = body.get("params") or {}
        try:
            day = dt.datetime.strptime(str(params.get("trade_date", "")), "%Y%m%d").date()
            offset = int(params.get("offset") or 0)
            cap = min(int(params.get("limit") or config.row_cap), config.row_cap)
        except ValueError:
            return 200, _envelope(40001, "参数错误")
        published = config.published_until is None or day <= config.published_until
        items = self.items_of(day) if published and day.weekday() < 5 else []
        columns = FIELDS_OF_API[api_name]
        if api_name == "adj_factor":
            factors_out = config.factors_published_until is None or day <= config.factors_published_until
            items = factor_items(day, items) if factors_out else []
        fields = [name for name in str(body.get("fields") or ",".join(columns)).split(",") if name]
        unknown = [name for name in fields if name not in columns]
        if unknown:
            return 200, _envelope(40001, f"字段错误: {','.join(unknown)}")
        positions = [columns.index(name) for name in fields]
        page = items[offset : offset + cap]
        with self.lock:
            self.counters.answered += 1
        data = {
            "fields": fields,
            "items": [[row[position] for position in positions] for row in page],
            "has_more": offset + cap < len(items),
        }
        return 200, _envelope(0, "", data)


def _envelope(code: int, msg: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"request_id": uuid.uuid4().hex, "code": code, "msg": msg, "data": data}


class _Handler(BaseHTTPRequestHandler):
    server: FakeTushareServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            body = {}
        status, answer = self.server.answer(body if isinstance(body, dict) else {})
        encoded = json.dumps(answer, ensure_ascii=False).encode() if answer is not None else b"error"
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if answer is not None else "text/plain")
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests make thousands of calls."""


def fake_tushare_start(config: FakeTushareConfig | None = None, *, port: int = 0) -> FakeTushareServer:
    """Start a fake server on 127.0.0.1:`port` (0: a free one) in a daemon thread; `shutdown()` stops it."""
    server = FakeTushareServer(("127.0.0.1", port), config or FakeTushareConfig())
    threading.Thread(target=server.serve_forever, name="fake-tushare", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(description="A fake tushare pro API serving demo bars.")
    parser.add_argument("--port", type=int, default=8321)
    parser.add_argument("--token", default="demo")
    parser.add_argument("--per-minute", type=int, default=500)
    parser.add_argument("--row-cap", type=int, default=DEFAULT_ROW_CAP)
    parser.add_argument("--published-until", type=dt.date.fromisoformat, default=None)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args(argv)
    config = FakeTushareConfig(
        token=args.token,
        per_minute=args.per_minute,
        row_cap=args.row_cap,
        published_until=args.published_until,
        delay_seconds=args.delay,
    )
    server = FakeTushareServer(("127.0.0.1", args.port), config)
    print(f"fake tushare at {server.url} (token {args.token}, {args.per_minute} calls/min)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
