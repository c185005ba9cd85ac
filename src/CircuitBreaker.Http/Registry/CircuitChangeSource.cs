namespace CircuitBreaker.Http;

/// <summary>Who decided a circuit's state change.</summary>
public enum CircuitChangeSource
{
    /// <summary>The circuit itself, from the outcomes of this instance's calls and the passing of its break.</summary>
    Local,

    /// <summary>An operator, through <see cref="ICircuitBreakerRegistry.Isolate"/> or <see cref="ICircuitBreakerRegistry.Reset"/>.</summary>
    Operator,

    /// <summary>A decision taken for the whole fleet of instances and applied here through <see cref="ICircuitFleetControl"/>.</summary>
    Fleet,

    /// <summary>
    /// The registry evicted a circuit that was not closed, to stay within <see cref="CircuitBreakerOptions.MaxCircuits"/>:
    /// calls to its host go through again, on a fresh closed circuit. The change is to <see cref="CircuitState.Closed"/>,
    /// and it is the last the evicted circuit reports.
    /// </summary>
    Eviction,
}
