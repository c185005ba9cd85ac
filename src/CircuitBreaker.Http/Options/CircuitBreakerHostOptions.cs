namespace CircuitBreaker.Http;

/// <summary>
/// An override of <see cref="CircuitBreakerOptions"/> for one downstream host. Each property left
/// <see langword="null"/> keeps the client's value; see <see cref="CircuitBreakerOptions"/> for the meaning of each.
/// </summary>
public class CircuitBreakerHostOptions
{
    /// <summary>Gets or sets the override of <see cref="CircuitBreakerOptions.FailureThreshold"/>.</summary>
    /// <value>The default value is <see langword="null"/> (the client's value).</value>
    public int? FailureThreshold { get; set; }

    /// <summary>Gets or sets the override of <see cref="CircuitBreakerOptions.FailureRatio"/>.</summary>
    /// <value>The default value is <see langword="null"/> (the client's value).</value>
    public double? FailureRatio { get; set; }

    /// <summary>Gets or sets the override of <see cref="CircuitBreakerOptions.MinimumThroughput"/>.</summary>
    /// <value>The default value is <see langword="null"/> (the client's value).</value>
    public int? MinimumThroughput { get; set; }

    /// <summary>Gets or sets the override of <see cref="CircuitBreakerOptions.SamplingDuration"/>.</summary>
    /// <value>The default value is <see langword="null"/> (the client's value).</value>
    public TimeSpan? SamplingDuration { get; set; }

    /// <summary>Gets or sets the override of <see cref="CircuitBreakerOptions.BreakDuration"/>.</summary>
    /// <value>The default value is <see langword="null"/> (the client's value).</value>
    public TimeSpan? BreakDuration { get; set; }

    /// <summary>Gets or sets the override of <see cref="CircuitBreakerOptions.BreakDurationMultiplier"/>.</summary>
    /// <value>The default value is <see langword="null"/> (the client's value).</value>
    public double? BreakDurationMultiplier { get; set; }

    /// <summary>Gets or sets the override of <see cref="CircuitBreakerOptions.MaxBreakDuration"/>.</summary>
    /// <value>The default value is <see langword="null"/> (the client's value).</value>
    public TimeSpan? MaxBreakDuration { get; set; }

    /// <summary>Gets or sets the override of <see cref="CircuitBreakerOptions.BreakDurationJitter"/>.</summary>
    /// <value>The default value is <see langword="null"/> (the client's value).</value>
    public double? BreakDurationJitter { get; set; }

    /// <summary>Gets or sets the override of <see cref="CircuitBreakerOptions.HonorRetryAfter"/>.</summary>
    /// <value>The default value is <see langword="null"/> (the client's value).</value>
    public bool? HonorRetryAfter { get; set; }

    /// <summary>Gets or sets the override of <see cref="CircuitBreakerOptions.HalfOpenProbes"/>.</summary>
    /// <value>The default value is <see langword="null"/> (the client's value).</value>
    public int? HalfOpenProbes { get; set; }

    /// <summary>
    /// Gets or sets the override of <see cref="CircuitBreakerOptions.AttemptTimeout"/>; use
    /// <see cref="Timeout.InfiniteTimeSpan"/> to turn the timeout off for this host.
    /// </summary>
    /// <value>The default value is <see langword="null"/> (the client's value).</value>
    public TimeSpan? AttemptTimeout { get; set; }

    /// <summary>
    /// Gets or sets the override of <see cref="CircuitBreakerOptions.SlowCallDuration"/>; use
    /// <see cref="Timeout.InfiniteTimeSpan"/> to turn slow-call counting off for this host.
    /// </summary>
    /// <value>The default value is <see langword="null"/> (the client's value).</value>
    public TimeSpan? SlowCallDuration { get; set; }

    /// <summary>Gets or sets the override of <see cref="CircuitBreakerOptions.FailureStatusCodes"/>.</summary>
    /// <value>The default value is <see langword="null"/> (the client's value).</value>
    public string? FailureStatusCodes { get; set; }

    /// <summary>Gets or sets the override of <see cref="CircuitBreakerOptions.MaxConcurrentRequests"/>.</summary>
    /// <value>The default value is <see langword="null"/> (the client's value).</value>
    public int? MaxConcurrentRequests { get; set; }

    /// <summary>Gets or sets the override of <see cref="CircuitBreakerOptions.MaxQueuedRequests"/>.</summary>
    /// <value>The default value is <see langword="null"/> (the client's value).</value>
    public int? MaxQueuedRequests { get; set; }

    /// <summary>Gets the overrides of <see cref="CircuitBreakerOptions.Throttle"/>: each value set replaces the client's.</summary>
    /// <value>The default value is an empty override.</value>
    public ThrottleOptions Throttle { get; } = new();

    /// <summary>Gets or sets the override of <see cref="CircuitBreakerOptions.RampUpDuration"/>.</summary>
    /// <value>The default value is <see langword="null"/> (the client's value).</value>
    public TimeSpan? RampUpDuration { get; set; }

    /// <summary>Gets or sets the override of <see cref="CircuitBreakerOptions.Enforce"/>.</summary>
    /// <value>The default value is <see langword="null"/> (the client's value).</value>
    public bool? Enforce { get; set; }

    /// <summary>Gets the overrides of <see cref="CircuitBreakerOptions.Fallback"/>.</summary>
    /// <value>The default value is an empty override (the client's fallback).</value>
    public CircuitBreakerFallbackHostOptions Fallback { get; } = new();
}
