namespace CircuitBreaker.Http;

/// <summary>
/// A request whose good answer the cache may store, as it entered the breaker: what its key and the values its
/// response's <c>Vary</c> names are taken from. The lookup while the circuit is open reads the request at that same
/// point, before the handlers below the breaker change it: SocketsHttpHandler adds <c>Accept-Encoding</c> when it
/// decompresses, a token handler adds <c>Authorization</c>. Read after them, an entry would be keyed and varied by
/// headers no lookup ever carries, and never be replayed. Lives only for the call.
/// </summary>
internal sealed class CacheableRequest
{
    private static readonly KeyValuePair<string, string>[] NoHeaders = [];

    private readonly HttpMethod _method;
    private readonly KeyValuePair<string, string>[] _headers;

    private CacheableRequest(HttpMethod method, Uri uri, KeyValuePair<string, string>[] headers)
    {
        _method = method;
        Uri = uri;
        _headers = headers;
    }

    public Uri Uri { get; }

    /// <summary>Whether the answer has no body whatever its headers say.</summary>
    public bool IsHead => _method == HttpMethod.Head;

    /// <summary>The request as it is now, or <see langword="null"/> when the cache may not store its answer.</summary>
    public static CacheableRequest? Of(HttpRequestMessage request, bool excludeCredentials)
    {
        if (!ResponseCacheKey.IsCacheableRequest(request, excludeCredentials))
        {
            return null;
        }

        // Which headers Vary will name is known only from the response, so all of them are kept, in the form the
        // lookup compares (ResponseCacheKey.HeaderValue). Most requests have none, and then nothing is copied.
        var headers = NoHeaders;
        var current = request.Headers.NonValidated;
        if (current.Count > 0)
        {
            headers = new KeyValuePair<string, string>[current.Count];
            var i = 0;
            foreach (var (name, values) in current)
            {
                headers[i++] = new(name, ResponseCacheKey.Joined(values));
            }
        }

        return new CacheableRequest(request.Method, request.RequestUri!, headers);
    }

    public bool HasCredentials => HeaderValue("Authorization") is not null || HeaderValue("Cookie") is not null;

    /// <summary>The key, as <see cref="ResponseCacheKey.For(HttpRequestMessage, bool)"/> builds it for the request as it was.</summary>
    public string Key() => ResponseCacheKey.For(_method, Uri, HeaderValue("Host"), HeaderValue("Authorization"), HeaderValue("Cookie"));

    /// <summary>
    /// The values the request had of the headers <paramref name="response"/>'s <c>Vary</c> names, but for
    /// <c>Authorization</c> and <c>Cookie</c>: the key already tells requests apart by a hash of those, and their
    /// values, credentials, are never kept.
    /// </summary>
    public (string Name, string? Value)[] Vary(HttpResponseMessage response)
    {
        var names = response.Headers.Vary;
        if (names.Count == 0)
        {
            return [];
        }

        var vary = new List<(string Name, string? Value)>(names.Count);
        foreach (var name in names)
        {
            if (!string.Equals(name, "Authorization", StringComparison.OrdinalIgnoreCase) && !string.Equals(name, "Cookie", StringComparison.OrdinalIgnoreCase))
            {
                vary.Add((name, HeaderValue(name)));
            }
        }

        return [.. vary];
    }

    /// <summary>The value the request had of header <paramref name="name"/>, as <see cref="ResponseCacheKey.HeaderValue"/> reads it.</summary>
    public string? HeaderValue(string name)
    {
        // Header names are case-insensitive, and a request has a handful: a scan beats building an index.
        foreach (var (headerName, value) in _headers)
        {
            if (string.Equals(headerName, name, StringComparison.OrdinalIgnoreCase))
            {
                return value;
            }
        }

        return null;
    }
}
