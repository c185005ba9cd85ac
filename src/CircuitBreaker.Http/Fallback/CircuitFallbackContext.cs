namespace CircuitBreaker.Http;

/// <summary>What <see cref="CircuitBreakerFallbackOptions.OnOpen"/> is given about a call its circuit turned away.</summary>
public sealed class CircuitFallbackContext
{
    internal CircuitFallbackContext(
        HttpRequestMessage request,
        CircuitKey circuitKey,
        CircuitState state,
        TimeSpan? retryAfter,
        HttpResponseMessage? cachedResponse,
        CancellationToken cancellationToken)
    {
        Request = request;
        CircuitKey = circuitKey;
        State = state;
        RetryAfter = retryAfter;
        CachedResponse = cachedResponse;
        CancellationToken = cancellationToken;
    }

    /// <summary>Gets the request that was not sent.</summary>
    public HttpRequestMessage Request { get; }

    /// <summary>Gets the circuit that turned the call away.</summary>
    public CircuitKey CircuitKey { get; }

    /// <summary>Gets the state of that circuit.</summary>
    public CircuitState State { get; }

    /// <summary>Gets the time until a probe may be sent, if known.</summary>
    public TimeSpan? RetryAfter { get; }

    /// <summary>
    /// Gets a fresh copy of the last good response to the same request, when the cache holds one. Return it to
    /// serve it as is, or build a response of your own from it (its <see cref="HttpResponseMessage.Content"/>, or a
    /// stream read from it): the breaker disposes it only when the delegate returns <see langword="null"/>.
    /// </summary>
    public HttpResponseMessage? CachedResponse { get; }

    /// <summary>Gets the caller's cancellation token.</summary>
    public CancellationToken CancellationToken { get; }
}
