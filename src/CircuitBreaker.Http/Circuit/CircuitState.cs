namespace CircuitBreaker.Http;

/// <summary>
/// The state of one circuit. The numeric values are stable: telemetry reports them as-is.
/// </summary>
public enum CircuitState
{
    /// <summary>Calls flow to the downstream host and their outcomes are counted.</summary>
    Closed = 0,

    /// <summary>Calls fail fast without reaching the downstream host until the break elapses.</summary>
    Open = 1,

    /// <summary>The break has elapsed: a limited number of probe calls may test whether the host has recovered.</summary>
    HalfOpen = 2,

    /// <summary>Opened by hand through <see cref="ICircuitBreakerRegistry"/>; stays open until reset by hand.</summary>
    Isolated = 3,
}
