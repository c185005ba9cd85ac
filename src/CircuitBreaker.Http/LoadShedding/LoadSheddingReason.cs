namespace CircuitBreaker.Http;

/// <summary>Why the client shed a call its circuit would have let through.</summary>
public enum LoadSheddingReason
{
    /// <summary>
    /// Not known: the default value, which the breaker never reports. It is what an exception built without a reason
    /// (<see cref="LoadSheddingException()"/>) carries.
    /// </summary>
    Unknown,

    /// <summary><see cref="CircuitBreakerOptions.MaxConcurrentRequests"/> calls were in flight (and the queue, if any, was full).</summary>
    Concurrency,

    /// <summary>The host's token bucket (<see cref="CircuitBreakerOptions.Throttle"/>) was empty.</summary>
    Throttle,

    /// <summary>The circuit closed recently and lets only a growing share of calls through (<see cref="CircuitBreakerOptions.RampUpDuration"/>).</summary>
    RampUp,
}
