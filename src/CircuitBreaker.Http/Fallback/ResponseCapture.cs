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
    private readonly ResponseHead _head;
    private readonly (string Name, string? Value)[] _vary;
    private readonly int _maxBytes;
    private readonly long? _expectedLength;
    private byte[]? _body;
    private int _length;

    /// <param name="cache">The cache to store the response in.</param>
    /// <param name="key">The response's key.</param>
    /// <param name="head">The response apart from its body, as it passed back up through the breaker.</param>
    /// <param name="vary">The request's values of the headers the response's <c>Vary</c> names.</param>
    /// <param name="maxBytes">The largest body stored.</param>
    /// <param name="bodiless">
    /// Whether the response has no body whatever its headers say (the answer to a HEAD): it is stored by
    /// <see cref="Complete"/> alone.
    /// </param>
    public ResponseCapture(ResponseCache cache, string key, ResponseHead head, (string Name, string? Value)[] vary, int maxBytes, bool bodiless = false)
    {
        _cache = cache;
        _key = key;
        _head = head;
        _vary = vary;
        // MaxEntryBytes is not bounded by MaxTotalBytes: a body the whole cache cannot hold is never stored, so it is not
        // buffered either; nor one longer than an array can be (with int.MaxValue, "no limit per entry", the buffer would
        // grow past it and the allocation throw in the caller's read).
        _maxBytes = (int)Math.Min(maxBytes, Math.Min(cache.MaxTotalBytes, Array.MaxLength));
        if (bodiless)
        {
            // A HEAD's Content-Length is the resource's, not a body's: it neither counts against the limit nor
            // sizes a buffer, and the empty body is the whole of what is stored.
            _expectedLength = 0;
            _body = [];
            return;
        }

        // A known length is allocated exactly, so the finished body is stored without another copy.
        _expectedLength = head.ContentLength;
        _body = _expectedLength > _maxBytes ? null : new byte[_expectedLength ?? Math.Min(_maxBytes, 4096)];
    }

    public void Append(ReadOnlySpan<byte> data)
    {
        if (_body is null)
        {
            return;
        }

        var needed = (long)_length + data.Length; // near Array.MaxLength an int sum would overflow
        if (needed > _maxBytes)
        {
            _body = null; // too large to keep: stop copying, the caller's stream is unaffected
            return;
        }

        if (needed > _body.Length)
        {
            Array.Resize(ref _body, (int)Math.Min(_maxBytes, Math.Max(needed, 2L * _body.Length)));
        }

        data.CopyTo(_body.AsSpan(_length));
        _length = (int)needed;
        if (_length == _expectedLength)
        {
            Complete(); // the whole announced body arrived, even if the caller never reads on to the end
        }
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
            if (_length != body.Length)
            {
                Array.Resize(ref body, _length);
            }

            _cache.Store(_key, new CachedResponse(_head, _vary, body, _cache.Clock.Now));
        }
#pragma warning disable CA1031 // The cache is a convenience: a fault in it must never fail the caller's read.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    public void Abandon() => _body = null;
}
