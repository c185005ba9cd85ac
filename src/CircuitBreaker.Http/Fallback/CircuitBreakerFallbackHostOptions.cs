namespace CircuitBreaker.Http;

/// <summary>
/// An override of <see cref="CircuitBreakerFallbackOptions"/> for one host: each value left
/// <see langword="null"/> keeps the client's; degraded headers are added to the client's.
/// </summary>
public class CircuitBreakerFallbackHostOptions
{
    /// <summary>Gets or sets the override of <see cref="CircuitBreakerFallbackOptions.OnOpen"/>.</summary>
    /// <value>The default value is <see langword="null"/> (the client's value).</value>
    public Func<CircuitFallbackContext, ValueTask<HttpResponseMessage?>>? OnOpen { get; set; }

    /// <summary>Gets the overrides of <see cref="CircuitBreakerFallbackOptions.Cache"/>.</summary>
    /// <value>The default value is an empty override.</value>
    public FallbackCacheHostOptions Cache { get; } = new();

    /// <summary>Gets or sets the override of <see cref="CircuitBreakerFallbackOptions.AlternateBaseAddress"/>.</summary>
    /// <value>The default value is <see langword="null"/> (the client's value).</value>
    public Uri? AlternateBaseAddress { get; set; }

    /// <summary>Gets the overrides of <see cref="CircuitBreakerFallbackOptions.Degraded"/>: each value set replaces the client's; headers are added.</summary>
    /// <value>The default value is an empty override.</value>
    public DegradedResponseOptions Degraded { get; } = new();
}
