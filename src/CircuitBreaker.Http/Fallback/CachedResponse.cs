using System.Net;

namespace CircuitBreaker.Http;

/// <summary>
/// A successful response as the cache keeps it: status, headers and the whole body, plus the request header
/// values its <c>Vary</c> named. Replayed as a fresh <see cref="HttpResponseMessage"/> each time.
/// </summary>
internal sealed class CachedResponse
{
    // What a header costs beyond its text: the pair, the array, the string headers.
    private const long PerHeader = 64;

    private readonly KeyValuePair<string, string[]>[] _headers;
    private readonly KeyValuePair<string, string[]>[] _contentHeaders;

    /// <param name="head">The response apart from its body, as it passed back up through the breaker.</param>
    /// <param name="vary">The request's values of the headers the response's <c>Vary</c> names.</param>
    /// <param name="body">The whole body.</param>
    /// <param name="storedAt">The cache clock's reading when the response is stored.</param>
    public CachedResponse(ResponseHead head, (string Name, string? Value)[] vary, byte[] body, long storedAt)
    {
        StatusCode = head.StatusCode;
        ReasonPhrase = head.ReasonPhrase;
        Version = head.Version;
        _headers = head.Headers;
        _contentHeaders = head.ContentHeaders;
        Vary = vary;
        Body = body;
        StoredAt = storedAt;
        ReceivedAge = head.ReceivedAge;
        MaxReplayAge = head.MaxReplayAge;

        // The headers are the host's choice (64 KiB of them by default, more when MaxResponseHeadersLength is raised) and
        // the Vary values the callers': counted by their text, or a small body's minimum charge would hide them and the
        // bound on the cache's memory would not hold. Counted once, not each time the cache weighs the entry.
        var size = Body.Length + SizeOf(_headers) + SizeOf(_contentHeaders);
        foreach (var (name, value) in vary)
        {
            size += PerHeader + name.Length + (value?.Length ?? 0);
        }

        Size = size;
    }

    public HttpStatusCode StatusCode { get; }

    /// <summary>The reason phrase when it is not the status code's standard one, which a new response has by itself.</summary>
    public string? ReasonPhrase { get; }

    public Version Version { get; }

    public (string Name, string? Value)[] Vary { get; }

    public byte[] Body { get; }

    /// <summary>The cache clock's reading (<see cref="CacheClock.Now"/>) when the response was stored.</summary>
    public long StoredAt { get; }

    /// <summary>
    /// The age the response already had when it was received, from its <c>Age</c> header, in whole seconds: an
    /// answer a CDN kept for an hour is an hour old on arrival, and its age in this cache starts from there.
    /// </summary>
    public TimeSpan ReceivedAge { get; }

    /// <summary>
    /// The oldest the response itself allows it to be replayed, whatever <c>MaxAge</c> allows: its freshness lifetime
    /// when it forbids being served stale (must-revalidate, for one), else <see cref="TimeSpan.MaxValue"/>.
    /// </summary>
    public TimeSpan MaxReplayAge { get; }

    /// <summary>Bytes the entry holds, as counted against the cache's size limit: the body, and the headers and Vary values as text.</summary>
    public long Size { get; }

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

    private static long SizeOf(KeyValuePair<string, string[]>[] headers)
    {
        var size = 0L;
        foreach (var (name, values) in headers)
        {
            size += PerHeader + name.Length;
            foreach (var value in values)
            {
                size += value.Length;
            }
        }

        return size;
    }

    private static void Add(System.Net.Http.Headers.HttpHeaders headers, KeyValuePair<string, string[]>[] copied)
    {
        foreach (var (name, values) in copied)
        {
            // The single-value overload stores the string as it is; the other walks an enumerator.
            _ = values.Length == 1 ? headers.TryAddWithoutValidation(name, values[0]) : headers.TryAddWithoutValidation(name, values);
        }
    }
}
