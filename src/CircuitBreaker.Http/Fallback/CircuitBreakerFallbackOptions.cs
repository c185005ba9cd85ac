using Microsoft.Extensions.Options;

namespace CircuitBreaker.Http;

/// <summary>
/// What a caller gets instead of <see cref="CircuitOpenException"/> while a circuit is open (or a call is
/// turned away in half-open). Tried in order, the first that yields a response wins: <see cref="OnOpen"/>,
/// <see cref="Cache"/>, <see cref="AlternateBaseAddress"/>, <see cref="Degraded"/>. Every fallback response
/// carries the header <c>X-Circuit-Fallback</c>; bound from <c>CircuitBreaker:Fallback</c>.
/// </summary>
public class CircuitBreakerFallbackOptions
{
    /// <summary>
    /// Gets or sets a delegate, set in code only, that may answer a call the circuit turned away or a load-shedding
    /// limit shed (see <see cref="CircuitFallbackContext.ShedReason"/> to tell them apart). It is given
    /// the request, the circuit, its state and retry time, and the cached response if there is one; it returns
    /// a response, or <see langword="null"/> to go on down the chain. A delegate that throws is logged and skipped.
    /// Synchronous <see cref="HttpClient.Send(HttpRequestMessage)"/> calls skip it, since it is asynchronous.
    /// </summary>
    /// <value>The default value is <see langword="null"/> (none).</value>
    public Func<CircuitFallbackContext, ValueTask<HttpResponseMessage?>>? OnOpen { get; set; }

    /// <summary>Gets the cache of last successful responses, replayed while the circuit is open.</summary>
    /// <value>The default value is a disabled cache.</value>
    [ValidateObjectMembers]
    public FallbackCacheOptions Cache { get; } = new();

    /// <summary>
    /// Gets or sets another backend to which a turned-away request is re-sent, with the same path and query
    /// (only the scheme, host and port of this address are used). The alternate host has a circuit of its own.
    /// </summary>
    /// <value>The default value is <see langword="null"/> (none).</value>
    public Uri? AlternateBaseAddress { get; set; }

    /// <summary>Gets a fixed response served when nothing earlier in the chain answered; off until a status code or body is set.</summary>
    /// <value>The default value is an empty (off) degraded response.</value>
    [ValidateObjectMembers]
    public DegradedResponseOptions Degraded { get; } = new();

    /// <summary>Sets these options to <paramref name="client"/>'s with a host's <paramref name="overrides"/> laid over them.</summary>
    internal void Merge(CircuitBreakerFallbackOptions client, CircuitBreakerFallbackHostOptions overrides)
    {
        OnOpen = overrides.OnOpen ?? client.OnOpen;
        AlternateBaseAddress = overrides.AlternateBaseAddress ?? client.AlternateBaseAddress;

        Cache.Enabled = overrides.Cache.Enabled ?? client.Cache.Enabled;
        Cache.MaxAge = overrides.Cache.MaxAge ?? client.Cache.MaxAge;
        Cache.MaxEntryBytes = overrides.Cache.MaxEntryBytes ?? client.Cache.MaxEntryBytes;
        Cache.ExcludeRequestsWithCredentials = overrides.Cache.ExcludeRequestsWithCredentials ?? client.Cache.ExcludeRequestsWithCredentials;
        Cache.MaxEntries = client.Cache.MaxEntries;
        Cache.MaxTotalBytes = client.Cache.MaxTotalBytes;

        Degraded.StatusCode = overrides.Degraded.StatusCode ?? client.Degraded.StatusCode;
        Degraded.ContentType = overrides.Degraded.ContentType ?? client.Degraded.ContentType;
        Degraded.Body = overrides.Degraded.Body ?? client.Degraded.Body;
        foreach (var header in client.Degraded.Headers.Concat(overrides.Degraded.Headers))
        {
            Degraded.Headers[header.Key] = header.Value;
        }
    }
}
