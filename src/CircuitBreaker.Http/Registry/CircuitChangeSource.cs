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
}
