namespace CircuitBreaker.Http;

/// <summary>A state change of one circuit, reported after the circuit's lock is released.</summary>
internal readonly record struct CircuitTransition(
    CircuitState PreviousState,
    CircuitState State,
    DateTimeOffset Timestamp,
    TimeSpan? BreakDuration);
