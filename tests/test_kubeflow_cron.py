"""Cron as KFP (robfig/cron v1, seconds first) and Vertex (five fields) read it."""
import pytest

from kubeflow import cron
from models.errors import UserError

EVERY_HOUR = frozenset(range(24))


def test_five_fields_parse_on_kfp_but_mean_minute_two_of_every_hour():
    """The trap the server does not report: robfig's Parse takes `0 2 * * *` as sec=0 min=2."""
    schedule = cron.parse("0 2 * * *")
    seconds, minutes, hours = schedule.fields[:3]
    assert (seconds, minutes, hours) == (frozenset({0}), frozenset({2}), EVERY_HOUR)


def test_six_fields_seconds_first_mean_what_they_say():
    seconds, minutes, hours, dom, months, dow = cron.parse("0 0 2 * * *").fields
    assert (seconds, minutes, hours) == (frozenset({0}), frozenset({0}), frozenset({2}))
    assert len(dom) == 31 and len(months) == 12 and len(dow) == 7


@pytest.mark.parametrize("expr, fragment", [
    ("0 0 2 * *", None), ("0 60 * * * *", "above maximum (59)"), ("0 0 2 * * 8", "above maximum (6)"),
    ("* * * * * * *", "Expected 5 to 6 fields"), ("0 0 5-2 * * *", "beyond end of range"),
    ("0 0 */0 * * *", "positive number"), ("0 0 x * * *", "Failed to parse int"), ("@fortnightly", "Unrecognized"),
])
def test_robfig_errors(expr, fragment):
    if fragment is None:
        cron.parse(expr)  # 5 fields are legal for robfig's Parse
        return
    with pytest.raises(cron.CronError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        cron.parse(expr)


def test_names_steps_and_question_mark():
    _, _, _, _, months, dow = cron.parse("0 0 9 ? jan-mar mon-fri").fields
    assert months == frozenset({1, 2, 3}) and dow == frozenset({1, 2, 3, 4, 5})
    assert cron.parse("*/15 * * * * *").fields[0] == frozenset({0, 15, 30, 45})
    assert cron.parse("5/20 * * * * *").fields[0] == frozenset({5, 25, 45})


def test_kfp_refuses_five_fields_and_explains_the_fix():
    with pytest.raises(UserError) as caught:
        cron.kfp_cron("0 2 * * *")
    message = str(caught.value)
    assert "six fields, seconds first" in message
    assert "minute 2" in message and "every hour" in message
    assert "'0 0 2 * * *'" in message


@pytest.mark.parametrize("expr", ["0 0 2 * * *", "0 30 6 * * mon-fri", "@daily", "@every 6h", "  0 0 2 * * *  "])
def test_kfp_accepts_six_fields_and_descriptors(expr):
    assert cron.kfp_cron(expr) == " ".join(expr.split())


def test_kfp_reports_robfig_errors_in_a_sentence():
    with pytest.raises(UserError, match="not valid for KFP: End of range"):
        cron.kfp_cron("0 0 25 * * *")


@pytest.mark.parametrize("expr", ["0 2 * * *", "TZ=Europe/Berlin 0 2 * * 1-5", "CRON_TZ=Etc/UTC 30 4 1 * *", "@daily"])
def test_vertex_accepts_five_fields(expr):
    assert cron.vertex_cron(expr) == expr


def test_vertex_refuses_the_kfp_form():
    with pytest.raises(UserError, match="five fields"):
        cron.vertex_cron("0 0 2 * * *")


@pytest.mark.parametrize("value, ok", [(0, False), (1, True), (10, True), (11, False)])
def test_kfp_max_concurrency_bounds(value, ok):
    if ok:
        assert cron.kfp_max_concurrency(value) == value
    else:
        with pytest.raises(UserError, match="between 1 and 10"):
            cron.kfp_max_concurrency(value)
