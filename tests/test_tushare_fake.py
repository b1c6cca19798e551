"""The fake tushare server speaks the vendor's protocol: envelope, paging, token, limits, modes."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from batchsync.sources.base import BAR_COLUMNS
from batchsync.sources.demo import demo_day_csv
from batchsync.sources.tushare_fake import (
    BAD_TOKEN_MESSAGE,
    NO_PERMISSION_MESSAGE,
    FakeTushareConfig,
    FakeTushareServer,
    fake_tushare_start,
)

DAY = dt.date(2025, 9, 1)


@pytest.fixture
def fake() -> Iterator[FakeTushareServer]:
    server = fake_tushare_start(FakeTushareConfig(token="t0k", per_minute=6000))
    yield server
    server.shutdown()
    server.server_close()


def post(server: FakeTushareServer, **params: Any) -> dict[str, Any]:
    token = params.pop("token", "t0k")
    body = {"api_name": "daily", "token": token, "params": params, "fields": ",".join(BAR_COLUMNS)}
    request = urllib.request.Request(server.url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        decoded: dict[str, Any] = json.loads(answer.read())
        return decoded


def test_a_day_comes_whole_in_pages_with_has_more(fake: FakeTushareServer) -> None:
    first = post(fake, trade_date="20250901")
    assert first["code"] == 0 and first["data"]["fields"] == list(BAR_COLUMNS)
    assert len(first["data"]["items"]) == 5500 and first["data"]["has_more"] is False
    fake.config.row_cap = 2000
    pages = [post(fake, trade_date="20250901", offset=offset, limit=3000) for offset in (0, 2000, 4000)]
    assert [len(page["data"]["items"]) for page in pages] == [2000, 2000, 1500]
    assert [page["data"]["has_more"] for page in pages] == [True, True, False]
    rows = [item for page in pages for item in page["data"]["items"]]
    csv_lines = demo_day_csv(DAY).decode().splitlines()[1:]
    assert rows[0][:2] == csv_lines[0].split(",")[:2] == ["000001.SZ", "20250901"]
    assert len(rows) == len(csv_lines)


def test_a_bad_token_is_40101(fake: FakeTushareServer) -> None:
    answer = post(fake, trade_date="20250901", token="wrong")
    assert (answer["code"], answer["msg"]) == (40101, BAD_TOKEN_MESSAGE)


def test_the_per_minute_limit_answers_40203_with_its_text(fake: FakeTushareServer) -> None:
    fake.config.per_minute = 2
    codes = [post(fake, trade_date="20250901")["code"] for _ in range(3)]
    assert codes == [0, 0, 40203]
    answer = post(fake, trade_date="20250901")
    assert "每分钟最多访问该接口2次" in answer["msg"]
    assert fake.counters.throttled == 2 and fake.counters.calls == 4


def test_missing_permission_and_unpublished_days(fake: FakeTushareServer) -> None:
    fake.config.published_until = DAY
    assert post(fake, trade_date="20250902")["data"]["items"] == []
    fake.config.no_permission = True
    answer = post(fake, trade_date="20250901")
    assert (answer["code"], answer["msg"]) == (40203, NO_PERMISSION_MESSAGE)


def test_failing_mode_answers_http_500(fake: FakeTushareServer) -> None:
    fake.config.fail_next = 1
    with pytest.raises(urllib.error.HTTPError) as raised:
        post(fake, trade_date="20250901")
    assert raised.value.code == 500
    assert post(fake, trade_date="20250901")["code"] == 0
    assert fake.counters.failed == 1
