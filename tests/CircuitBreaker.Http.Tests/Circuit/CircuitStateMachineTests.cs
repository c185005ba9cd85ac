using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.Time.Testing;

namespace CircuitBreaker.Http.Tests.Circuit;

public sealed class CircuitStateMachineTests : IDisposable
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly List<CircuitTransition> _transitions = [];
    private CircuitStateMachine? _machine;

    public void Dispose() => _machine?.Dispose();

    [Fact]
    public void NewCircuit_IsClosedAndGrantsClosedPermits()
    {
        var machine = Create();

        var permit = machine.TryAcquire();

        Assert.Equal(CircuitState.Closed, machine.State);
        Assert.Equal(CircuitPermitKind.Closed, permit.Kind);
    }

    [Fact]
    public void Failures_BelowThreshold_KeepCircuitClosed()
    {
        var machine = Create(new CircuitBreakerOptions { FailureThreshold = 3 });

        Fail(machine, 2);

        Assert.Equal(CircuitState.Closed, machine.State);
        Assert.Equal(2, machine.GetSnapshot().ConsecutiveFailures);
    }

    [Fact]
    public void ConsecutiveFailures_AtThreshold_OpenCircuit()
    {
        var machine = Create(new CircuitBreakerOptions { FailureThreshold = 3, BreakDuration = TimeSpan.FromSeconds(30) });

        Fail(machine, 3);

        Assert.Equal(CircuitState.Open, machine.State);
        var transition = Assert.Single(_transitions);
        Assert.Equal((CircuitState.Closed, CircuitState.Open), (transition.PreviousState, transition.State));
        Assert.Equal(TimeSpan.FromSeconds(30), transition.BreakDuration);
    }

    [Fact]
    public void Success_ResetsConsecutiveFailures()
    {
        var machine = Create(new CircuitBreakerOptions { FailureThreshold = 3 });

        Fail(machine, 2);
        Succeed(machine);
        Fail(machine, 2);

        Assert.Equal(CircuitState.Closed, machine.State);
        Assert.Equal(2, machine.GetSnapshot().ConsecutiveFailures);
    }

    [Fact]
    public void ThresholdZero_NeverOpensOnConsecutiveFailures()
    {
        var machine = Create(new CircuitBreakerOptions { FailureThreshold = 0 });

        Fail(machine, 100);

        Assert.Equal(CircuitState.Closed, machine.State);
    }

    [Fact]
    public void OpenCircuit_RejectsWithRetryAfter()
    {
        var machine = Create(new CircuitBreakerOptions { FailureThreshold = 1, BreakDuration = TimeSpan.FromSeconds(30) });
        Fail(machine, 1);
        _time.Advance(TimeSpan.FromSeconds(10));

        var permit = machine.TryAcquire();

        Assert.False(permit.IsGranted);
        Assert.Equal(CircuitState.Open, permit.RejectedState);
        Assert.Equal(TimeSpan.FromSeconds(20), permit.RetryAfter);
    }

    [Fact]
    public void OpenCircuit_ResetAndOpenedAgain_RejectsWithTheNewBreak()
    {
        var machine = Create(new CircuitBreakerOptions { FailureThreshold = 1, BreakDuration = TimeSpan.FromSeconds(30) });
        Fail(machine, 1);
        machine.Reset();
        _time.Advance(TimeSpan.FromSeconds(25));
        machine.OpenForFleet(TimeSpan.FromSeconds(10), probeWait: TimeSpan.FromSeconds(5));

        // The first break would have ended 5 s from now; the second ends in 10 s and is the one reported and enforced.
        Assert.Equal(TimeSpan.FromSeconds(10), machine.TryAcquire().RetryAfter);
        _time.Advance(TimeSpan.FromSeconds(6));
        Assert.Equal(TimeSpan.FromSeconds(4), machine.TryAcquire().RetryAfter);
    }

    [Fact]
    public void OpenCircuit_FleetAsksForALongerBreak_RejectsUntilTheLaterRetryTime()
    {
        var machine = Create(new CircuitBreakerOptions { FailureThreshold = 1, BreakDuration = TimeSpan.FromSeconds(10) });
        Fail(machine, 1);

        machine.OpenForFleet(TimeSpan.FromSeconds(60), probeWait: TimeSpan.FromSeconds(5));
        _time.Advance(TimeSpan.FromSeconds(15));

        var permit = machine.TryAcquire();
        Assert.Equal(CircuitState.Open, permit.RejectedState);
        Assert.Equal(TimeSpan.FromSeconds(45), permit.RetryAfter);
    }

    [Fact]
    public void FailureRatio_OpensOnceMinimumThroughputReachedWithinWindow()
    {
        var machine = Create(new CircuitBreakerOptions
        {
            FailureThreshold = 0,
            FailureRatio = 0.5,
            MinimumThroughput = 4,
            SamplingDuration = TimeSpan.FromSeconds(10),
        });

        Succeed(machine);
        Fail(machine, 1);
        Succeed(machine);
        Assert.Equal(CircuitState.Closed, machine.State); // 1 of 3: below throughput

        Fail(machine, 1); // 2 of 4 = 0.5

        Assert.Equal(CircuitState.Open, machine.State);
    }

    [Fact]
    public void FailureRatio_BelowRatio_StaysClosed()
    {
        var machine = Create(new CircuitBreakerOptions { FailureThreshold = 0, FailureRatio = 0.5, MinimumThroughput = 4 });

        Succeed(machine);
        Succeed(machine);
        Succeed(machine);
        Fail(machine, 1);

        Assert.Equal(CircuitState.Closed, machine.State);
        Assert.Equal(0.25, machine.GetSnapshot().FailureRatio);
    }

    [Fact]
    public void FailureRatio_OldSamplesLeaveTheWindow()
    {
        var machine = Create(new CircuitBreakerOptions
        {
            FailureThreshold = 0,
            FailureRatio = 0.5,
            MinimumThroughput = 4,
            SamplingDuration = TimeSpan.FromSeconds(10),
        });

        Fail(machine, 3);
        _time.Advance(TimeSpan.FromSeconds(11));
        Fail(machine, 1);

        Assert.Equal(CircuitState.Closed, machine.State); // only 1 sample left in the window
        Assert.Equal(1.0, machine.GetSnapshot().FailureRatio);
    }

    [Fact]
    public void ElapsedBreak_IsReportedHalfOpenBeforeAnyCall()
    {
        var machine = Create(new CircuitBreakerOptions { FailureThreshold = 1, BreakDuration = TimeSpan.FromSeconds(5) });
        Fail(machine, 1);

        _time.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal(CircuitState.HalfOpen, machine.State);
        Assert.Equal(CircuitState.HalfOpen, machine.GetSnapshot().State);
    }

    [Fact]
    public void ElapsedBreak_BreakTimerRaisesHalfOpenTransition()
    {
        var machine = Create(new CircuitBreakerOptions { FailureThreshold = 1, BreakDuration = TimeSpan.FromSeconds(5) });
        Fail(machine, 1);

        _time.Advance(TimeSpan.FromSeconds(4));
        Assert.Single(_transitions);
        _time.Advance(TimeSpan.FromSeconds(1));

        Assert.Equal(2, _transitions.Count);
        Assert.Equal((CircuitState.Open, CircuitState.HalfOpen), (_transitions[1].PreviousState, _transitions[1].State));
    }

    [Fact]
    public void HalfOpen_GrantsOnlyHalfOpenProbesAtOnce()
    {
        var machine = OpenAndElapse(new CircuitBreakerOptions { FailureThreshold = 1, HalfOpenProbes = 2 });

        var first = machine.TryAcquire();
        var second = machine.TryAcquire();
        var third = machine.TryAcquire();

        Assert.Equal(CircuitPermitKind.Probe, first.Kind);
        Assert.Equal(CircuitPermitKind.Probe, second.Kind);
        Assert.False(third.IsGranted);
        Assert.Equal(CircuitState.HalfOpen, third.RejectedState);
        Assert.Null(third.RetryAfter);
    }

    [Fact]
    public void HalfOpen_ClosesAfterHalfOpenProbesSuccessesInARow()
    {
        var machine = OpenAndElapse(new CircuitBreakerOptions { FailureThreshold = 1, HalfOpenProbes = 2 });

        var first = machine.TryAcquire();
        machine.OnSuccess(first);
        Assert.Equal(CircuitState.HalfOpen, machine.State);
        var second = machine.TryAcquire();
        machine.OnSuccess(second);

        Assert.Equal(CircuitState.Closed, machine.State);
        Assert.Equal(CircuitState.Closed, _transitions[^1].State);
    }

    [Fact]
    public void HalfOpen_FailedProbeReopens()
    {
        var machine = OpenAndElapse(new CircuitBreakerOptions { FailureThreshold = 1, BreakDuration = TimeSpan.FromSeconds(5) });

        machine.OnFailure(machine.TryAcquire());

        Assert.Equal(CircuitState.Open, machine.State);
        Assert.Equal((CircuitState.HalfOpen, CircuitState.Open), (_transitions[^1].PreviousState, _transitions[^1].State));
    }

    [Fact]
    public void HalfOpen_CancelledProbeFreesItsSlotWithoutChangingState()
    {
        var machine = OpenAndElapse(new CircuitBreakerOptions { FailureThreshold = 1, HalfOpenProbes = 1 });
        var probe = machine.TryAcquire();
        Assert.False(machine.TryAcquire().IsGranted);

        machine.Release(probe);

        Assert.Equal(CircuitState.HalfOpen, machine.State);
        Assert.Equal(CircuitPermitKind.Probe, machine.TryAcquire().Kind);
    }

    [Fact]
    public void FailedProbes_GrowBreakByMultiplier_CappedAtMax()
    {
        var machine = Create(new CircuitBreakerOptions
        {
            FailureThreshold = 1,
            BreakDuration = TimeSpan.FromSeconds(10),
            BreakDurationMultiplier = 2,
            MaxBreakDuration = TimeSpan.FromSeconds(30),
        });
        Fail(machine, 1);

        var breaks = new List<TimeSpan?> { _transitions[^1].BreakDuration };
        for (var i = 0; i < 3; i++)
        {
            _time.Advance(breaks[^1]!.Value);
            machine.OnFailure(machine.TryAcquire());
            breaks.Add(_transitions[^1].BreakDuration);
        }

        Assert.Equal([TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(20), TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(30)], breaks);
    }

    [Fact]
    public void BreakDurationAboveMax_IsUsedAsIs()
    {
        var machine = Create(new CircuitBreakerOptions
        {
            FailureThreshold = 1,
            BreakDuration = TimeSpan.FromMinutes(10),
            BreakDurationMultiplier = 2,
            MaxBreakDuration = TimeSpan.FromMinutes(5),
        });
        Fail(machine, 1);
        _time.Advance(TimeSpan.FromMinutes(10));

        machine.OnFailure(machine.TryAcquire());

        Assert.Equal(TimeSpan.FromMinutes(10), _transitions[^1].BreakDuration);
    }

    [Fact]
    public void CircuitThatFailsSoonAfterClosing_KeepsBackingOff()
    {
        var machine = Create(new CircuitBreakerOptions { FailureThreshold = 1, BreakDuration = TimeSpan.FromSeconds(10), BreakDurationMultiplier = 2 });
        Fail(machine, 1);
        _time.Advance(TimeSpan.FromSeconds(10));
        machine.OnSuccess(machine.TryAcquire()); // closes

        _time.Advance(TimeSpan.FromSeconds(9)); // closed for less than the last break
        Fail(machine, 1);

        Assert.Equal(TimeSpan.FromSeconds(20), _transitions[^1].BreakDuration);
    }

    [Fact]
    public void CircuitThatStayedClosedForAFullBreak_StartsAgainFromBreakDuration()
    {
        var machine = Create(new CircuitBreakerOptions { FailureThreshold = 1, BreakDuration = TimeSpan.FromSeconds(10), BreakDurationMultiplier = 2 });
        Fail(machine, 1);
        _time.Advance(TimeSpan.FromSeconds(10));
        machine.OnFailure(machine.TryAcquire()); // 20 s
        _time.Advance(TimeSpan.FromSeconds(20));
        machine.OnSuccess(machine.TryAcquire()); // closes

        _time.Advance(TimeSpan.FromSeconds(20)); // a full last break
        Fail(machine, 1);

        Assert.Equal(TimeSpan.FromSeconds(10), _transitions[^1].BreakDuration);
    }

    [Fact]
    public void OutcomeOfCallAdmittedBeforeOpening_IsIgnored()
    {
        var machine = Create(new CircuitBreakerOptions { FailureThreshold = 1 });
        var lateCall = machine.TryAcquire();
        Fail(machine, 1); // opens
        var transitions = _transitions.Count;

        machine.OnFailure(lateCall);
        machine.OnSuccess(lateCall);

        Assert.Equal(CircuitState.Open, machine.State);
        Assert.Equal(transitions, _transitions.Count);
    }

    [Fact]
    public void ProbeOutcomeFromAnEarlierHalfOpen_IsIgnored()
    {
        var machine = OpenAndElapse(new CircuitBreakerOptions { FailureThreshold = 1, HalfOpenProbes = 1, AttemptTimeout = null });
        var staleProbe = machine.TryAcquire();
        machine.Isolate();
        machine.Reset();
        Fail(machine, 1);
        _time.Advance(TimeSpan.FromMinutes(5));
        var probe = machine.TryAcquire();

        machine.OnFailure(staleProbe);

        Assert.Equal(CircuitState.HalfOpen, machine.State);
        machine.OnSuccess(probe);
        Assert.Equal(CircuitState.Closed, machine.State);
    }

    [Fact]
    public void Isolate_RejectsUntilReset()
    {
        var machine = Create();

        machine.Isolate();
        _time.Advance(TimeSpan.FromHours(1));

        var permit = machine.TryAcquire();
        Assert.False(permit.IsGranted);
        Assert.Equal(CircuitState.Isolated, permit.RejectedState);
        Assert.Null(permit.RetryAfter);
        Assert.Equal(CircuitState.Isolated, machine.State);

        machine.Reset();

        Assert.Equal(CircuitState.Closed, machine.State);
        Assert.True(machine.TryAcquire().IsGranted);
        Assert.Equal(
            [(CircuitState.Closed, CircuitState.Isolated), (CircuitState.Isolated, CircuitState.Closed)],
            _transitions.Select(t => (t.PreviousState, t.State)));
    }

    [Fact]
    public void Reset_ForgetsBreakGrowth()
    {
        var machine = Create(new CircuitBreakerOptions { FailureThreshold = 1, BreakDuration = TimeSpan.FromSeconds(10), BreakDurationMultiplier = 3 });
        Fail(machine, 1);
        _time.Advance(TimeSpan.FromSeconds(10));
        machine.OnFailure(machine.TryAcquire()); // 30 s

        machine.Reset();
        Fail(machine, 1);

        Assert.Equal(TimeSpan.FromSeconds(10), _transitions[^1].BreakDuration);
    }

    [Fact]
    public void UpdateSettings_KeepsStateAndCountersAndAppliesNewThreshold()
    {
        var machine = Create(new CircuitBreakerOptions { FailureThreshold = 5 });
        Fail(machine, 2);

        machine.UpdateSettings(BreakerSettings.From(new CircuitBreakerOptions { FailureThreshold = 3 }));
        Assert.Equal(2, machine.GetSnapshot().ConsecutiveFailures);
        Fail(machine, 1);

        Assert.Equal(CircuitState.Open, machine.State);
    }

    [Fact]
    public void UpdateSettings_NewSamplingDuration_KeepsTheSamplesStillInTheWindow()
    {
        var ratio = new CircuitBreakerOptions { FailureThreshold = 0, FailureRatio = 0.5, MinimumThroughput = 4, SamplingDuration = TimeSpan.FromSeconds(30) };
        var machine = Create(ratio);
        Fail(machine, 2);
        _time.Advance(TimeSpan.FromSeconds(20));
        Succeed(machine);

        // Longer: every sample stays, and the next failure makes the fourth call of a window failing at 3/4.
        ratio.SamplingDuration = TimeSpan.FromMinutes(1);
        machine.UpdateSettings(BreakerSettings.From(ratio));
        Assert.Equal(2.0 / 3, machine.GetSnapshot().FailureRatio!.Value, 6);

        // Shorter: the failures of 20 s ago fall outside a 10 s window; the success stays.
        ratio.SamplingDuration = TimeSpan.FromSeconds(10);
        machine.UpdateSettings(BreakerSettings.From(ratio));
        Assert.Equal(0, machine.GetSnapshot().FailureRatio);

        ratio.SamplingDuration = TimeSpan.FromMinutes(1);
        machine.UpdateSettings(BreakerSettings.From(ratio));
        Fail(machine, 3);
        Assert.Equal(CircuitState.Open, machine.State);
    }

    [Fact]
    public void UpdateSettings_ShorterLongestBreak_EndsARunningBreakNoLaterThanThatFromNow()
    {
        var mistaken = new CircuitBreakerOptions { FailureThreshold = 1, BreakDuration = TimeSpan.FromDays(1) };
        var machine = Create(mistaken);
        Fail(machine, 1);
        _time.Advance(TimeSpan.FromMinutes(1));

        // Corrected to a 30 s break growing up to 5 min: no break under these settings lasts longer than 5 min.
        machine.UpdateSettings(BreakerSettings.From(new CircuitBreakerOptions { FailureThreshold = 1 }));
        Assert.Equal(_time.GetUtcNow() + TimeSpan.FromMinutes(5), machine.GetSnapshot().RetryAt);
        _time.Advance(TimeSpan.FromMinutes(5));

        Assert.Equal(CircuitState.HalfOpen, _transitions[^1].State); // told by the break timer, not only on the next call
        Assert.Equal(CircuitPermitKind.Probe, machine.TryAcquire().Kind);
    }

    [Fact]
    public void UpdateSettings_LongerOrShorterBreakWithinTheNewLongest_LeavesARunningBreakAsItIs()
    {
        var machine = Create(new CircuitBreakerOptions { FailureThreshold = 1, BreakDuration = TimeSpan.FromSeconds(30) });
        Fail(machine, 1);
        var retryAt = machine.GetSnapshot().RetryAt;

        machine.UpdateSettings(BreakerSettings.From(new CircuitBreakerOptions { FailureThreshold = 1, BreakDuration = TimeSpan.FromHours(1) }));
        Assert.Equal(retryAt, machine.GetSnapshot().RetryAt);
        machine.UpdateSettings(BreakerSettings.From(new CircuitBreakerOptions { FailureThreshold = 1, BreakDuration = TimeSpan.FromSeconds(5) }));
        Assert.Equal(retryAt, machine.GetSnapshot().RetryAt); // 30 s is within the new 5 min cap
    }

    [Fact]
    public void UpdateSettings_ShorterLongestBreak_KeepsTheFleetsProbeWaitAfterTheShortenedBreak()
    {
        var machine = Create(new CircuitBreakerOptions { FailureThreshold = 1 });
        machine.OpenForFleet(TimeSpan.FromHours(1), probeWait: TimeSpan.FromSeconds(20));

        machine.UpdateSettings(BreakerSettings.From(new CircuitBreakerOptions { FailureThreshold = 1, MaxBreakDuration = TimeSpan.FromMinutes(1) }));
        _time.Advance(TimeSpan.FromMinutes(1));
        var held = machine.TryAcquire();
        _time.Advance(TimeSpan.FromSeconds(20));

        Assert.Equal((CircuitState.HalfOpen, TimeSpan.FromSeconds(20)), (held.RejectedState, held.RetryAfter!.Value));
        Assert.Equal(CircuitPermitKind.Probe, machine.TryAcquire().Kind);
    }

    [Fact]
    public void Snapshot_ReportsOpenedAtAndRetryAt()
    {
        var machine = Create(new CircuitBreakerOptions { FailureThreshold = 1, BreakDuration = TimeSpan.FromSeconds(30) });
        var openedAt = _time.GetUtcNow();

        Fail(machine, 1);
        var snapshot = machine.GetSnapshot();

        Assert.Equal(openedAt, snapshot.OpenedAt);
        Assert.Equal(openedAt.AddSeconds(30), snapshot.RetryAt);
        Assert.Null(snapshot.FailureRatio);
    }

    [Fact]
    public void ManyConcurrentCallers_InHalfOpen_NeverGetMoreProbesThanAllowed()
    {
        const int probes = 3;
        var machine = OpenAndElapse(new CircuitBreakerOptions { FailureThreshold = 1, HalfOpenProbes = probes });
        var granted = 0;

        Concurrently.Run(8, _ =>
        {
            for (var i = 0; i < 10_000; i++)
            {
                if (machine.TryAcquire().IsGranted)
                {
                    Interlocked.Increment(ref granted);
                }
            }
        });

        Assert.Equal(probes, granted);
        Assert.Single(_transitions, t => t.State == CircuitState.HalfOpen);
    }

    [Fact]
    public void ManyConcurrentFailures_OpenTheCircuitExactlyOnce()
    {
        var machine = Create(new CircuitBreakerOptions { FailureThreshold = 50 });

        Concurrently.Run(8, _ =>
        {
            for (var i = 0; i < 1_000; i++)
            {
                var permit = machine.TryAcquire();
                if (permit.IsGranted)
                {
                    machine.OnFailure(permit);
                }
            }
        });

        Assert.Equal(CircuitState.Open, machine.State);
        Assert.Single(_transitions);
    }

    [Fact]
    public void ConcurrentProbeOutcomes_CloseExactlyOnce()
    {
        const int probes = 16;
        var machine = OpenAndElapse(new CircuitBreakerOptions { FailureThreshold = 1, HalfOpenProbes = probes });
        var permits = Enumerable.Range(0, probes).Select(_ => machine.TryAcquire()).ToArray();
        Assert.All(permits, p => Assert.Equal(CircuitPermitKind.Probe, p.Kind));

        Concurrently.Run(probes, i => machine.OnSuccess(permits[i]));

        Assert.Equal(CircuitState.Closed, machine.State);
        Assert.Single(_transitions, t => t.State == CircuitState.Closed);
    }

    [Fact]
    public void OpenForFleet_ClosedCircuit_OpensItWithTheFleetsBreak_AndReportsTheFleetAsSource()
    {
        var machine = Create(new CircuitBreakerOptions { BreakDuration = TimeSpan.FromSeconds(30) });

        machine.OpenForFleet(TimeSpan.FromSeconds(10), probeWait: TimeSpan.FromSeconds(5));

        Assert.Equal(CircuitState.Open, machine.State);
        Assert.False(machine.TryAcquire().IsGranted);
        var transition = Assert.Single(_transitions);
        Assert.Equal((CircuitState.Closed, CircuitState.Open, CircuitChangeSource.Fleet), (transition.PreviousState, transition.State, transition.Source));
        Assert.Equal(TimeSpan.FromSeconds(10), transition.BreakDuration);
    }

    /// <remarks>
    /// The fleet's break comes from a message on a Redis channel: another build, another app on the same prefix, or any
    /// client of that Redis can send any number. A local break never outlasts MaxBreakDuration (or a longer
    /// BreakDuration), whatever a Retry-After asks, and neither may one from the channel.
    /// </remarks>
    [Fact]
    public void OpenForFleet_ABreakLongerThanTheLongest_IsBoundedByIt()
    {
        var machine = Create(new CircuitBreakerOptions { BreakDuration = TimeSpan.FromSeconds(30), MaxBreakDuration = TimeSpan.FromMinutes(5) });

        machine.OpenForFleet(TimeSpan.FromDays(3650), probeWait: TimeSpan.FromSeconds(5));

        Assert.Equal(TimeSpan.FromMinutes(5), Assert.Single(_transitions).BreakDuration);
        Assert.Equal(_time.GetUtcNow() + TimeSpan.FromMinutes(5), machine.GetSnapshot().RetryAt);
    }

    [Fact]
    public void OpenForFleet_ANegativeBreak_OpensWithABreakAlreadyOver()
    {
        var machine = Create();

        machine.OpenForFleet(TimeSpan.FromSeconds(-10), probeWait: TimeSpan.FromSeconds(5));

        Assert.Equal(TimeSpan.Zero, _transitions.Single(t => t.State == CircuitState.Open).BreakDuration);
        Assert.Equal(CircuitState.HalfOpen, machine.GetSnapshot().State);
        Assert.False(machine.TryAcquire().IsGranted); // held for the fleet's prober
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(CircuitPermitKind.Probe, machine.TryAcquire().Kind);
    }

    /// <remarks>The system clock's timers take at most 2^32 - 2 ms (49.7 days): a longer break must not reach them.</remarks>
    [Fact]
    public void OpenForFleet_OnTheSystemClock_ABreakOfAYear_OpensTheCircuitAndTellsSo()
    {
        var transitions = new List<CircuitTransition>();
        using var machine = new CircuitStateMachine(BreakerSettings.From(new CircuitBreakerOptions()), TimeProvider.System, transitions.Add);

        machine.OpenForFleet(TimeSpan.FromDays(365), probeWait: TimeSpan.FromSeconds(5));

        Assert.Equal(CircuitState.Open, Assert.Single(transitions).State);
        Assert.InRange(machine.GetSnapshot().RetryAt!.Value, DateTimeOffset.UtcNow, DateTimeOffset.UtcNow + TimeSpan.FromMinutes(5));
    }

    [Fact]
    public void OpenForFleet_AfterTheBreak_HoldsTheProbeUntilGranted()
    {
        var machine = Create(new CircuitBreakerOptions { BreakDuration = TimeSpan.FromSeconds(30) });
        machine.OpenForFleet(TimeSpan.FromSeconds(10), probeWait: TimeSpan.FromSeconds(5));

        _time.Advance(TimeSpan.FromSeconds(10));
        var held = machine.TryAcquire();
        var granted = machine.GrantFleetProbe();
        var probe = machine.TryAcquire();

        Assert.Equal(CircuitState.HalfOpen, machine.State);
        Assert.False(held.IsGranted);
        Assert.Equal(TimeSpan.FromSeconds(5), held.RetryAfter);
        Assert.True(granted);
        Assert.Equal(CircuitPermitKind.Probe, probe.Kind);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void OpenForFleet_TheLongestProbeWait_HoldsTheProbeWithAPositiveRetryAfter(bool systemClock)
    {
        // ICircuitFleetControl is public: a coordinator of its own may well wait "for ever" with TimeSpan.MaxValue.
        using var machine = new CircuitStateMachine(BreakerSettings.From(new CircuitBreakerOptions()), systemClock ? TimeProvider.System : _time);
        machine.OpenForFleet(TimeSpan.Zero, probeWait: TimeSpan.MaxValue);

        var held = machine.TryAcquire();

        Assert.False(held.IsGranted);
        Assert.InRange(held.RetryAfter!.Value, TimeSpan.FromDays(364), TimeSpan.FromDays(365));
    }

    [Fact]
    public void OpenForFleet_WhenTheHoldRunsOut_ProbesAlone()
    {
        var machine = Create();
        machine.OpenForFleet(TimeSpan.FromSeconds(10), probeWait: TimeSpan.FromSeconds(5));

        _time.Advance(TimeSpan.FromSeconds(14));
        var stillHeld = machine.TryAcquire();
        _time.Advance(TimeSpan.FromSeconds(1));
        var probe = machine.TryAcquire();

        Assert.False(stillHeld.IsGranted);
        Assert.Equal(CircuitPermitKind.Probe, probe.Kind); // a crashed fleet prober cannot keep this circuit open
    }

    [Fact]
    public void OpenForFleet_AlreadyOpenCircuit_KeepsItOpenWithoutANewTransition_AndTakesTheLaterRetryTime()
    {
        var machine = Create(new CircuitBreakerOptions { FailureThreshold = 1, BreakDuration = TimeSpan.FromSeconds(10) });
        Fail(machine, 1);

        machine.OpenForFleet(TimeSpan.FromSeconds(20), probeWait: TimeSpan.FromSeconds(5));
        _time.Advance(TimeSpan.FromSeconds(10));

        Assert.Single(_transitions);
        Assert.Equal(CircuitState.Open, machine.State);
        Assert.Equal(_time.GetUtcNow() + TimeSpan.FromSeconds(10), machine.GetSnapshot().RetryAt);
    }

    [Fact]
    public void CloseForFleet_HeldCircuit_ClosesIt_ButLeavesACircuitThatOpenedOnItsOwn()
    {
        var held = Create();
        held.OpenForFleet(TimeSpan.FromSeconds(10), probeWait: TimeSpan.FromSeconds(5));
        using var own = new CircuitStateMachine(
            BreakerSettings.From(new CircuitBreakerOptions { FailureThreshold = 1 }), _time, _ => { });
        Fail(own, 1);

        Assert.True(held.CloseForFleet());
        Assert.False(own.CloseForFleet());

        Assert.Equal(CircuitState.Closed, held.State);
        Assert.Equal(CircuitChangeSource.Fleet, _transitions[^1].Source);
        Assert.Equal(CircuitState.Open, own.State);
    }

    [Fact]
    public void CloseForFleet_OfACircuitStillOpen_CountsAsARecovery()
    {
        var machine = Create();
        machine.OpenForFleet(TimeSpan.FromSeconds(10), probeWait: TimeSpan.FromSeconds(5));
        _time.Advance(TimeSpan.FromSeconds(3));

        Assert.True(machine.CloseForFleet());

        Assert.Equal(TimeSpan.Zero, machine.SinceRecovery);
    }

    [Fact]
    public void ReleaseFleetHold_LetsTheCircuitProbeByItselfAfterTheBreak()
    {
        var machine = Create();
        machine.OpenForFleet(TimeSpan.FromSeconds(10), probeWait: TimeSpan.FromSeconds(60));

        machine.ReleaseFleetHold();
        _time.Advance(TimeSpan.FromSeconds(10));

        Assert.Equal(CircuitPermitKind.Probe, machine.TryAcquire().Kind);
    }

    [Fact]
    public void OpenForFleet_IsolatedCircuit_StaysIsolated()
    {
        var machine = Create();
        machine.Isolate();

        machine.OpenForFleet(TimeSpan.FromSeconds(10), probeWait: TimeSpan.FromSeconds(5));
        machine.CloseForFleet();

        Assert.Equal(CircuitState.Isolated, machine.State);
        Assert.Equal(CircuitChangeSource.Operator, Assert.Single(_transitions).Source);
    }

    [Fact]
    public void OwnProbeFailure_AfterAFleetGrant_ReopensLocally_WithoutAHold()
    {
        var machine = Create(new CircuitBreakerOptions { BreakDuration = TimeSpan.FromSeconds(10) });
        machine.OpenForFleet(TimeSpan.FromSeconds(10), probeWait: TimeSpan.FromSeconds(60));
        _time.Advance(TimeSpan.FromSeconds(10));
        machine.GrantFleetProbe();

        machine.OnFailure(machine.TryAcquire());
        _time.Advance(TimeSpan.FromSeconds(30));

        Assert.Equal(CircuitChangeSource.Local, _transitions[^1].Source);
        Assert.Equal(CircuitPermitKind.Probe, machine.TryAcquire().Kind);
    }

    // The registry's circuits have no listener, so they only create their cold state (break times, probes, fleet
    // hold, timer) at the first failure; the machines of the other tests have one from the start.
    [Fact]
    public void WithoutAListener_BeforeAnyFailure_FleetCallsAndSnapshotSeeNothingToUndo()
    {
        using var machine = new CircuitStateMachine(BreakerSettings.From(new CircuitBreakerOptions { FailureThreshold = 2 }), _time);

        machine.ReleaseFleetHold();
        Assert.False(machine.GrantFleetProbe());
        Assert.False(machine.CloseForFleet());
        Assert.Null(machine.SinceRecovery);
        var snapshot = machine.GetSnapshot();
        Assert.Equal(CircuitState.Closed, snapshot.State);
        Assert.Null(snapshot.OpenedAt);
        Assert.Null(snapshot.RetryAt);
        Assert.Equal(0, snapshot.FailedProbes);
        Assert.Equal(CircuitPermitKind.Closed, machine.TryAcquire().Kind);
    }

    [Fact]
    public void WithoutAListener_FailuresOpenTheCircuit_AndItRecoversAndBacksOffAsUsual()
    {
        using var machine = new CircuitStateMachine(
            BreakerSettings.From(new CircuitBreakerOptions { FailureThreshold = 2, BreakDuration = TimeSpan.FromSeconds(10), BreakDurationMultiplier = 2 }),
            _time);
        var openedAt = _time.GetUtcNow();

        Fail(machine, 2);
        var whileOpen = machine.GetSnapshot();
        _time.Advance(TimeSpan.FromSeconds(10));
        machine.OnFailure(machine.TryAcquire()); // the probe fails: the break doubles

        Assert.Equal((CircuitState.Open, openedAt, openedAt + TimeSpan.FromSeconds(10)), (whileOpen.State, whileOpen.OpenedAt, whileOpen.RetryAt));
        Assert.Equal(_time.GetUtcNow() + TimeSpan.FromSeconds(20), machine.GetSnapshot().RetryAt);
        Assert.Equal(1, machine.GetSnapshot().FailedProbes);

        _time.Advance(TimeSpan.FromSeconds(20));
        machine.OnSuccess(machine.TryAcquire());

        Assert.Equal(CircuitState.Closed, machine.State);
        Assert.Equal(TimeSpan.Zero, machine.SinceRecovery);
    }

    [Fact]
    public void WithoutAListener_Disposed_BeforeAnyFailure_IgnoresTheFleet()
    {
        var machine = new CircuitStateMachine(BreakerSettings.From(new CircuitBreakerOptions()), _time);

        machine.Dispose();
        machine.OpenForFleet(TimeSpan.FromSeconds(10), probeWait: TimeSpan.FromSeconds(5));

        Assert.Equal(CircuitState.Closed, machine.State);
        Assert.True(machine.TryAcquire().IsGranted);
    }

    [Fact]
    public async Task BreakTimer_RunsOutsideTheExecutionContextOfTheCallThatOpenedTheCircuit()
    {
        // The real timer: FakeTimeProvider runs callbacks on the thread that advances it, in that thread's context.
        var request = new AsyncLocal<string?>();
        var halfOpen = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var machine = new CircuitStateMachine(
            BreakerSettings.From(new CircuitBreakerOptions { FailureThreshold = 1, BreakDuration = TimeSpan.FromMilliseconds(50), BreakDurationJitter = 0 }),
            TimeProvider.System,
            t =>
            {
                if (t.State == CircuitState.HalfOpen)
                {
                    halfOpen.TrySetResult(request.Value);
                }
            });

        // The failing call's own context (its Activity, logging scopes, HttpContext) is where the circuit opens.
        await Task.Run(() =>
        {
            request.Value = "the request that failed";
            Fail(machine, 1);
        });

        // Otherwise the half-open transition is logged and raised under a request that ended long ago, which the
        // circuit's timer keeps alive for as long as the circuit lives.
        Assert.Null(await halfOpen.Task.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    private CircuitStateMachine Create(CircuitBreakerOptions? options = null)
    {
        _machine = new CircuitStateMachine(
            BreakerSettings.From(options ?? new CircuitBreakerOptions()),
            _time,
            t =>
            {
                lock (_transitions)
                {
                    _transitions.Add(t);
                }
            });
        return _machine;
    }

    private CircuitStateMachine OpenAndElapse(CircuitBreakerOptions options)
    {
        var machine = Create(options);
        Fail(machine, options.FailureThreshold);
        Assert.Equal(CircuitState.Open, machine.State);
        _time.Advance(options.BreakDuration);
        return machine;
    }

    private static void Fail(CircuitStateMachine machine, int times)
    {
        for (var i = 0; i < times; i++)
        {
            var permit = machine.TryAcquire();
            Assert.True(permit.IsGranted);
            machine.OnFailure(permit);
        }
    }

    private static void Succeed(CircuitStateMachine machine) => machine.OnSuccess(machine.TryAcquire());
}
