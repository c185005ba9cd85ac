namespace CircuitBreaker.Http;

/// <summary>
/// The answer of <see cref="CircuitStateMachine.TryAcquire"/>: either leave to call the downstream
/// (as an ordinary call or as a probe) or a rejection with the state and retry time to report.
/// A struct so that asking costs no allocation on the hot path, and 16 bytes (the epoch of a granted permit and the
/// retry time of a rejected one share a field) as it lives in the state machine of every asynchronous call.
/// </summary>
internal readonly struct CircuitPermit
{
    private readonly long _epochOrRetryTicks;
    private readonly bool _hasRetryAfter;

    private CircuitPermit(CircuitPermitKind kind, long epoch, CircuitState rejectedState, TimeSpan? retryAfter)
    {
        Kind = kind;
        RejectedState = rejectedState;
        _hasRetryAfter = retryAfter.HasValue;
        _epochOrRetryTicks = kind == CircuitPermitKind.Rejected ? retryAfter.GetValueOrDefault().Ticks : epoch;
    }

    public CircuitPermitKind Kind { get; }

    /// <summary>The state period the call was let in during; outcomes from an earlier period are ignored.</summary>
    public long Epoch => Kind == CircuitPermitKind.Rejected ? 0 : _epochOrRetryTicks;

    public CircuitState RejectedState { get; }

    public TimeSpan? RetryAfter => _hasRetryAfter ? TimeSpan.FromTicks(_epochOrRetryTicks) : null;

    public bool IsGranted => Kind != CircuitPermitKind.Rejected;

    public static CircuitPermit Closed(long epoch) => new(CircuitPermitKind.Closed, epoch, CircuitState.Closed, null);

    public static CircuitPermit Probe(long epoch) => new(CircuitPermitKind.Probe, epoch, CircuitState.HalfOpen, null);

    public static CircuitPermit Rejected(CircuitState state, TimeSpan? retryAfter) =>
        new(CircuitPermitKind.Rejected, 0, state, retryAfter);
}

internal enum CircuitPermitKind : byte
{
    Rejected,
    Closed,
    Probe,
}
