namespace CircuitBreaker.Demo.Drill;

/// <summary>The drill's time, from the app's <see cref="TimeProvider"/>: everything shown is relative to the drill's start.</summary>
public sealed class DrillClock(TimeProvider time)
{
    private DateTimeOffset _start = time.GetUtcNow();

    /// <summary>Gets the time the drill started.</summary>
    public DateTimeOffset Start => _start;

    /// <summary>Gets the time since the drill started.</summary>
    public TimeSpan Elapsed => time.GetUtcNow() - _start;

    /// <summary>Gets the current time.</summary>
    public DateTimeOffset Now => time.GetUtcNow();

    /// <summary>Starts counting from now.</summary>
    public void Restart() => _start = time.GetUtcNow();

    /// <summary>The time between the drill's start and <paramref name="at"/>.</summary>
    public TimeSpan ElapsedAt(DateTimeOffset at) => at - _start;
}
