using CircuitBreaker.Http.Tests.TestSupport;

namespace CircuitBreaker.Http.Tests.Circuit;

/// <summary>
/// The machine's clock is the timestamp: a step of the wall clock (NTP, an operator, a VM resumed) neither holds a circuit
/// open past its break nor ends the break early.
/// </summary>
public sealed class WallClockStepTests : IDisposable
{
    private readonly SteppedWallClock _time = new();
    private CircuitStateMachine? _machine;

    public void Dispose() => _machine?.Dispose();

    [Fact]
    public void SteppedWallClock_StepsTheWallClockOnly()
    {
        var timestamp = _time.GetTimestamp();
        var wall = _time.GetUtcNow();

        _time.Step(TimeSpan.FromHours(-1));

        Assert.Equal(timestamp, _time.GetTimestamp());
        Assert.Equal(wall - TimeSpan.FromHours(1), _time.GetUtcNow());
    }

    [Fact]
    public void SteppedWallClock_TimersIgnoreTheStep()
    {
        _time.Step(TimeSpan.FromHours(-1));
        var fired = 0;
        using var timer = _time.CreateTimer(_ => fired++, null, TimeSpan.FromSeconds(10), Timeout.InfiniteTimeSpan);

        _time.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal(0, fired);
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, fired);
    }

    [Fact]
    public void OpenCircuit_WallClockStepsBack_ProbesWhenTheBreakEnds()
    {
        var machine = Open(TimeSpan.FromSeconds(30));

        _time.Step(TimeSpan.FromHours(-1));
        _time.Advance(TimeSpan.FromSeconds(30));

        Assert.Equal(CircuitState.HalfOpen, machine.State);
        Assert.Equal(CircuitPermitKind.Probe, machine.TryAcquire().Kind);
    }

    [Fact]
    public void OpenCircuit_WallClockStepsBack_BreakTimerMovesItToHalfOpen()
    {
        var transitions = new List<CircuitTransition>();
        var machine = Open(TimeSpan.FromSeconds(30), transitions.Add);

        _time.Step(TimeSpan.FromHours(-1));
        _time.Advance(TimeSpan.FromSeconds(30));

        Assert.Equal(CircuitState.HalfOpen, transitions[^1].State);
        Assert.Equal(CircuitState.HalfOpen, machine.GetSnapshot().State);
    }

    [Fact]
    public void OpenCircuit_WallClockStepsForward_StaysOpenForTheRestOfTheBreak()
    {
        var machine = Open(TimeSpan.FromSeconds(30));
        _time.Advance(TimeSpan.FromSeconds(10));

        _time.Step(TimeSpan.FromHours(1));

        Assert.Equal(CircuitState.Open, machine.State);
        Assert.Equal(CircuitState.Open, machine.GetSnapshot().State);
        var permit = machine.TryAcquire();
        Assert.Equal(CircuitState.Open, permit.RejectedState);
        Assert.Equal(TimeSpan.FromSeconds(20), permit.RetryAfter);
    }

    [Fact]
    public void FleetHold_WallClockStepsBack_EndsWhenTheProbeWaitEnds()
    {
        var machine = Create(new CircuitBreakerOptions { FailureThreshold = 1 });
        machine.OpenForFleet(TimeSpan.FromSeconds(10), probeWait: TimeSpan.FromSeconds(5));

        _time.Step(TimeSpan.FromHours(-1));
        _time.Advance(TimeSpan.FromSeconds(10));
        var held = machine.TryAcquire();
        _time.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal((CircuitState.HalfOpen, TimeSpan.FromSeconds(5)), (held.RejectedState, held.RetryAfter!.Value));
        Assert.Equal(CircuitPermitKind.Probe, machine.TryAcquire().Kind);
    }

    private CircuitStateMachine Open(TimeSpan breakDuration, Action<CircuitTransition>? onTransition = null)
    {
        var machine = Create(new CircuitBreakerOptions { FailureThreshold = 1, BreakDuration = breakDuration }, onTransition);
        machine.OnFailure(machine.TryAcquire());
        Assert.Equal(CircuitState.Open, machine.State);
        return machine;
    }

    private CircuitStateMachine Create(CircuitBreakerOptions options, Action<CircuitTransition>? onTransition = null) =>
        _machine = new CircuitStateMachine(BreakerSettings.From(options), _time, onTransition);
}
