namespace CircuitBreaker.Http;

/// <summary>
/// What <see cref="CircuitBreakerFallbackOptions.OnOpen"/> is given about a call that was not sent: one its circuit turned
/// away, or one a load-shedding limit shed (<see cref="CircuitBreakerOptions.MaxConcurrentRequests"/>,
/// <see cref="CircuitBreakerOptions.Throttle"/>, <see cref="CircuitBreakerOptions.RampUpDuration"/>) from a healthy host.
/// </summary>
public sealed class CircuitFallbackContext
{
    internal CircuitFallbackContext(
        HttpRequestMessage request,
        CircuitKey circuitKey,
        CircuitState state,
        TimeSpan? retryAfter,
        LoadSheddingReason? shedReason,
        HttpResponseMessage? cachedResponse,
        CancellationToken cancellationToken)
    {
        Request = request;
        CircuitKey = circuitKey;
        State = state;
        RetryAfter = retryAfter;
        ShedReason = shedReason;
        CachedResponse = cachedResponse;
        CancellationToken = cancellationToken;
    }

    /// <summary>Gets the request that was not sent.</summary>
    public HttpRequestMessage Request { get; }

    /// <summary>Gets the circuit of the host the call was for.</summary>
    public CircuitKey CircuitKey { get; }

    /// <summary>
    /// Gets the state of that circuit: <see cref="CircuitState.Open"/>, <see cref="CircuitState.HalfOpen"/> or
    /// <see cref="CircuitState.Isolated"/> when it turned the call away; <see cref="CircuitState.Closed"/> (or
    /// <see cref="CircuitState.HalfOpen"/>, for a probe) when a load-shedding limit shed the call instead.
    /// </summary>
    public CircuitState State { get; }

    /// <summary>
    /// Gets the time until a probe may be sent, or, for a call the throttle shed, until its next token; <see langword="null"/>
    /// when unknown.
    /// </summary>
    public TimeSpan? RetryAfter { get; }

    /// <summary>
    /// Gets the limit that shed the call, or <see langword="null"/> when its circuit turned it away. A half-open probe
    /// that a limit shed has <see cref="State"/> <see cref="CircuitState.HalfOpen"/> and a reason here; one turned
    /// away because the probe slots were taken has none.
    /// </summary>
    public LoadSheddingReason? ShedReason { get; }

    /// <summary>
    /// Gets a fresh copy of the last good response to the same request, when the cache holds one. Return it to
    /// serve it as is, or build a response of your own from it (its <see cref="HttpResponseMessage.Content"/>, or a
    /// stream read from it): the breaker disposes it only when the delegate returns <see langword="null"/>.
    /// </summary>
    public HttpResponseMessage? CachedResponse { get; }

    /// <summary>Gets the caller's cancellation token.</summary>
    public CancellationToken CancellationToken { get; }
}
