namespace CircuitBreaker.Http;

/// <summary>
/// Why a call was not sent, for the fallback chain and its accounting: turned away by the circuit
/// (<see cref="Shed"/> is <see langword="null"/>) or shed by a limit of a healthy host.
/// </summary>
internal readonly record struct Rejection(CircuitState State, TimeSpan? RetryAfter, LoadSheddingReason? Shed)
{
    public static Rejection ByCircuit(in CircuitPermit permit) => new(permit.RejectedState, permit.RetryAfter, null);

    /// <summary>
    /// A call the circuit let in and a limit shed: the state is the one the circuit let it in during, as a limit
    /// also sheds a half-open probe (and, in observe-only mode, a call the circuit would have turned away).
    /// </summary>
    public static Rejection ByLimit(LoadSheddingReason reason, in CircuitPermit permit, TimeSpan? retryAfter = null) => new(permit.RejectedState, retryAfter, reason);

    /// <summary>The <c>reason</c> tag of <c>circuit.rejected</c>.</summary>
    public string Reason => Shed switch
    {
        null => "circuit_open",
        LoadSheddingReason.Concurrency => "concurrency",
        LoadSheddingReason.Throttle => "throttle",
        LoadSheddingReason.RampUp => "ramp_up",
        _ => "unknown",
    };

    public HttpRequestException ToException(CircuitKey key) =>
        Shed is { } reason ? new LoadSheddingException(key, reason, RetryAfter) : new CircuitOpenException(key, State, RetryAfter);
}
