namespace CircuitBreaker.Http;

/// <summary>
/// One call's <see cref="CircuitBreakerOptions.AttemptTimeout"/>: a token that fires on the timeout or on the
/// caller's cancellation, measured with the injected <see cref="TimeProvider"/>, and the call's duration.
/// </summary>
#pragma warning disable CA1001 // It is disposable; the analyzer misreads disposable readonly structs.
internal readonly struct Attempt : IDisposable
#pragma warning restore CA1001
{
    private readonly CancellationTokenSource? _timeoutSource;
    private readonly CancellationTokenRegistration _callerRegistration;
    private readonly AttemptTimeouts _timeouts;
    private readonly TimeProvider _timeProvider;
    private readonly long _started;
    private readonly bool _measured;

    /// <param name="timeout">The <see cref="CircuitBreakerOptions.AttemptTimeout"/>, or <see langword="null"/> when off.</param>
    /// <param name="measured">Whether <see cref="Elapsed"/> will be asked for: the clock is read only then.</param>
    /// <param name="timeouts">The pool of timeout sources.</param>
    /// <param name="timeProvider">The clock.</param>
    /// <param name="callerToken">The caller's token.</param>
    public Attempt(TimeSpan? timeout, bool measured, AttemptTimeouts timeouts, TimeProvider timeProvider, CancellationToken callerToken)
    {
        _timeouts = timeouts;
        _timeProvider = timeProvider;
        _measured = measured;
        _started = measured ? timeProvider.GetTimestamp() : 0;
        Timeout = timeout;
        if (timeout is { } t)
        {
            _timeoutSource = timeouts.Rent(t);
            _callerRegistration = callerToken.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), _timeoutSource);
            Token = _timeoutSource.Token;
        }
        else
        {
            Token = callerToken;
        }
    }

    public CancellationToken Token { get; }

    public TimeSpan? Timeout { get; }

    public bool TimedOut => _timeoutSource?.IsCancellationRequested == true;

    /// <summary>The call's duration so far; zero when the attempt was started unmeasured (a reload may have turned slow calls on since).</summary>
    public TimeSpan Elapsed => _measured ? _timeProvider.GetElapsedTime(_started) : TimeSpan.Zero;

    public void Dispose()
    {
        // The registration goes first: disposing it waits for a running callback, which then cannot touch a reused source.
        _callerRegistration.Dispose();
        if (_timeoutSource is not null)
        {
            _timeouts.Return(_timeoutSource);
        }
    }
}
