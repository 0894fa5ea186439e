"""The clock guard: wall-clock steps against a monotonic anchor (pure, sample by sample)."""

from __future__ import annotations

import datetime as dt

from gridctl.daemon.clock import ClockEvent, ClockGuard

T0 = dt.datetime(2026, 8, 3, 2, 0, tzinfo=dt.UTC)
DAY_S = 86400.0


def feed(guard: ClockGuard, samples: list[tuple[float, float]]):
    """Feed (monotonic [s], wall offset from T0 + monotonic [s]) pairs; return the results."""
    return [guard.observe(T0 + dt.timedelta(seconds=m + off), m) for m, off in samples]


def at(mono_s: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=mono_s)


def test_agreeing_clock_is_trusted_and_follows_slew():
    guard = ClockGuard()
    # 0.5 ms fast per 10 s sample (50 ppm, NTP slewing): never a jump, wall time trusted.
    seen = feed(guard, [(10.0 * i, 0.0005 * i) for i in range(5000)])
    assert all(s.wall_ok and s.event is ClockEvent.NONE for s in seen)
    assert seen[-1].now_utc == seen[-1].wall_utc


def test_forward_jump_for_a_minute_is_held_to_the_estimate_then_recovers():
    guard = ClockGuard(report_every_s=30.0)
    seen = feed(guard, [(0.0, 0.0), (10.0, 0.0)]
                + [(20.0 + 10 * i, 2 * DAY_S) for i in range(7)]  # +2 days for 60 s
                + [(90.0, 0.0), (100.0, 0.0)])
    assert [s.event for s in seen[2:9]] == [ClockEvent.JUMPED, ClockEvent.NONE, ClockEvent.NONE,
                                           ClockEvent.STILL_OFF, ClockEvent.NONE, ClockEvent.NONE,
                                           ClockEvent.STILL_OFF]
    assert all(not s.wall_ok and s.offset_s == 2 * DAY_S for s in seen[2:9])
    assert [s.now_utc for s in seen[2:9]] == [at(20.0 + 10 * i) for i in range(7)]
    assert seen[8].off_for_s == 60.0
    assert seen[9].event is ClockEvent.RECOVERED and seen[9].wall_ok
    assert seen[9].now_utc == at(90.0) and seen[10].event is ClockEvent.NONE


def test_small_step_within_tolerance_is_no_jump():
    guard = ClockGuard(tolerance_s=2.0)
    seen = feed(guard, [(0.0, 0.0), (10.0, 1.5), (20.0, 0.0)])
    assert all(s.wall_ok for s in seen)


def test_backward_step_is_held_and_trusted_time_never_goes_back():
    guard = ClockGuard(accept_after_s=600.0)
    # NTP steps the wall clock back a minute and it stays there: a correction.
    seen = feed(guard, [(0.0, 0.0), (10.0, 0.0)] + [(20.0 + 10 * i, -60.0) for i in range(80)])
    trusted = [s.now_utc for s in seen]
    assert trusted == sorted(trusted)  # no negative interval, ever
    assert seen[2].event is ClockEvent.JUMPED and seen[2].now_utc == at(20.0)
    accepted = [i for i, s in enumerate(seen) if s.event is ClockEvent.ACCEPTED]
    assert accepted == [62]  # 600 s after the step (mono 20 s -> 620 s)
    # Accepted: the trusted time holds until the corrected wall clock passes it, then follows.
    assert seen[62].now_utc == seen[61].now_utc == at(610.0)
    assert seen[-1].now_utc == seen[-1].wall_utc == at(810.0 - 60.0)
    assert all(s.wall_ok for s in seen[62:])


def test_large_backward_jump_then_back_is_invisible_to_settlement():
    guard = ClockGuard()
    seen = feed(guard, [(0.0, 0.0), (10.0, -2 * DAY_S), (20.0, -2 * DAY_S), (30.0, 0.0)])
    assert [s.now_utc for s in seen] == [at(0.0), at(10.0), at(20.0), at(30.0)]
    assert [s.event for s in seen[1:]] == [ClockEvent.JUMPED, ClockEvent.NONE, ClockEvent.RECOVERED]


def test_wrong_rtc_fixed_by_ntp_is_accepted_after_it_keeps_its_own_pace():
    guard = ClockGuard(accept_after_s=600.0)
    # Booted an hour behind; NTP steps +1 h at 30 s and the clock then runs steadily.
    seen = feed(guard, [(0.0, -3600.0), (10.0, -3600.0), (20.0, -3600.0)]
                + [(30.0 + 10 * i, 0.0) for i in range(70)])
    assert seen[3].event is ClockEvent.JUMPED and seen[3].now_utc == at(30.0 - 3600.0)
    accepted = [i for i, s in enumerate(seen) if s.event is ClockEvent.ACCEPTED]
    assert accepted == [63]  # mono 630 s: 600 s after the step
    assert seen[63].now_utc == at(630.0) and seen[63].offset_s == 3600.0
    assert all(s.wall_ok and s.now_utc == s.wall_utc for s in seen[63:])


def test_a_clock_that_keeps_stepping_is_never_accepted():
    guard = ClockGuard(accept_after_s=600.0)
    # Steps again every 5 minutes: never 10 minutes of its own pace, never trusted.
    seen = feed(guard, [(0.0, 0.0)] + [(10.0 * i, 3600.0 * (1 + i // 30)) for i in range(1, 200)])
    assert not any(s.event is ClockEvent.ACCEPTED for s in seen)
    assert all(s.now_utc == at(10.0 * i) for i, s in enumerate(seen))
