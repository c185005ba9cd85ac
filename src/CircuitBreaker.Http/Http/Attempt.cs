namespace CircuitBreaker.Http;

/// <summary>
/// One call's <see cref="CircuitBreakerOptions.AttemptTimeout"/>: a token that fires on the timeout or, once
/// <see cref="LinkCaller"/> has linked it, on the caller's cancellation, measured with the injected
/// <see cref="TimeProvider"/>, and the call's duration when <see cref="CircuitBreakerOptions.SlowCallDuration"/>
/// needs it. Kept small, as it lives in the state machine of every call that completes asynchronously.
/// </summary>
#pragma warning disable CA1001 // It is disposable; the analyzer misreads disposable readonly structs.
internal readonly struct Attempt : IDisposable
#pragma warning restore CA1001
{
    private const long Unmeasured = long.MinValue;

    private readonly AttemptTimeouts.Slot? _timeout;
    private readonly long _started;

    /// <param name="timeout">The <see cref="CircuitBreakerOptions.AttemptTimeout"/>, or <see langword="null"/> when off.</param>
    /// <param name="measured">Whether <see cref="Elapsed"/> will be asked for: the clock is read only then.</param>
    /// <param name="timeouts">The pool of timeouts.</param>
    /// <param name="timeProvider">The clock of the duration.</param>
    public Attempt(TimeSpan? timeout, bool measured, AttemptTimeouts timeouts, TimeProvider timeProvider)
    {
        _started = measured ? timeProvider.GetTimestamp() : Unmeasured;
        _timeout = timeout is { } t ? timeouts.Start(t) : null;
    }

    /// <summary>Makes the caller's cancellation cancel <see cref="Token"/> too; nothing to do without a timeout, whose token is the caller's.</summary>
    public void LinkCaller(CancellationToken callerToken) => _timeout?.LinkCaller(callerToken);

    /// <summary>The token to send the call with: the timeout's, or the caller's own when there is no timeout.</summary>
    public CancellationToken Token(CancellationToken callerToken) => _timeout?.Token ?? callerToken;

    public TimeSpan? Timeout => _timeout?.Timeout;

    public bool TimedOut => _timeout?.TimedOut == true;

    /// <summary>The call's duration so far; zero when the attempt was started unmeasured (a reload may have turned slow calls on since).</summary>
    public TimeSpan Elapsed(TimeProvider timeProvider) => _started != Unmeasured ? timeProvider.GetElapsedTime(_started) : TimeSpan.Zero;

    public void Dispose() => _timeout?.End();
}
