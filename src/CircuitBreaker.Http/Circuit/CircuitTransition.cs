namespace CircuitBreaker.Http;

/// <summary>
/// A state change of one circuit, reported after the circuit's lock is released, with what caused it: the
/// failures counted when it opened and the kind of the last one (opaque to the state machine), and who decided it.
/// </summary>
internal readonly record struct CircuitTransition(
    CircuitState PreviousState,
    CircuitState State,
    DateTimeOffset Timestamp,
    TimeSpan? BreakDuration,
    int ConsecutiveFailures = 0,
    double? FailureRatio = null,
    string? LastFailure = null,
    CircuitChangeSource Source = CircuitChangeSource.Local);
