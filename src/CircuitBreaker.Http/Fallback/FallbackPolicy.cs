namespace CircuitBreaker.Http;

/// <summary>
/// The fallback chain in force for one circuit, prepared from its options and replaced on reload: what to try,
/// in order, when the circuit turns a call away, and how to mark the answer.
/// </summary>
internal sealed class FallbackPolicy
{
    /// <summary>The header that tells a fallback from a real answer: <c>custom</c>, <c>cache</c>, <c>alternate</c> or <c>degraded</c>.</summary>
    public const string FallbackHeaderName = "X-Circuit-Fallback";

    /// <summary>The header that tells when the next probe is due, which the breaker sets on a fallback response when it knows.</summary>
    public const string RetryAfterHeaderName = "Retry-After";

    /// <summary>The <c>fallback</c> tag and header values.</summary>
    public const string CustomKind = "custom", CacheKind = "cache", AlternateKind = "alternate", DegradedKind = "degraded", NoneKind = "none";

    private FallbackPolicy(CircuitBreakerFallbackOptions options)
    {
        OnOpen = options.OnOpen;
        CacheEnabled = options.Cache.Enabled;
        CacheMaxAge = options.Cache.MaxAge;
        CacheMaxEntryBytes = options.Cache.MaxEntryBytes;
        CacheExcludesCredentials = options.Cache.ExcludeRequestsWithCredentials;
        AlternateBaseAddress = options.AlternateBaseAddress;
        Degraded = DegradedResponse.From(options.Degraded);
    }

    public Func<CircuitFallbackContext, ValueTask<HttpResponseMessage?>>? OnOpen { get; }

    public bool CacheEnabled { get; }

    public TimeSpan CacheMaxAge { get; }

    public int CacheMaxEntryBytes { get; }

    public bool CacheExcludesCredentials { get; }

    public Uri? AlternateBaseAddress { get; }

    public DegradedResponse? Degraded { get; }

    public static FallbackPolicy From(CircuitBreakerOptions options) => new(options.Fallback);

    /// <summary>The request's URI moved to the alternate backend: its scheme, host and port, the same path and query.</summary>
    public Uri AlternateFor(Uri original) =>
        new UriBuilder(original)
        {
            Scheme = AlternateBaseAddress!.Scheme,
            Host = AlternateBaseAddress.Host,
            Port = AlternateBaseAddress.Port,
        }.Uri;

    /// <summary>
    /// Marks a response the fallback did not build (a custom or alternate answer), replacing any mark it carries
    /// and, when the breaker knows when the next probe is due, any <c>Retry-After</c> of its own.
    /// </summary>
    public static HttpResponseMessage Mark(HttpResponseMessage response, string kind, TimeSpan? retryAfter)
    {
        response.Headers.Remove(FallbackHeaderName);
        if (retryAfter is not null)
        {
            // Retry-After takes one value: appended to the answer's own, it would make two, and the typed
            // HttpResponseHeaders.RetryAfter reads only the first. Without a time to promise, the answer's own stays.
            response.Headers.Remove(RetryAfterHeaderName);
        }

        return MarkFresh(response, kind, retryAfter);
    }

    /// <summary>
    /// Marks a response the fallback built itself (cached or degraded), which carries no mark yet: the cache drops
    /// both headers when it stores a response; the degraded response keeps a configured <c>Retry-After</c> apart
    /// (<paramref name="otherwise"/>), and validation keeps <c>X-Circuit-Fallback</c> out of its headers.
    /// </summary>
    /// <param name="response">The response.</param>
    /// <param name="kind">What answered.</param>
    /// <param name="retryAfter">The time until the next probe, when the breaker knows it.</param>
    /// <param name="otherwise">The <c>Retry-After</c> to send when it does not (a degraded response's configured one).</param>
    /// <returns>The response, marked.</returns>
    public static HttpResponseMessage MarkFresh(HttpResponseMessage response, string kind, TimeSpan? retryAfter, string? otherwise = null)
    {
        response.Headers.TryAddWithoutValidation(FallbackHeaderName, kind);
        if (retryAfter is { } delay)
        {
            // Whole seconds, rounded up: a caller that waits that long finds the probe due. Added as text, which is the
            // header's own form and costs no parsed-value objects.
            response.Headers.TryAddWithoutValidation(RetryAfterHeaderName, DecimalStrings.Of((long)Math.Ceiling(delay.TotalSeconds)));
        }
        else if (otherwise is not null)
        {
            response.Headers.TryAddWithoutValidation(RetryAfterHeaderName, otherwise);
        }

        return response;
    }
}
