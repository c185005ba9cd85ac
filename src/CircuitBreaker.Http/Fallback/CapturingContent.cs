using System.Net;

namespace CircuitBreaker.Http;

/// <summary>
/// Wraps a response's content so that whatever the caller reads also goes to a <see cref="ResponseCapture"/>.
/// The body is read once, from the network, as the caller reads it: buffered callers and streaming callers
/// (<see cref="HttpCompletionOption.ResponseHeadersRead"/>) both work as before.
/// </summary>
internal sealed class CapturingContent : HttpContent
{
    private readonly HttpContent _inner;
    private readonly ResponseCapture _capture;

    public CapturingContent(HttpContent inner, ResponseCapture capture)
    {
        _inner = inner;
        _capture = capture;
        foreach (var header in inner.Headers.NonValidated)
        {
            Headers.TryAddWithoutValidation(header.Key, header.Value);
        }
    }

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        var source = await _inner.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (source.ConfigureAwait(false))
        {
            await new CapturingStream(source, _capture).CopyToAsync(stream, cancellationToken).ConfigureAwait(false);
        }
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override void SerializeToStream(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        using var source = _inner.ReadAsStream(cancellationToken);
        new CapturingStream(source, _capture).CopyTo(stream);
    }

    protected override async Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken) =>
        new CapturingStream(await _inner.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), _capture);

    protected override Task<Stream> CreateContentReadStreamAsync() => CreateContentReadStreamAsync(CancellationToken.None);

    protected override Stream CreateContentReadStream(CancellationToken cancellationToken) =>
        new CapturingStream(_inner.ReadAsStream(cancellationToken), _capture);

    protected override bool TryComputeLength(out long length)
    {
        length = _inner.Headers.ContentLength ?? 0;
        return _inner.Headers.ContentLength is not null;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _capture.Abandon();
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
