namespace CircuitBreaker.Http;

/// <summary>
/// A monotonic clock for deadlines checked on every call (a circuit's break, an attempt's timeout, a cached answer's
/// age): the injected <see cref="TimeProvider"/>'s timestamp, read as <see cref="Environment.TickCount64"/> when it
/// is the system's.
/// </summary>
/// <remarks>
/// <see cref="Environment.TickCount64"/> is the clock the runtime's timers use, with their resolution (milliseconds,
/// a few of them on Linux), and it costs about a fifth of a precise timestamp or of the wall clock on this kind of
/// virtual machine (5 ns against 25 ns). Deadlines are rounded up to it, so nothing it decides happens early.
/// </remarks>
internal sealed class CoarseClock
{
    // Shared: every circuit reads one, and a field per circuit should cost a reference, not the clock's state.
    private static readonly CoarseClock SystemClock = new(TimeProvider.System);

    private readonly TimeProvider _timeProvider;
    private readonly bool _system;
    private readonly long _unitsPerSecond;
    private readonly long _ticksPerUnit; // when a unit is a whole number of TimeSpan ticks (milliseconds are), else 0

    private CoarseClock(TimeProvider timeProvider)
    {
        _timeProvider = timeProvider;
        _system = ReferenceEquals(timeProvider, TimeProvider.System);
        _unitsPerSecond = _system ? 1000 : timeProvider.TimestampFrequency;
        _ticksPerUnit = TimeSpan.TicksPerSecond % _unitsPerSecond == 0 ? TimeSpan.TicksPerSecond / _unitsPerSecond : 0;
    }

    /// <summary>The clock of <paramref name="timeProvider"/>: one shared instance for the system's.</summary>
    public static CoarseClock For(TimeProvider timeProvider) =>
        ReferenceEquals(timeProvider, TimeProvider.System) ? SystemClock : new CoarseClock(timeProvider);

    /// <summary>The time provider it reads.</summary>
    public TimeProvider TimeProvider => _timeProvider;

    /// <summary>Now, in the clock's units.</summary>
    public long Now => _system ? Environment.TickCount64 : _timeProvider.GetTimestamp();

    /// <summary>A duration in the clock's units, rounded up: a deadline built from it is never earlier than asked.</summary>
    public long ToUnits(TimeSpan duration) => _ticksPerUnit > 0
        ? (duration.Ticks / _ticksPerUnit) + (duration.Ticks % _ticksPerUnit > 0 ? 1 : 0)
        : (long)Math.Ceiling(duration.Ticks * (double)_unitsPerSecond / TimeSpan.TicksPerSecond);

    /// <summary>A number of the clock's units as a duration, rounded up (exact in integers when a unit is whole ticks).</summary>
    public TimeSpan ToTimeSpan(long units) => _ticksPerUnit > 0
        ? TimeSpan.FromTicks(units * _ticksPerUnit)
        : TimeSpan.FromTicks((long)Math.Ceiling(units * (double)TimeSpan.TicksPerSecond / _unitsPerSecond));
}
