namespace CircuitBreaker.Http;

/// <summary>
/// Collects a response body as the caller reads it and stores the response once the body ended. A body
/// that outgrows the limit, or that the caller does not read to the end, is dropped without a trace.
/// One reader at a time, as for any response stream.
/// </summary>
internal sealed class ResponseCapture
{
    private readonly ResponseCache _cache;
    private readonly string _key;
    private readonly HttpResponseMessage _response;
    private readonly (string Name, string? Value)[] _vary;
    private readonly int _maxBytes;
    private readonly TimeProvider _timeProvider;
    private MemoryStream? _body;

    public ResponseCapture(ResponseCache cache, string key, HttpResponseMessage response, (string Name, string? Value)[] vary, int maxBytes, TimeProvider timeProvider)
    {
        _cache = cache;
        _key = key;
        _response = response;
        _vary = vary;
        _maxBytes = maxBytes;
        _timeProvider = timeProvider;
        var length = response.Content.Headers.ContentLength;
        _body = length > maxBytes ? null : new MemoryStream((int)(length ?? 0));
    }

    public void Append(ReadOnlySpan<byte> data)
    {
        if (_body is null)
        {
            return;
        }

        if (_body.Length + data.Length > _maxBytes)
        {
            _body = null; // too large to keep: stop copying, the caller's stream is unaffected
            return;
        }

        _body.Write(data);
    }

    public void Complete()
    {
        var body = _body;
        _body = null;
        if (body is null)
        {
            return;
        }

        try
        {
            _cache.Store(_key, new CachedResponse(_response, _vary, body.ToArray(), _timeProvider.GetUtcNow()));
        }
#pragma warning disable CA1031 // The cache is a convenience: a fault in it must never fail the caller's read.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    public void Abandon() => _body = null;
}
