using System.Globalization;
using System.Net;

namespace CircuitBreaker.Http;

/// <summary>
/// What a cache entry keeps of a response apart from its body: status, version, reason phrase, headers and received
/// age, as the response had them when it passed back up through the breaker. Taken then rather than once the body has
/// been read, as it is only then that the entry is stored: by that time the handlers above the breaker (a correlation
/// header, Server-Timing) and the caller may have added headers of their own, which a replay would carry to other
/// callers and which those handlers would add a second time.
/// </summary>
internal sealed class ResponseHead
{
    // RFC 9111 §1.2.2: the value a cache takes for delta-seconds greater than it can represent.
    private const long MaxDeltaSeconds = 1L << 31;

    // Headers that describe one transfer or one client, not the resource: never replayed. Age is replayed as the
    // cache computes it, from the received one (ReceivedAge) and the time since.
    private static readonly HashSet<string> SkippedHeaders = new(StringComparer.OrdinalIgnoreCase)
    {
        "Age", "Connection", "Keep-Alive", "Proxy-Connection", "Retry-After", "Set-Cookie", "Trailer", "Transfer-Encoding", "Upgrade",
        FallbackPolicy.FallbackHeaderName,
    };

    // The standard reason phrase of each status code, read once from a new response, which has it by itself.
    private static readonly string?[] StandardReasonPhrases = new string?[1000];

    public ResponseHead(HttpResponseMessage response)
    {
        var isHead = response.RequestMessage?.Method == HttpMethod.Head;
        StatusCode = response.StatusCode;
        ReasonPhrase = CustomReasonPhrase(response);
        Version = response.Version;
        Headers = Copy(response.Headers, keepContentLength: true);
        // A replayed body's length is its own, except for HEAD, whose Content-Length describes the resource.
        ContentHeaders = Copy(response.Content.Headers, keepContentLength: isHead);
        // A Transfer-Encoding overrides a Content-Length sent with it (RFC 9112 §6.3), which SocketsHttpHandler reads past
        // but leaves among the content headers: that length does not tell where such a body ends.
        ContentLength = response.Headers.NonValidated.Contains("Transfer-Encoding") ? null : response.Content.Headers.ContentLength;
        ReceivedAge = ReceivedAgeOf(response);
        MaxReplayAge = ResponseCacheKey.MaxReplayAge(response);
    }

    public HttpStatusCode StatusCode { get; }

    /// <summary>The reason phrase when it is not the status code's standard one, which a new response has by itself.</summary>
    public string? ReasonPhrase { get; }

    public Version Version { get; }

    public KeyValuePair<string, string[]>[] Headers { get; }

    public KeyValuePair<string, string[]>[] ContentHeaders { get; }

    /// <summary>The body's length as the response announced it, if it did.</summary>
    public long? ContentLength { get; }

    /// <summary>The age the response already had when it was received, from its <c>Age</c> header.</summary>
    public TimeSpan ReceivedAge { get; }

    /// <summary>The oldest the response itself allows it to be replayed (<see cref="ResponseCacheKey.MaxReplayAge"/>).</summary>
    public TimeSpan MaxReplayAge { get; }

    /// <summary>The <c>Age</c> header's seconds as RFC 9111 reads them (§5.1, §1.2.2), or zero when there is none.</summary>
    private static TimeSpan ReceivedAgeOf(HttpResponseMessage response)
    {
        if (!response.Headers.NonValidated.TryGetValues("Age", out var values))
        {
            return TimeSpan.Zero;
        }

        // A list (one line or several, joined with commas) counts by its first member; a value that is not a
        // non-negative integer is ignored.
        var all = values.ToString().AsSpan();
        var comma = all.IndexOf(',');
        var text = (comma < 0 ? all : all[..comma]).Trim();
        if (text.IsEmpty || text.ContainsAnyExceptInRange('0', '9'))
        {
            return TimeSpan.Zero;
        }

        // Too large to represent counts as 2^31 seconds rather than as invalid: such an answer is old, not new.
        return TimeSpan.FromSeconds(
            long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) && seconds < MaxDeltaSeconds ? seconds : MaxDeltaSeconds);
    }

    private static string? CustomReasonPhrase(HttpResponseMessage response)
    {
        var code = (int)response.StatusCode; // 0 to 999, as HttpResponseMessage allows
        var standard = StandardReasonPhrases[code] ??= StandardReasonPhrase(response.StatusCode);
        return response.ReasonPhrase == standard ? null : response.ReasonPhrase;
    }

    private static string? StandardReasonPhrase(HttpStatusCode statusCode)
    {
        using var standard = new HttpResponseMessage(statusCode);
        return standard.ReasonPhrase;
    }

    // A loop rather than LINQ: every response the cache captures passes here, and the iterators, the boxed enumerator
    // and the closure cost more than the copies kept.
    private static KeyValuePair<string, string[]>[] Copy(System.Net.Http.Headers.HttpHeaders headers, bool keepContentLength)
    {
        var all = headers.NonValidated;
        if (all.Count == 0)
        {
            return [];
        }

        var copied = new KeyValuePair<string, string[]>[all.Count];
        var count = 0;
        foreach (var (name, values) in all)
        {
            if (!SkippedHeaders.Contains(name) && (keepContentLength || !string.Equals(name, "Content-Length", StringComparison.OrdinalIgnoreCase)))
            {
                copied[count++] = new(name, [.. values]);
            }
        }

        if (count < copied.Length)
        {
            Array.Resize(ref copied, count);
        }

        return copied;
    }
}
