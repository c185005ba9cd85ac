using System.Diagnostics;

namespace CircuitBreaker.Http;

/// <summary>The names under which the circuit breaker publishes metrics and traces.</summary>
public static class CircuitBreakerTelemetry
{
    /// <summary>The name of the <see cref="System.Diagnostics.Metrics.Meter"/> of every circuit-breaker instrument.</summary>
    public const string MeterName = "CircuitBreaker.Http";

    /// <summary>The name of the <see cref="System.Diagnostics.ActivitySource"/> of circuit-breaker spans.</summary>
    public const string ActivitySourceName = "CircuitBreaker.Http";

    internal static readonly ActivitySource ActivitySource = new(ActivitySourceName);

    /// <summary>The lower-case names used in tags and logs, such as <c>half_open</c>.</summary>
    internal static string Name(CircuitState state) => state switch
    {
        CircuitState.Closed => "closed",
        CircuitState.Open => "open",
        CircuitState.HalfOpen => "half_open",
        _ => "isolated",
    };
}
