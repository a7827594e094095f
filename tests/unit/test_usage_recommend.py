"""The recommender on recorded histories, with every expected number worked out by hand below.

Shared facts for the arithmetic: one try per day at 02:00 UTC, 600 s wall each (so a runs-per-month of
30 and 5 run-hours per month), half-life 7 days (weight of a try d days older than the newest:
0.5 ** (d / 7); r = 0.5 ** (1/7) = 0.905724), margins 15 %.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from containerkit.spec import RESOURCE_PRESETS
from containerkit.usage.recommend import (
    NOT_ENOUGH_HISTORY,
    Recommendation,
    RecommendOptions,
    check_sizes,
    recommend,
    weighted_percentile,
)
from containerkit.usage.record import MI, UsageRecord

START = datetime(2026, 11, 1, 2, 0)


def preset(name: str) -> tuple[dict[str, str], dict[str, str]]:
    p = RESOURCE_PRESETS[name]
    return (
        {"cpu": p.cpu_request, "memory": p.memory_request},
        {"cpu": p.cpu_limit, "memory": p.memory_limit},
    )


def tries(
    task_id: str,
    peaks_mi: list[float],
    *,
    size: str = "s",
    cpu_s: float | list[float] = 120.0,
    cpu_peak: float = 0.3,
    oom: set[int] = frozenset(),  # type: ignore[assignment]
    throttled: int = 0,
    runtime: str = "docker",
    unavailable: bool = False,
) -> list[UsageRecord]:
    requests, limits = preset(size)
    limit_bytes = RESOURCE_PRESETS[size].memory_limit_bytes
    out = []
    for day, peak in enumerate(peaks_mi):
        killed = day in oom
        cpu = cpu_s[day] if isinstance(cpu_s, list) else cpu_s
        out.append(
            UsageRecord(
                dag_id="dag",
                task_id=task_id,
                run_id=f"scheduled__{day}",
                map_index=-1,
                try_number=1,
                runtime=runtime,
                started_at=(START + timedelta(days=day)).isoformat() + "+00:00",
                ended_at=(START + timedelta(days=day, seconds=600)).isoformat() + "+00:00",
                duration_seconds=600.0,
                requests=requests,
                limits=limits,
                peak_memory_bytes=None if unavailable else int(peak * MI),
                memory_limit_bytes=limit_bytes,
                cpu_seconds=None if unavailable else cpu,
                cpu_peak_cores=None if unavailable else cpu_peak,
                throttled_periods=throttled,
                periods=1000,
                samples=0 if unavailable else 600,
                oom_killed=killed,
                exit_code=137 if killed else 0,
                unavailable="metrics.k8s.io not served" if unavailable else None,
            )
        )
    return out


def only(records: list[UsageRecord], **options: Any) -> Recommendation:
    [answer] = recommend(records, options=RecommendOptions(**options))
    if answer.resources is not None:
        check_sizes(answer)  # the suggestion is a valid containerkit spec
    return answer


def test_steady_task_gets_p90_plus_margin_and_the_preset_with_memory_on_top() -> None:
    # peaks all 300Mi: p90 300Mi x 1.15 = 345Mi; cpu 120 s / 600 s = 0.2 cores x 1.15 = 230m;
    # Docker limit: peak rate 0.3 x 1.15 = 345m. Smallest preset holding 345Mi/230m: s (512Mi/250m);
    # 512Mi is more than 25 % above 345Mi -> memory explicit; 250m is within 2x of 230m -> kept.
    # Over-request: (250m - 230m) x 5 h = 0.1 cpu-h; (512 - 345) Mi / 1024 x 5 h = 0.815 GiB-h.
    answer = only(tries("steady", [300] * 8))
    assert (answer.status, answer.tries, answer.successful, answer.oom_kills) == ("ok", 8, 8, 0)
    assert (answer.memory, answer.cpu_request, answer.cpu_limit) == ("345Mi", "230m", "345m")
    assert answer.memory_bytes == 345 * MI
    assert (answer.preset, answer.resources) == ("s", {"preset": "s", "memory": "345Mi"})
    assert answer.flags == ()
    assert (answer.over_request_cpu_hours, answer.over_request_gib_hours) == (0.1, 0.815)


def test_steady_task_on_kubernetes_gets_no_cpu_limit() -> None:
    answer = only(tries("steady", [300] * 8, runtime="kubernetes"))
    assert (answer.memory, answer.cpu_request, answer.cpu_limit) == ("345Mi", "230m", None)
    assert answer.resources == {"preset": "s", "memory": "345Mi"}


def test_spiky_task_is_never_sized_below_its_successful_spike() -> None:
    # 9 tries at 200Mi and one 700Mi spike on day 4, preset m. The spike weighs r^5 = 0.6095 of a
    # total 6.666, under 10 %, so the weighted p90 is 200Mi (x 1.15 = 230Mi), but an observed
    # successful peak is a floor: 700Mi. cpu 60 s / 600 s = 0.1 x 1.15 = 115m; limit 0.2 x 1.15 = 230m.
    # Preset m (1Gi/500m) holds it; 1Gi > 1.25 x 700Mi and 500m > 2 x 115m -> both explicit.
    # Over-request: (500m - 115m) x 5 = 1.925 cpu-h; (1024 - 700) / 1024 x 5 = 1.582 GiB-h.
    peaks = [200.0] * 10
    peaks[4] = 700.0
    answer = only(tries("spiky", peaks, size="m", cpu_s=60.0, cpu_peak=0.2))
    assert (answer.memory, answer.cpu_request, answer.cpu_limit) == ("700Mi", "115m", "230m")
    assert answer.basis["memory_percentile_bytes"] == 200 * MI
    assert answer.resources == {"preset": "m", "memory": "700Mi", "requests": {"cpu": "115m"}}
    assert "raised to the highest peak 700Mi" in answer.reason
    assert answer.flags == ()
    assert (answer.over_request_cpu_hours, answer.over_request_gib_hours) == (1.925, 1.582)


def test_growing_task_follows_its_recent_peaks() -> None:
    # Peaks 100..350Mi rising daily; cumulative weights from the smallest: 0.6095, 1.2825, 2.0255,
    # 2.8458, 3.7515, 4.7515 (total); 90 % of 4.7515 = 4.2764 -> the newest 350Mi. x 1.15 = 402.5
    # -> 403Mi. cpu 150 s / 600 s = 0.25 x 1.15 = 287.5 -> 288m: above s's 250m, so preset m, with the
    # memory explicit (1Gi > 1.25 x 403Mi) and its 500m request kept (within 2x of 288m).
    # Docker limit 0.5 x 1.15 = 575m. Over-request: cpu none (250m < 288m); (512 - 403) / 1024 x 5.
    answer = only(tries("growing", [100, 150, 200, 250, 300, 350], cpu_s=150.0, cpu_peak=0.5, throttled=50))
    assert (answer.memory, answer.cpu_request, answer.cpu_limit) == ("403Mi", "288m", "575m")
    assert answer.resources == {"preset": "m", "memory": "403Mi"}
    assert answer.flags == ()  # 5 % of periods throttled is under the 10 % flag
    assert (answer.over_request_cpu_hours, answer.over_request_gib_hours) == (0.0, 0.532)


def test_oom_prone_task_is_bumped_past_its_limit() -> None:
    # xs (128Mi), 7 days: OOM kills on days 1 and 4 (peak = limit = 128Mi). The 5 successes peak at
    # 100, 110, 105, 120, 115Mi; weighted p90 = 120Mi x 1.15 = 138Mi, but after an OOM kill the floor
    # is max(128Mi + 100Mi, 1.2 x 128Mi) = 228Mi. cpu 30 s / 600 s = 0.05 x 1.15 = 57.5 -> 58m, limit
    # 0.1 x 1.15 = 115m. Preset s holds 228Mi; 512Mi > 1.25 x 228Mi and 250m > 2 x 58m -> explicit.
    # Over-request: memory none (128Mi < 228Mi); cpu (100m - 58m) x 5 = 0.21 cpu-h.
    answer = only(
        tries("oom", [100, 128, 110, 105, 128, 120, 115], size="xs", cpu_s=30.0, cpu_peak=0.1, oom={1, 4})
    )
    assert (answer.tries, answer.successful, answer.oom_kills) == (7, 5, 2)
    assert (answer.memory, answer.cpu_request, answer.cpu_limit) == ("228Mi", "58m", "115m")
    assert answer.resources == {"preset": "s", "memory": "228Mi", "requests": {"cpu": "58m"}}
    assert answer.flags == ("oom-killed",)
    assert "raised after 2 OOM kill(s) to 228Mi" in answer.reason
    assert (answer.over_request_cpu_hours, answer.over_request_gib_hours) == (0.21, 0.0)


def test_oom_bump_uses_the_larger_of_peak_plus_100mi_and_1_2x_limit() -> None:
    # At a 1Gi limit (preset m) 1.2 x 1Gi = 1228.8Mi beats 1Gi + 100Mi = 1124Mi -> 1229Mi.
    answer = only(tries("oom-big", [600, 600, 1024, 600, 600, 600], size="m", cpu_s=60.0, oom={2}))
    assert answer.memory == "1229Mi"


def test_oversized_task_is_flagged_and_ranked_by_its_monthly_over_request() -> None:
    # Preset l (1 cpu, 4Gi), peaks 500Mi -> 575Mi; cpu 0.1 x 1.15 = 115m, limit 0.15 x 1.15 = 172.5
    # -> 173m. 500Mi < 50 % of 4Gi -> oversized. Preset m holds it (explicit memory and cpu).
    # Over-request: (1 - 0.115) x 5 = 4.425 cpu-h; (4096 - 575) / 1024 x 5 = 17.192 GiB-h.
    oversized = tries("oversized", [500] * 5, size="l", cpu_s=60.0, cpu_peak=0.15)
    answers = recommend([*tries("steady", [300] * 8), *oversized])
    assert [a.task_id for a in answers] == ["oversized", "steady"]  # the bigger waste first
    answer = answers[0]
    assert (answer.memory, answer.cpu_request, answer.cpu_limit) == ("575Mi", "115m", "173m")
    assert answer.flags == ("oversized",)
    assert answer.resources == {"preset": "m", "memory": "575Mi", "requests": {"cpu": "115m"}}
    assert (answer.over_request_cpu_hours, answer.over_request_gib_hours) == (4.425, 17.192)


def test_throttled_task_is_flagged_and_its_docker_cpu_limit_raised() -> None:
    # 30 % of periods throttled at xs's 250m limit: the observed peak (0.25) is the limit itself, so
    # the limit is at least 1.5 x 250m = 375m (> 0.25 x 1.15). cpu request 0.24 x 1.15 = 276m -> m.
    answer = only(tries("busy", [100] * 5, size="xs", cpu_s=144.0, cpu_peak=0.25, throttled=300))
    assert answer.flags == ("throttled",)
    assert (answer.memory, answer.cpu_request, answer.cpu_limit) == ("115Mi", "276m", "375m")
    assert answer.resources == {"preset": "m", "memory": "115Mi"}
    assert (answer.over_request_cpu_hours, answer.over_request_gib_hours) == (0.0, 0.063)


def test_too_short_history_says_so_instead_of_guessing() -> None:
    answer = only(tries("short", [300] * 4))
    assert answer.status == NOT_ENOUGH_HISTORY
    assert answer.reason == "not enough history: 4 successful measured tries, need 5"
    assert (answer.memory, answer.cpu_request, answer.resources, answer.preset) == (None, None, None, None)
    assert answer.tries == 4
    # the minimum is an option
    assert only(tries("short", [300] * 4), min_history=4).memory == "345Mi"


def test_tries_without_metrics_do_not_count_as_history() -> None:
    answer = only(tries("k8s", [300] * 6, runtime="kubernetes", unavailable=True))
    assert answer.status == NOT_ENOUGH_HISTORY
    assert answer.reason == "not enough history: 0 successful measured tries, need 5"


def test_oom_kills_are_flagged_even_without_enough_history() -> None:
    answer = only(tries("new", [100, 128], size="xs", oom={1}))
    assert (answer.status, answer.flags, answer.oom_kills) == (NOT_ENOUGH_HISTORY, ("oom-killed",), 1)


def test_weighted_percentile_returns_an_observed_value() -> None:
    assert weighted_percentile([1, 2, 3, 4], [1, 1, 1, 1], 50) == 2
    assert weighted_percentile([1, 2, 3, 4], [1, 1, 1, 1], 51) == 3
    assert weighted_percentile([1, 10], [9, 1], 90) == 1
    assert weighted_percentile([1, 10], [8.9, 1.1], 90) == 10


@pytest.mark.parametrize(
    ("field", "value"),
    [("memory_percentile", 0), ("cpu_percentile", 101), ("min_history", 0), ("half_life_days", 0)],
)
def test_bad_options_name_the_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"^{field}={value}"):
        RecommendOptions(**{field: value})


def test_presets_are_read_from_the_spec_not_copied(monkeypatch: pytest.MonkeyPatch) -> None:
    from containerkit.spec import resources as spec_resources
    from containerkit.spec.resources import Resources

    # A platform with a 384Mi "s" preset: the steady task (345Mi) now fits it bare.
    changed = dict(spec_resources.RESOURCE_PRESETS)
    changed["s"] = Resources("250m", "500m", "384Mi", "384Mi", "256Mi", "1Gi", pids=512)
    monkeypatch.setattr(spec_resources, "RESOURCE_PRESETS", changed)
    assert only(tries("steady", [300] * 8)).resources == "s"


def test_a_history_shorter_than_a_day_is_not_extrapolated_to_a_schedule() -> None:
    # Five tries 10 minutes apart: counted as 5 runs in one day (30 x 4 = 120 runs/month), 600 s each
    # -> 20 run-hours; (512 - 345) Mi x 20 h = 3.262 GiB-h, (250m - 230m) x 20 h = 0.4 cpu-h.
    history = [
        UsageRecord.from_dict(
            {**r.to_dict(), "started_at": (START + timedelta(minutes=10 * i)).isoformat() + "+00:00"}
        )
        for i, r in enumerate(tries("burst", [300] * 5))
    ]
    answer = only(history)
    assert answer.basis["monthly_hours"] == 20.0
    assert (answer.over_request_cpu_hours, answer.over_request_gib_hours) == (0.4, 3.262)
