using System.Net;
using System.Text;

namespace CircuitBreaker.Http;

/// <summary>The fixed response of <see cref="DegradedResponseOptions"/>, prepared once; each call gets a fresh copy.</summary>
internal sealed class DegradedResponse
{
    private const int DefaultStatusCode = (int)HttpStatusCode.ServiceUnavailable;

    private readonly HttpStatusCode _statusCode;
    private readonly byte[] _body;
    private readonly string? _contentType;
    private readonly KeyValuePair<string, string>[] _headers;

    private DegradedResponse(DegradedResponseOptions options)
    {
        _statusCode = (HttpStatusCode)(options.StatusCode ?? DefaultStatusCode);
        _body = options.Body is null ? [] : Encoding.UTF8.GetBytes(options.Body);
        _contentType = options.ContentType;

        // A configured Retry-After is kept apart: the breaker's own, the time until the next probe, replaces it whenever
        // there is one, and a header added twice would carry two values.
        _headers = [.. options.Headers.Where(h => !string.Equals(h.Key, FallbackPolicy.RetryAfterHeaderName, StringComparison.OrdinalIgnoreCase))];
        RetryAfter = options.Headers.FirstOrDefault(h => string.Equals(h.Key, FallbackPolicy.RetryAfterHeaderName, StringComparison.OrdinalIgnoreCase)).Value;
    }

    /// <summary>The configured <c>Retry-After</c>, sent when the breaker has no time of its own to promise; or <see langword="null"/>.</summary>
    public string? RetryAfter { get; }

    public static DegradedResponse? From(DegradedResponseOptions options) => options.IsEnabled ? new(options) : null;

    public HttpResponseMessage Create(HttpRequestMessage request)
    {
        // Of the request's version, as the answer of a server that speaks it: gRPC, for one, takes an HTTP/1.1 answer to its
        // HTTP/2 request for a downgrading proxy (Internal) and never reads the status (503: Unavailable, which it may retry).
        var response = new HttpResponseMessage(_statusCode) { RequestMessage = request, Version = request.Version, Content = new ByteArrayContent(_body) };
        if (_contentType is not null)
        {
            response.Content.Headers.TryAddWithoutValidation("Content-Type", _contentType); // validated at start-up
        }

        foreach (var (name, value) in _headers)
        {
            if (!response.Headers.TryAddWithoutValidation(name, value))
            {
                response.Content.Headers.TryAddWithoutValidation(name, value); // a content header such as Content-Language
            }
        }

        return response;
    }
}
