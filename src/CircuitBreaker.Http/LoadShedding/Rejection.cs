namespace CircuitBreaker.Http;

/// <summary>
/// Why a call was not sent, for the fallback chain and its accounting: turned away by the circuit
/// (<see cref="Shed"/> is <see langword="null"/>) or shed by a limit of a healthy host.
/// </summary>
internal readonly record struct Rejection(CircuitState State, TimeSpan? RetryAfter, LoadSheddingReason? Shed)
{
    public static Rejection ByCircuit(in CircuitPermit permit) => new(permit.RejectedState, permit.RetryAfter, null);

    public static Rejection ByLimit(LoadSheddingReason reason, TimeSpan? retryAfter = null) => new(CircuitState.Closed, retryAfter, reason);

    /// <summary>The <c>reason</c> tag of <c>circuit.rejected</c>.</summary>
    public string Reason => Shed switch
    {
        null => "circuit_open",
        LoadSheddingReason.Concurrency => "concurrency",
        LoadSheddingReason.Throttle => "throttle",
        _ => "ramp_up",
    };

    public HttpRequestException ToException(CircuitKey key) =>
        Shed is { } reason ? new LoadSheddingException(key, reason, RetryAfter) : new CircuitOpenException(key, State, RetryAfter);
}
