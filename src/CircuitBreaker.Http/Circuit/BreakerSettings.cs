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
    int HalfOpenProbes)
{
    public static BreakerSettings From(CircuitBreakerOptions options) => new(
        options.FailureThreshold,
        options.FailureRatio,
        options.MinimumThroughput,
        options.SamplingDuration,
        options.BreakDuration,
        options.BreakDurationMultiplier,
        options.MaxBreakDuration,
        options.HalfOpenProbes);

    public bool SamplesRatio => FailureRatio > 0;

    /// <summary>
    /// The break that follows <paramref name="previous"/>: it grows by the multiplier, and the cap limits
    /// growth only, so a <see cref="BreakDuration"/> above <see cref="MaxBreakDuration"/> is used as is.
    /// </summary>
    public TimeSpan NextBreak(TimeSpan previous)
    {
        var cap = MaxBreakDuration > BreakDuration ? MaxBreakDuration : BreakDuration;
        var grown = previous.Ticks * BreakDurationMultiplier;
        var next = grown >= cap.Ticks ? cap : TimeSpan.FromTicks((long)grown);
        return next < BreakDuration ? BreakDuration : next;
    }
}
