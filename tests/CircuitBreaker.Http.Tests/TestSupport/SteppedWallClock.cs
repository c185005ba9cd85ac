using Microsoft.Extensions.Time.Testing;

namespace CircuitBreaker.Http.Tests.TestSupport;

/// <summary>
/// A <see cref="FakeTimeProvider"/> whose wall clock can be stepped (<see cref="Step"/>), as NTP or an operator steps a
/// machine's clock, while its timestamp and its timers, monotonic as the system's are, go on undisturbed.
/// </summary>
internal sealed class SteppedWallClock : FakeTimeProvider
{
    private TimeSpan _offset;

    public SteppedWallClock()
        : base(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero))
    {
    }

    /// <summary>Moves the wall clock by <paramref name="delta"/> (back when negative); timestamps and timers do not move.</summary>
    public void Step(TimeSpan delta) => _offset += delta;

    public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + _offset;

    // FakeTimeProvider's timestamp is its wall clock's ticks, read through GetUtcNow: read without the step.
    public override long GetTimestamp() => base.GetUtcNow().UtcTicks;
}
