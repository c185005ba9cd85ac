using System.Net;

namespace CircuitBreaker.Http;

/// <summary>
/// A successful response as the cache keeps it: status, headers and the whole body, plus the request header
/// values its <c>Vary</c> named. Replayed as a fresh <see cref="HttpResponseMessage"/> each time.
/// </summary>
internal sealed class CachedResponse
{
    // Headers that describe one transfer or one client, not the resource: never replayed.
    private static readonly HashSet<string> SkippedHeaders = new(StringComparer.OrdinalIgnoreCase)
    {
        "Age", "Connection", "Keep-Alive", "Proxy-Connection", "Retry-After", "Set-Cookie", "Trailer", "Transfer-Encoding", "Upgrade",
        FallbackPolicy.FallbackHeaderName,
    };

    private readonly KeyValuePair<string, string[]>[] _headers;
    private readonly KeyValuePair<string, string[]>[] _contentHeaders;

    public CachedResponse(HttpResponseMessage response, (string Name, string? Value)[] vary, byte[] body, long storedAt)
    {
        var isHead = response.RequestMessage?.Method == HttpMethod.Head;
        StatusCode = response.StatusCode;
        ReasonPhrase = CustomReasonPhrase(response);
        Version = response.Version;
        _headers = Copy(response.Headers);
        // A replayed body's length is its own, except for HEAD, whose Content-Length describes the resource.
        _contentHeaders = Copy(response.Content.Headers)
            .Where(h => isHead || !string.Equals(h.Key, "Content-Length", StringComparison.OrdinalIgnoreCase))
            .ToArray();
        Vary = vary;
        Body = body;
        StoredAt = storedAt;
    }

    public HttpStatusCode StatusCode { get; }

    /// <summary>The reason phrase when it is not the status code's standard one, which a new response has by itself.</summary>
    public string? ReasonPhrase { get; }

    public Version Version { get; }

    public (string Name, string? Value)[] Vary { get; }

    public byte[] Body { get; }

    /// <summary>The cache clock's reading (<see cref="CacheClock.Now"/>) when the response was stored.</summary>
    public long StoredAt { get; }

    /// <summary>Bytes the entry holds, as counted against the cache's size limit.</summary>
    public long Size => Body.Length + 64L * (_headers.Length + _contentHeaders.Length);

    public bool VaryMatches(HttpRequestMessage request)
    {
        // A loop rather than Array.TrueForAll, whose lambda would allocate a closure on every replay.
        foreach (var (name, value) in Vary)
        {
            if (value != ResponseCacheKey.HeaderValue(request, name))
            {
                return false;
            }
        }

        return true;
    }

    public HttpResponseMessage ToResponse(HttpRequestMessage request, TimeSpan age)
    {
        var response = new HttpResponseMessage(StatusCode)
        {
            Version = Version,
            RequestMessage = request,
            Content = new ByteArrayContent(Body),
        };
        if (ReasonPhrase is not null)
        {
            response.ReasonPhrase = ReasonPhrase; // set only when needed: the setter scans it for line breaks
        }

        Add(response.Headers, _headers);
        Add(response.Content.Headers, _contentHeaders);

        // As text, the header's own form: the typed setter would box the value and allocate parsed-value storage.
        response.Headers.TryAddWithoutValidation("Age", DecimalStrings.Of(age < TimeSpan.Zero ? 0 : (long)age.TotalSeconds));
        return response;
    }

    private static void Add(System.Net.Http.Headers.HttpHeaders headers, KeyValuePair<string, string[]>[] copied)
    {
        foreach (var (name, values) in copied)
        {
            // The single-value overload stores the string as it is; the other walks an enumerator.
            _ = values.Length == 1 ? headers.TryAddWithoutValidation(name, values[0]) : headers.TryAddWithoutValidation(name, values);
        }
    }

    private static string? CustomReasonPhrase(HttpResponseMessage response)
    {
        using var standard = new HttpResponseMessage(response.StatusCode);
        return response.ReasonPhrase == standard.ReasonPhrase ? null : response.ReasonPhrase;
    }

    private static KeyValuePair<string, string[]>[] Copy(System.Net.Http.Headers.HttpHeaders headers) =>
        headers.NonValidated
            .Where(h => !SkippedHeaders.Contains(h.Key))
            .Select(h => new KeyValuePair<string, string[]>(h.Key, [.. h.Value]))
            .ToArray();
}
