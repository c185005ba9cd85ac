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
        _headers = [.. options.Headers];
    }

    public static DegradedResponse? From(DegradedResponseOptions options) => options.IsEnabled ? new(options) : null;

    public HttpResponseMessage Create(HttpRequestMessage request)
    {
        var response = new HttpResponseMessage(_statusCode) { RequestMessage = request, Content = new ByteArrayContent(_body) };
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
