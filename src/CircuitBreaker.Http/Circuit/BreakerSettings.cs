namespace CircuitBreaker.Http;

/// <summary>
/// The validated, immutable subset of the options that drives the state machine.
/// A new instance replaces the old one on reload, so a circuit never sees half-applied options.
/// </summary>
internal sealed record BreakerSettings(
    int FailureThreshold,
    double FailureRatio,
    int MinimumThroughput,
    TimeSpan SamplingDuration,
    TimeSpan BreakDuration,
    double BreakDurationMultiplier,
    TimeSpan MaxBreakDuration,
    int HalfOpenProbes,
    double BreakDurationJitter = 0)
{
    public static BreakerSettings From(CircuitBreakerOptions options) => new(
        options.FailureThreshold,
        options.FailureRatio,
        options.MinimumThroughput,
        options.SamplingDuration,
        options.BreakDuration,
        options.BreakDurationMultiplier,
        options.MaxBreakDuration,
        options.HalfOpenProbes,
        options.BreakDurationJitter);

    public bool SamplesRatio => FailureRatio > 0;

    /// <summary>
    /// The longest break: <see cref="MaxBreakDuration"/>, or <see cref="BreakDuration"/> when that is longer, as a
    /// <see cref="BreakDuration"/> above the cap is used as is.
    /// </summary>
    public TimeSpan LongestBreak => MaxBreakDuration > BreakDuration ? MaxBreakDuration : BreakDuration;

    /// <summary>
    /// The break a server asked for with <c>Retry-After</c>, bounded by <see cref="LongestBreak"/>: bounded by
    /// <see cref="MaxBreakDuration"/> alone, a server asking for longer than a <see cref="BreakDuration"/> above it
    /// would get a shorter break than one that asked for nothing.
    /// </summary>
    public TimeSpan RequestedBreak(TimeSpan requested) => requested < LongestBreak ? requested : LongestBreak;

    /// <summary>
    /// <paramref name="duration"/> spread by up to ±<see cref="BreakDurationJitter"/> of itself, so that many
    /// instances whose circuits opened together do not all probe a recovering service at the same moment.
    /// </summary>
    public TimeSpan Jittered(TimeSpan duration) =>
        BreakDurationJitter <= 0
            ? duration
            : TimeSpan.FromTicks(Math.Max(1, (long)(duration.Ticks * (1 + (BreakDurationJitter * ((2 * Random.Shared.NextDouble()) - 1))))));

    /// <summary>
    /// The break that follows <paramref name="previous"/>: it grows by the multiplier, and the cap limits
    /// growth only, so a <see cref="BreakDuration"/> above <see cref="MaxBreakDuration"/> is used as is.
    /// </summary>
    public TimeSpan NextBreak(TimeSpan previous)
    {
        var cap = LongestBreak;
        var grown = previous.Ticks * BreakDurationMultiplier;
        var next = grown >= cap.Ticks ? cap : TimeSpan.FromTicks((long)grown);
        return next < BreakDuration ? BreakDuration : next;
    }
}
