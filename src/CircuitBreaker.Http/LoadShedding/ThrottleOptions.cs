using System.ComponentModel.DataAnnotations;

namespace CircuitBreaker.Http;

/// <summary>
/// A token bucket per host: at most <see cref="PermitsPerSecond"/> calls a second on average, with bursts of up
/// to <see cref="Burst"/> (the API-gateway settings <c>throttling_rate_limit</c> and <c>throttling_burst_limit</c>).
/// Off until <see cref="PermitsPerSecond"/> is set. In a host override, each value left <see langword="null"/>
/// keeps the client's.
/// </summary>
public class ThrottleOptions
{
    /// <summary>Gets or sets the average rate of calls allowed per second.</summary>
    /// <value>The default value is <see langword="null"/> (no throttling).</value>
    [Range(0.001, 1_000_000.0)]
    public double? PermitsPerSecond { get; set; }

    /// <summary>Gets or sets how many calls may go at once after a quiet period.</summary>
    /// <value>The default value is <see langword="null"/>: <see cref="PermitsPerSecond"/> rounded up.</value>
    [Range(1, 1_000_000)]
    public int? Burst { get; set; }
}
