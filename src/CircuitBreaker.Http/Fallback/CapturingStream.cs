namespace CircuitBreaker.Http;

/// <summary>A read-only pass-through stream that copies what is read into a <see cref="ResponseCapture"/>.</summary>
internal sealed class CapturingStream : Stream
{
    private readonly Stream _inner;
    private readonly ResponseCapture _capture;

    public CapturingStream(Stream inner, ResponseCapture capture)
    {
        _inner = inner;
        _capture = capture;
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer) => Captured(buffer, _inner.Read(buffer));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        return Captured(buffer.Span, read);
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _capture.Abandon();
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }

    private int Captured(ReadOnlySpan<byte> buffer, int read)
    {
        if (read > 0)
        {
            _capture.Append(buffer[..read]);
        }
        else if (buffer.Length > 0)
        {
            _capture.Complete(); // a zero-byte read of a non-empty buffer is the end of the body
        }

        return read;
    }
}
