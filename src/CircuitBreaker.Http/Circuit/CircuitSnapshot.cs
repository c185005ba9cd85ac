namespace CircuitBreaker.Http;

/// <summary>A consistent reading of a circuit's counters, taken under its lock.</summary>
internal readonly record struct CircuitSnapshot(
    CircuitState State,
    int ConsecutiveFailures,
    double? FailureRatio,
    DateTimeOffset? OpenedAt,
    DateTimeOffset? RetryAt,
    TimeSpan? OutOfClosedFor,
    int FailedProbes);
