namespace CircuitBreaker.Demo.Drill;

/// <summary>The callers' count of one service's requests: sent, and each outcome.</summary>
public sealed class ClientTally
{
    private readonly int[] _outcomes = new int[Enum.GetValues<CallOutcome>().Length];
    private int _sent;

    /// <summary>Counts a request about to be sent.</summary>
    public void Sent() => Interlocked.Increment(ref _sent);

    /// <summary>Counts the outcome of a request.</summary>
    public void Record(CallOutcome outcome) => Interlocked.Increment(ref _outcomes[(int)outcome]);

    /// <summary>Gets the counts so far.</summary>
    public ClientCounts Snapshot()
    {
        int Of(CallOutcome o) => Volatile.Read(ref _outcomes[(int)o]);
        return new ClientCounts(
            Volatile.Read(ref _sent),
            Of(CallOutcome.DownstreamOk),
            Of(CallOutcome.DownstreamError),
            Of(CallOutcome.Cache),
            Of(CallOutcome.Alternate),
            Of(CallOutcome.Degraded),
            Of(CallOutcome.Custom),
            Of(CallOutcome.Rejected),
            Of(CallOutcome.FailedTimeout),
            Of(CallOutcome.FailedConnection),
            Of(CallOutcome.FailedOther),
            Of(CallOutcome.Cancelled));
    }
}

/// <summary>What the callers of one service saw.</summary>
public sealed record ClientCounts(
    int Sent,
    int DownstreamOk,
    int DownstreamError,
    int Cache,
    int Alternate,
    int Degraded,
    int Custom,
    int Rejected,
    int FailedTimeout,
    int FailedConnection,
    int FailedOther,
    int Cancelled)
{
    /// <summary>Gets the requests the downstream itself answered (any status).</summary>
    public int Downstream => DownstreamOk + DownstreamError;

    /// <summary>Gets the requests a fallback answered while the circuit was open.</summary>
    public int Fallbacks => Cache + Alternate + Degraded + Custom;

    /// <summary>Gets the requests that were let through and failed (timeout, connection, other).</summary>
    public int Failed => FailedTimeout + FailedConnection + FailedOther;

    /// <summary>Gets the requests with an outcome; equal to <see cref="Sent"/> once every call has finished.</summary>
    public int Accounted => Downstream + Fallbacks + Rejected + Failed + Cancelled;

    /// <summary>Gets the requests the breaker let through to the downstream.</summary>
    public int LetThrough => Downstream + Failed;

    /// <summary>Gets the requests the breaker did not send: the load it kept off the failing downstream.</summary>
    public int KeptOff => Fallbacks + Rejected;
}
