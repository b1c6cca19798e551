"""The data checks (issue 14): each rule at its severity, error days keep their old rows, warnings stored.

Crafted CSV days of three stocks; the day before (EVE) is the previous trading day of DAY.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from batchsync import checks, loader, services, sql
from batchsync.check_models import DayFinding
from batchsync.conf import DATA_CHECK_DEFAULTS, DEFAULT_TS_CODE_PATTERN, data_checks_parse
from batchsync.exceptions import DataCheckFailed, LoadError
from batchsync.models import AdjFactor, DailyBar
from batchsync.sources.base import BAR_COLUMNS, CsvPayload

EVE, DAY = dt.date(2025, 9, 30), dt.date(2025, 10, 9)  # trading days, one after the other
CLOSES = {"000001.SZ": "12.30", "600000.SH": "10.00", "600001.SH": "8.50"}
ALL_OFF = dict.fromkeys(DATA_CHECK_DEFAULTS, "off")


def bar(code: str, day: dt.date, close: str, pre_close: str, **values: str) -> dict[str, str]:
    """A row every check passes: open at pre_close, change and pct_chg from them, average price = close."""
    closing, previous = Decimal(close), Decimal(pre_close)
    change = closing - previous
    row = {
        "ts_code": code,
        "trade_date": day.strftime("%Y%m%d"),
        "open": pre_close,
        "high": str(max(closing, previous) + Decimal("0.10")),
        "low": str(min(closing, previous) - Decimal("0.10")),
        "close": close,
        "pre_close": pre_close,
        "change": str(change),
        "pct_chg": str(round(100 * change / previous, 4)),
        "vol": "1000.00",
        "amount": str(Decimal("1000.00") * closing / 10),
    }
    row.update(values)
    return row


def eve_rows() -> list[dict[str, str]]:
    return [bar(code, EVE, close, close) for code, close in CLOSES.items()]


def day_rows(**changes: dict[str, str]) -> list[dict[str, str]]:
    """DAY's rows (close 1% up), with `changes[code]` applied to that stock's row."""
    rows = []
    for code, previous in CLOSES.items():
        close = str(round(Decimal(previous) * Decimal("1.01"), 2))
        rows.append({**bar(code, DAY, close, previous), **changes.get(code, {})})
    return rows


def csv_text(rows: list[dict[str, str]]) -> str:
    return "\n".join([",".join(BAR_COLUMNS), *(",".join(row[c] for c in BAR_COLUMNS) for row in rows)]) + "\n"


def load(day: dt.date, rows: list[dict[str, str]], origin: str = "bars.csv") -> list[checks.CheckResult]:
    """One day as the runner loads it: DELETE + COPY, then the checks, in one transaction."""
    payload = CsvPayload(chunks=[csv_text(rows).encode()], origin=origin)
    with transaction.atomic(), connection.cursor() as cursor:
        loader.replace_day(cursor, day, payload)
        return services.day_checks_enforce(
            day, origin=origin, line_of=lambda code: loader.csv_line_of(payload, code)
        ).results


def stored(day: dt.date) -> list[tuple[Any, ...]]:
    return list(DailyBar.objects.filter(trade_date=day).order_by("ts_code").values_list(*BAR_COLUMNS))


def findings(day: dt.date = DAY) -> dict[str, tuple[str, int]]:
    return {f.check_name: (f.severity, f.count) for f in DayFinding.objects.filter(trade_date=day)}


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    """Messages asserted in English (the project's default language is Chinese)."""
    with translation.override("en"):
        yield


@pytest.fixture
def loaded(db: None) -> list[tuple[Any, ...]]:
    """EVE and DAY loaded clean: no findings; returns DAY's rows."""
    assert load(EVE, eve_rows()) == []
    assert load(DAY, day_rows()) == []
    assert findings() == {}
    return stored(DAY)


# --- error severity: the day fails, its old rows stay ----------------------------------------------

ERRORS = [
    # (check, changes to DAY's rows, extra rows, count, line, column, shown in the message)
    ("ts_code_format", {}, [("600002.SH ", "600002.SH")], 1, 5, "ts_code", "'600002.SH '"),
    ("high_low_range", {"600000.SH": {"high": "10.05"}}, [], 1, 3, "high", "high=10.05"),
    (
        "change_consistency",
        {"600001.SH": {"change": "0.50", "pct_chg": "5.8824"}},
        [],
        1,
        4,
        "change",
        "change=0.50",
    ),
    ("pct_chg_consistency", {"600000.SH": {"pct_chg": "9.0"}}, [], 1, 3, "pct_chg", "pct_chg=9.0"),
]


@pytest.mark.parametrize(
    ("check", "changes", "extra", "count", "line", "column", "shown"), ERRORS, ids=[e[0] for e in ERRORS]
)
def test_an_error_check_fails_the_day_naming_check_rows_and_examples_and_keeps_the_old_rows(
    loaded: list[tuple[Any, ...]],
    check: str,
    changes: dict[str, dict[str, str]],
    extra: list[tuple[str, str]],
    count: int,
    line: int,
    column: str,
    shown: str,
) -> None:
    rows = day_rows(**changes)
    for code, copied in extra:  # a row for `code` with the values of a clean row
        rows.append({**bar(copied, DAY, "10.10", "10.00"), "ts_code": code})
    with pytest.raises(DataCheckFailed) as failed:
        load(DAY, rows, origin="20251009.csv")
    error = failed.value
    assert (error.check, error.count, error.line, error.column) == (check, count, line, column)
    assert error.message.startswith(f"20251009.csv: line {line}, column {column}: data check {check} failed")
    assert f"on {count} row:" in error.message and shown in error.message
    assert error.examples and len(error.examples) <= checks.EXAMPLES_KEPT
    assert stored(DAY) == loaded and findings() == {}


def test_a_spaced_code_beside_the_same_code_is_a_duplicate_and_a_bad_format(loaded: list[Any]) -> None:
    rows = [*day_rows(), {**day_rows()[1], "ts_code": " 600000.SH "}]
    with pytest.raises(DataCheckFailed) as failed:
        load(DAY, rows)
    assert failed.value.check == "duplicate_ts_code"  # errors in name order, the others named after
    assert "(also failed: ts_code_format (1))" in failed.value.message
    assert "' 600000.SH '" in failed.value.message and failed.value.line == 5
    assert stored(DAY) == loaded


def test_up_to_five_examples_in_the_error(loaded: list[Any]) -> None:
    rows = [bar(f"6{n:05d}.SH", DAY, "10.10", "10.00", pct_chg="7.0") for n in range(8)]
    with pytest.raises(DataCheckFailed) as failed:
        load(DAY, rows)
    assert failed.value.count == 8 and len(failed.value.examples) == 5
    assert [e["ts_code"] for e in failed.value.examples] == [f"6{n:05d}.SH" for n in range(5)]
    assert "on 8 rows:" in failed.value.message
    with translation.override("zh-hans"), pytest.raises(DataCheckFailed) as chinese:
        load(DAY, rows)
    assert "数据检查 pct_chg_consistency 未通过" in chinese.value.message and "8 行" in chinese.value.message


# --- what loaded before and must not (constraints: file, line and column from COPY) -----------------

BAD_VALUES = [
    ("close NaN", {"close": "NaN"}, "close", "close is NaN"),
    ("all prices NaN", dict.fromkeys(("open", "high", "low", "close"), "NaN"), None, "is NaN"),
    ("vol NaN", {"vol": "NaN"}, "vol", "vol is NaN"),
    ("negative close", {"close": "-5", "low": "-5.1"}, "close", "close is -5; it must be greater than 0"),
    ("zero open", {"open": "0"}, "open", "open is 0; it must be greater than 0"),
    ("negative amount", {"amount": "-1"}, "amount", "amount is -1; it must not be negative"),
    ("too many decimals", {"close": "10.12345"}, "close", "close is 10.12345: more than 4 decimal places"),
    ("vol decimals", {"vol": "1000.125"}, "vol", "vol is 1000.125: more than 2 decimal places"),
]


@pytest.mark.parametrize(("what", "values", "column", "reason"), BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_nan_non_positive_and_extra_decimals_fail_the_day_with_line_and_column(
    loaded: list[Any], what: str, values: dict[str, str], column: str | None, reason: str
) -> None:
    with override_settings(BATCHSYNC={"CHECKS": ALL_OFF}), pytest.raises(LoadError) as failed:
        load(DAY, day_rows(**{"600001.SH": values}), origin="20251009.csv")
    assert failed.value.line == 4 and (column is None or failed.value.column == column)
    assert failed.value.message.startswith("20251009.csv: line 4, column ")
    assert reason in failed.value.message
    assert stored(DAY) == loaded


def test_trailing_zeros_are_not_extra_decimals_and_checksums_count_the_columns_scale(db: None) -> None:
    load(EVE, eve_rows())
    job_origin = services.DayOrigin("csv", "f", None)  # type: ignore[arg-type]
    with transaction.atomic():
        plain = services.loaded_day_record(EVE, job_origin).checksum
    load(EVE, [{**row, "close": row["close"] + "000", "vol": "1000.0"} for row in eve_rows()])
    with transaction.atomic():
        assert services.loaded_day_record(EVE, job_origin).checksum == plain


# --- warn severity: the day loads, its findings are stored ------------------------------------------


def test_pre_close_not_the_previous_close_warns_unless_the_factor_changed(loaded: list[Any]) -> None:
    changed = {"600001.SH": bar("600001.SH", DAY, "8.60", "8.40")}
    warnings = load(DAY, day_rows(**changed))
    assert [(w.name, w.severity, w.count) for w in warnings] == [("pre_close_continuity", "warn", 1)]
    example = warnings[0].examples[0]
    assert (example["ts_code"], example["pre_close"], example["previous_close"]) == (
        "600001.SH",
        "8.40",
        "8.50",
    )
    assert findings() == {"pre_close_continuity": ("warn", 1)}
    assert stored(DAY) != loaded  # loaded
    # Ex-rights: the adjustment factor changed that day, so pre_close is the adjusted close.
    AdjFactor.objects.create(trade_date=EVE, ts_code="600001.SH", adj_factor=Decimal("1.0"))
    AdjFactor.objects.create(trade_date=DAY, ts_code="600001.SH", adj_factor=Decimal("1.0119"))
    assert load(DAY, day_rows(**changed)) == [] and findings() == {}  # and the old finding is gone


def test_a_half_published_day_warns_on_its_row_count(loaded: list[Any]) -> None:
    warnings = load(DAY, day_rows()[:2])
    assert [(w.name, w.count) for w in warnings] == [("row_count_band", 1)]
    assert warnings[0].examples == [{"rows": 2, "previous_rows": 3, "previous_date": "2025-09-30"}]
    with override_settings(BATCHSYNC={"CHECKS": {"row_count_band": "warn:0.5"}}):
        assert load(DAY, day_rows()[:2]) == []  # within a 50% band


def test_an_average_price_outside_low_high_warns(loaded: list[Any]) -> None:
    warnings = load(DAY, day_rows(**{"000001.SZ": {"amount": "99999.000"}}))
    assert [(w.name, w.count, w.examples[0]["amount"]) for w in warnings] == [
        ("implied_price_range", 1, "99999.000")
    ]


# --- settings: severity, tolerance, pattern ----------------------------------------------------------


def test_severity_and_tolerance_come_from_settings(loaded: list[Any]) -> None:
    bad_high = day_rows(**{"600000.SH": {"high": "10.05"}})
    with override_settings(BATCHSYNC={"CHECKS": "high_low_range=warn"}):
        assert [w.name for w in load(DAY, bad_high)] == ["high_low_range"]
    assert findings() == {"high_low_range": ("warn", 1)}
    with override_settings(BATCHSYNC={"CHECKS": {"high_low_range": "off"}}):
        assert load(DAY, bad_high) == [] and findings() == {}
    with override_settings(BATCHSYNC={"CHECKS": {"pct_chg_consistency": {"tolerance": 10}}}):
        assert load(DAY, day_rows(**{"600000.SH": {"pct_chg": "9.0"}})) == []
    shifted = {"600001.SH": bar("600001.SH", DAY, "8.60", "8.40")}
    with (
        override_settings(BATCHSYNC={"CHECKS": "pre_close_continuity=error"}),
        pytest.raises(DataCheckFailed, match="pre_close_continuity"),
    ):
        load(DAY, day_rows(**shifted))


def test_the_ts_code_pattern_is_a_setting(loaded: list[Any]) -> None:
    hk = [*day_rows(), {**bar("600002.SH", DAY, "10.10", "10.00"), "ts_code": "00700.HK"}]
    with pytest.raises(DataCheckFailed, match="ts_code_format"):
        load(DAY, hk)
    with override_settings(BATCHSYNC={"TS_CODE_PATTERN": r"^([0-9]{6}\.(SH|SZ|BJ)|[0-9]{5}\.HK)$"}):
        assert [warning.name for warning in load(DAY, hk)] == ["row_count_band"]  # 4 rows after 3


def test_check_settings_are_parsed_and_checked() -> None:
    parsed = data_checks_parse("row_count_band=error:0.25, implied_price_range=off")
    assert parsed["row_count_band"] == ("error", 0.25) and parsed["implied_price_range"][0] == "off"
    assert parsed["high_low_range"] == DATA_CHECK_DEFAULTS["high_low_range"]
    assert data_checks_parse({"row_count_band": 0.3})["row_count_band"] == ("warn", 0.3)
    for bad, reason in [
        ("no_such_check=warn", "Unknown data check 'no_such_check'"),
        ("row_count_band=loud", "severity must be error, warn or off"),
        ("row_count_band=warn:x", "the tolerance must be a number"),
        ("row_count_band=warn:-1", "the tolerance must be 0 or more"),
    ]:
        with pytest.raises(ValueError, match=reason):
            data_checks_parse(bad)


# --- data_checks_run: over days loaded before a rule existed; fails nothing ---------------------------


def test_checks_find_nan_and_negative_values_loaded_before_the_constraints(loaded: list[Any]) -> None:
    with connection.cursor() as cursor:  # as the table was before migration 0010
        cursor.execute("ALTER TABLE daily_bar DROP CONSTRAINT daily_bar_close_valid")
        cursor.execute("ALTER TABLE daily_bar DROP CONSTRAINT daily_bar_low_valid")
        cursor.execute("ALTER TABLE daily_bar DROP CONSTRAINT daily_bar_vol_valid")
        cursor.execute(
            "UPDATE daily_bar SET close = -5, low = -6 WHERE trade_date = %s AND ts_code = '600000.SH'", [DAY]
        )
        cursor.execute(
            "UPDATE daily_bar SET vol = 'NaN' WHERE trade_date = %s AND ts_code = '600001.SH'", [DAY]
        )
    found = {r.name: (r.severity, r.count, r.examples[0]["ts_code"]) for r in checks.data_checks_run(DAY)}
    assert found["price_positive"] == ("error", 1, "600000.SH")
    assert found["vol_amount_nonnegative"] == ("error", 1, "600001.SH")
    with override_settings(BATCHSYNC={"CHECKS": ALL_OFF}):
        assert checks.data_checks_run(DAY) == []


# --- the fast path: a clean day costs one bare count; examples only when a check may flag -----------


def checked(day: dt.date) -> tuple[list[checks.CheckResult], list[str]]:
    """The checks' results over `day` and the statements they ran, in a transaction as the loader's."""
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        results = checks.data_checks_run(day, skip=checks.CONSTRAINED_CHECKS)
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('enable_nestloop'), current_setting('enable_mergejoin')")
            planner = cursor.fetchone()
    assert planner == ("on", "on")  # turned off for the count only
    return results, [query["sql"] for query in queries.captured_queries[:-1]]


def test_a_clean_day_runs_no_statement_with_examples(loaded: list[Any]) -> None:
    results, statements = checked(DAY)
    assert results == [] and len(statements) == 2
    # An ex-rights day is clean too: the factor is looked up for the stocks whose pre_close differs.
    AdjFactor.objects.create(trade_date=EVE, ts_code="600001.SH", adj_factor=Decimal("1.0"))
    AdjFactor.objects.create(trade_date=DAY, ts_code="600001.SH", adj_factor=Decimal("1.0119"))
    assert load(DAY, day_rows(**{"600001.SH": bar("600001.SH", DAY, "8.60", "8.40")})) == []
    results, statements = checked(DAY)
    assert results == [] and len(statements) == 2


@pytest.mark.parametrize(
    "changes",
    [
        {"600000.SH": {"high": "10.05"}},
        {"600001.SH": {"change": "0.50", "pct_chg": "5.8824"}},
        {"600000.SH": {"pct_chg": "9.0"}},
        {"600001.SH": bar("600001.SH", DAY, "8.60", "8.40")},
        {"000001.SZ": {"amount": "99999.000"}},
        {"000001.SZ": {"ts_code": "000001.sz"}},
    ],
    ids=["high_low", "change", "pct_chg", "pre_close", "implied_price", "ts_code"],
)
def test_a_day_a_check_flags_gets_the_statement_with_examples(
    loaded: list[Any], changes: dict[str, dict[str, str]]
) -> None:
    with override_settings(BATCHSYNC={"CHECKS": dict.fromkeys(DATA_CHECK_DEFAULTS, "warn")}):
        load(DAY, day_rows(**changes))
        results, statements = checked(DAY)
    assert results and len(statements) == 3 and "json_agg" in statements[2]  # sql.DATA_CHECKS


def test_the_default_ts_code_pattern_without_a_regular_expression_matches_what_it_matches(db: None) -> None:
    wide = "".join(chr(0xFF10 + int(digit)) for digit in "000001")  # full-width digits: not [0-9]
    codes = ["000001.SZ", "600000.SH", "830799.BJ", "000001.sz", " 000001.SZ", "000001.SZ ",
             "00001.SZ", "0000001.SZ", "000001.SS", "000001SZ.", "00000a.SZ", f"{wide}.SZ",
             "000001.SZX", "", ".SH", "00000\u0661.SZ", "0000\u00e9.SZ", "000001.\u015aH", "000001.SH\n",
             "\u00a0000001.SZ", "000001\uff0eSZ"]  # fmt: skip
    with connection.cursor() as cursor:
        for code in codes:
            cursor.execute(
                f"SELECT ({sql.DATA_CHECK_CONDITIONS['ts_code_format']}), %(code)s !~ %(ts_code_pattern)s"
                " FROM (SELECT %(code)s::varchar AS ts_code) bar",
                {"code": code, "ts_code_default": True, "ts_code_pattern": DEFAULT_TS_CODE_PATTERN},
            )
            fast, regex = cursor.fetchone()
            assert fast == regex, code


def test_a_duplicate_code_is_found_with_the_format_check_off(loaded: list[Any]) -> None:
    rows = [*day_rows(), {**day_rows()[1], "ts_code": " 600000.SH "}]
    with (
        override_settings(BATCHSYNC={"CHECKS": {"ts_code_format": "off"}}),
        pytest.raises(DataCheckFailed) as failed,
    ):
        load(DAY, rows)
    assert failed.value.check == "duplicate_ts_code" and "also failed" not in failed.value.message
    assert stored(DAY) == loaded


@pytest.mark.parametrize(
    ("amount", "flagged"),
    [("1207.800", False), ("1207.799", True), ("1264.520", False), ("1264.521", True)],
)
def test_the_average_price_band_is_exact_at_its_edges(loaded: list[Any], amount: str, flagged: bool) -> None:
    # 000001.SZ on DAY: low 12.20, high 12.52, vol 1000.00; tolerance 1%: [12.078, 12.6452].
    warnings = load(DAY, day_rows(**{"000001.SZ": {"amount": amount}}))
    assert [w.name for w in warnings] == (["implied_price_range"] if flagged else [])
